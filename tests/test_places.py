"""Places (app/places): every write checked against its State's boundary, regions as provinces, the
boundary layers. Real coordinates of Cambodia, Thailand, Bosnia and Herzegovina."""
from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import pyogrio
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import access, database
from app.main import create_app
from tests.conftest import auth_headers
from tests.ledger_scenarios import hazard_feature, post_event, post_hazard, rect

# a square across the Cambodia-Thailand border west of Poipet, about 3 km into Thailand
ACROSS_THE_BORDER = box(102.42, 13.54, 102.48, 13.59)
# a square on the same border, half of it (up to 450 m) beyond the boundary's line: within the tolerance
ON_THE_BORDER = box(102.4472, 13.5623, 102.4552, 13.5703)
IN_BATTAMBANG = box(102.90, 13.00, 102.91, 13.01)
IN_THAILAND = box(102.00, 14.00, 102.01, 14.01)  # Sa Kaeo
IN_SARAJEVO = box(18.40, 43.85, 18.41, 43.86)


def _post(client, iso3: str, external_id: str, shape, expect: int, **params) -> dict:
    response = client.post(f"/api/v1/states/{iso3}/hazards", params=params,
                           json=hazard_feature(external_id, mapping(shape)))
    assert response.status_code == expect, response.text
    return response.json()


def _stored() -> list[dict]:
    with database.get_engine().connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT external_id, state_iso3, region, province_code, border_flag FROM hazardous_areas "
            "ORDER BY external_id")).mappings()]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


# --- the boundary check ---------------------------------------------------------------------------------
def test_a_polygon_in_the_wrong_state_is_refused_naming_where_it_lies(client) -> None:
    problem = _post(client, "KHM", "KHM-1", IN_THAILAND, 422)
    assert "KHM-1 lies in THA" in problem["detail"] and "beyond KHM's boundary" in problem["detail"]
    assert "border=accept" in problem["detail"]
    (outside,) = problem["outside"]
    assert outside["lies_in"] == "THA" and outside["beyond_m"] > 50_000 and outside["share_outside"] == 1.0
    assert not outside["swapped_inside"]
    assert _stored() == []


def test_swapped_longitude_and_latitude_are_refused_with_the_hint(client) -> None:
    swapped = box(43.85, 18.40, 43.86, 18.41)  # Sarajevo's square given as lat/lon: Saudi Arabia
    problem = _post(client, "BIH", "BIH-1", swapped, 422)
    assert "lies in SAU" in problem["detail"]
    assert "with longitude and latitude swapped it would lie in BIH" in problem["detail"]
    assert problem["outside"][0]["swapped_inside"] is True
    assert _post(client, "BIH", "BIH-1", IN_SARAJEVO, 201)["hazards"][0]["created"]


def test_the_wrong_utm_zone_is_refused_with_the_hint(client) -> None:
    # zone 48N coordinates (central Cambodia) declared as zone 47N: they land in Myanmar
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": "EPSG:32647"},
                           json=hazard_feature("KHM-UTM", rect(0, 0, 500, 500)))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "lies in MMR" in detail and "read in UTM zone 48N instead of 47N it would lie in KHM" in detail
    assert _stored() == []


def test_a_polygon_within_the_tolerance_of_the_border_is_accepted_unflagged(client) -> None:
    hazard = _post(client, "KHM", "KHM-EDGE", ON_THE_BORDER, 201)["hazards"][0]
    assert "border_flag" not in hazard
    assert _stored()[0]["border_flag"] is False


def test_a_border_polygon_is_accepted_on_request_and_flagged_in_the_layers(client) -> None:
    problem = _post(client, "KHM", "KHM-BORDER", ACROSS_THE_BORDER, 422)
    assert "THA" in problem["detail"] and "beyond KHM's boundary" in problem["detail"]
    hazard = _post(client, "KHM", "KHM-BORDER", ACROSS_THE_BORDER, 201, border="accept")["hazards"][0]
    assert hazard["border_flag"] is True
    inside = _post(client, "KHM", "KHM-IN", IN_BATTAMBANG, 201, border="accept")["hazards"][0]
    assert "border_flag" not in inside  # accepting does not flag what lies inside
    ogc = client.get("/collections/hazardous_areas/items").json()["features"]
    assert {f["properties"]["external_id"]: f["properties"]["border_flag"] for f in ogc} == \
        {"KHM-BORDER": True, "KHM-IN": False}
    own = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]
    assert own["border_flag"] is True and own["province_code"] == "KHM-BANTEAY-MEANCHEY"
    x, y = _tile_of(102.45, 13.565, 10)
    tile = client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/10/{x}/{y}")
    assert tile.status_code == 200
    (feature,) = mapbox_vector_tile.decode(tile.content)["hazardous_areas"]["features"]
    assert feature["properties"]["external_id"] == "KHM-BORDER" and feature["properties"]["border_flag"] is True


def test_an_event_beyond_its_hazard_and_its_state_is_refused(client) -> None:
    hazard = _post(client, "KHM", "KHM-EV", ON_THE_BORDER, 201)["hazards"][0]
    wide = ON_THE_BORDER.buffer(0.03, join_style="mitre")  # 3 km around it, into Thailand
    response = client.post(f"/api/v1/hazards/{hazard['id']}/events",
                           json={"kind": "clearance", "date": "2020-01-01", "geometry": mapping(wide)})
    assert response.status_code == 422, response.text
    assert "The event lies in THA" in response.json()["detail"] or "crosses into THA" in response.json()["detail"]
    fine = post_event(client, hazard["id"], "clearance", "2020-01-01", mapping(ON_THE_BORDER), crs=None)
    assert fine["released_area_m2"] > 0


def test_the_file_import_checks_the_boundary_too(client, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"external_id": ["F-IN", "F-OUT"], "classification": ["SHA", "SHA"],
                              "recorded_on": ["2020-01-01", "2020-01-01"]},
                             geometry=[IN_BATTAMBANG, ACROSS_THE_BORDER], crs=4326)
    path = tmp_path / "border.gpkg"
    pyogrio.write_dataframe(frame, path, driver="GPKG")

    def upload(**form: str):
        with path.open("rb") as f:
            return client.post("/api/v1/states/KHM/imports", files={"file": (path.name, f)}, data=form)

    refused = upload()
    assert refused.status_code == 422 and "F-OUT" in refused.json()["detail"] and "THA" in refused.json()["detail"]
    assert _stored() == []
    accepted = upload(border="accept")
    assert accepted.status_code == 201, accepted.text
    assert {r["external_id"]: r["border_flag"] for r in _stored()} == {"F-IN": False, "F-OUT": True}


# --- regions as provinces -------------------------------------------------------------------------------
def test_a_region_is_assigned_from_the_polygon_when_not_given(client) -> None:
    hazard = _post(client, "KHM", "KHM-P", IN_BATTAMBANG, 201)["hazards"][0]
    props = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]
    assert props["region"] is None
    assert (props["province_code"], props["province"]) == ("KHM-BATDAMBANG", "Batdâmbâng")


def test_a_polygon_across_two_provinces_gets_the_one_holding_most_of_it(client) -> None:
    with database.get_engine().connect() as conn:
        x, y = conn.execute(text(  # a point of the border between Batdambang and Pailin
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Intersection(ST_Buffer(a.geom, 0.001), "
            "ST_Buffer(b.geom, 0.001))) AS p FROM provinces a, provinces b "
            "WHERE a.code = 'KHM-BATDAMBANG' AND b.code = 'KHM-KRONG-PAILIN') q")).one()
        shape = box(x - 0.006, y - 0.01, x + 0.014, y + 0.01)
        shares = dict(conn.execute(text(
            "SELECT code, ST_Area(ST_Intersection(geom, ST_GeomFromText(:wkt, 4326))) FROM provinces "
            "WHERE iso3 = 'KHM' AND ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))"), {"wkt": shape.wkt}).all())
    assert len(shares) >= 2, shares
    hazard = _post(client, "KHM", "KHM-ACROSS", shape, 201)["hazards"][0]
    props = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]
    assert props["province_code"] == max(shares, key=lambda code: shares[code])


def test_a_region_is_matched_whatever_its_spelling(client) -> None:
    spellings = {"Battambang": "KHM-BATDAMBANG", "BATDÂMBÂNG": "KHM-BATDAMBANG", "batdambang": "KHM-BATDAMBANG",
                 "Batambang": "KHM-BATDAMBANG", "khm-batdambang": "KHM-BATDAMBANG", "Siem Reep": "KHM-SIEMREAB",
                 "Pailin Province": "KHM-KRONG-PAILIN"}
    for i, region in enumerate(spellings):
        post_hazard(client, f"R-{i}", rect(i * 2000, 0, 100, 100), region=region)
    stored = {r["region"]: r["province_code"] for r in _stored()}
    assert stored == spellings  # the region is kept as given, the province it names is the reference


def test_a_file_import_matches_regions_as_the_json_api_does(client, tmp_path: Path) -> None:
    # the provinces a file's regions name go in with the rows; a row without a region gets the province
    # holding its polygon
    spellings = {"Battambang": "KHM-BATDAMBANG", "Batambang": "KHM-BATDAMBANG", "Siem Reep": "KHM-SIEMREAB",
                 "Pailin Province": "KHM-KRONG-PAILIN", None: "KHM-BATDAMBANG"}
    n = len(spellings)
    frame = gpd.GeoDataFrame({"external_id": [f"F-{i}" for i in range(n)], "classification": ["SHA"] * n,
                              "recorded_on": ["2020-01-01"] * n, "region": list(spellings)},
                             geometry=[box(102.90 + i * 0.02, 13.00, 102.91 + i * 0.02, 13.01)
                                       for i in range(n)], crs=4326)
    path = tmp_path / "regions.gpkg"
    pyogrio.write_dataframe(frame, path, driver="GPKG")
    with path.open("rb") as f:
        response = client.post("/api/v1/states/KHM/imports", files={"file": (path.name, f)})
    assert response.status_code == 201, response.text
    assert {r["region"]: r["province_code"] for r in _stored()} == spellings


def test_a_region_naming_no_province_is_refused_with_the_candidates(client) -> None:
    response = client.post("/api/v1/states/KHM/hazards",
                           json=hazard_feature("R-X", rect(0, 0, 100, 100), region="Batdam"),
                           params={"crs": "EPSG:32648"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert "'Batdam'" in problem["detail"] and "Batdâmbâng (KHM-BATDAMBANG)" in problem["detail"]
    (unknown,) = problem["unknown_regions"]
    assert unknown["candidates"][0] == {"code": "KHM-BATDAMBANG", "name": "Batdâmbâng"}
    assert _stored() == []


# --- the boundary layers --------------------------------------------------------------------------------
def test_countries_and_provinces_are_ogc_collections_with_tiles(client) -> None:
    provinces = client.get("/collections/provinces/items", params={"state": "KHM", "limit": 100}).json()
    assert provinces["numberMatched"] == 24  # Natural Earth 4.1 has no Tbong Khmum yet
    names = {f["properties"]["code"]: f["properties"]["name"] for f in provinces["features"]}
    assert names["KHM-BATDAMBANG"] == "Batdâmbâng" and names["KHM-KRONG-PAILIN"] == "Krong Pailin"
    countries = client.get("/collections/countries/items", params={"bbox": "102.4,13.5,102.5,13.6"}).json()
    assert sorted(f["properties"]["iso3"] for f in countries["features"]) == ["KHM", "THA"]
    one = countries["features"][0]
    assert client.get(f"/collections/countries/items/{one['id']}").json()["properties"] == one["properties"]
    extent = client.get("/collections/countries").json()["extent"]["spatial"]["bbox"][0]
    assert extent[1] < -50 and extent[3] > 70
    x, y = _tile_of(104.9, 12.5, 6)
    tile = mapbox_vector_tile.decode(client.get(f"/collections/provinces/tiles/WebMercatorQuad/6/{x}/{y}").content)
    assert "Batdâmbâng" in {f["properties"]["name"] for f in tile["provinces"]["features"]}
    world = mapbox_vector_tile.decode(client.get("/collections/countries/tiles/WebMercatorQuad/0/0/0").content)
    assert {"KHM", "BIH", "IRQ", "THA"} <= {f["properties"]["iso3"] for f in world["countries"]["features"]}


def test_summaries_and_the_article7_report_group_by_province(client) -> None:
    _post(client, "KHM", "KHM-B1", IN_BATTAMBANG, 201)  # no region: from its polygon
    client.post("/api/v1/states/KHM/hazards",
                json=hazard_feature("KHM-B2", mapping(box(102.92, 13.0, 102.93, 13.01)), region="Battambang"))
    client.post("/api/v1/states/KHM/hazards",
                json=hazard_feature("KHM-P1", mapping(box(102.6, 12.85, 102.61, 12.86)), region="pailin"))
    remaining = client.get("/api/v1/states/KHM/summary").json()["remaining"]
    by_province = remaining["by_province"]
    assert set(by_province) == {"KHM-BATDAMBANG", "KHM-KRONG-PAILIN"}
    assert by_province["KHM-BATDAMBANG"]["count"] == 2 and by_province["KHM-BATDAMBANG"]["name"] == "Batdâmbâng"
    assert by_province["KHM-KRONG-PAILIN"]["count"] == 1
    assert sum(p["area_m2"] for p in by_province.values()) == remaining["total"]["area_m2"]
    report = client.get("/api/v1/states/KHM/report", params={"year": 2024}).json()
    located = {m["external_id"]: (m["province_code"], m["province"]) for m in report["mined_areas"]}
    assert located == {"KHM-B1": ("KHM-BATDAMBANG", "Batdâmbâng"), "KHM-B2": ("KHM-BATDAMBANG", "Batdâmbâng"),
                       "KHM-P1": ("KHM-KRONG-PAILIN", "Krong Pailin")}


def test_an_operators_hazard_in_the_wrong_state_is_refused_at_approval(client) -> None:
    """The check applies on approval too (app.submissions writes through the ledger): refused, the submission
    stays submitted, nothing stored."""
    organisation = client.post("/api/v1/states/KHM/organisations", json={"name": "HALO", "kind": "ngo"}).json()["id"]
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name="HALO operator", role="operator", organisation_id=organisation)
    with TestClient(create_app(), headers=auth_headers(secret)) as operator:
        submitted = operator.post("/api/v1/states/KHM/submissions",
                                  json=hazard_feature("OP-THA", mapping(IN_THAILAND)))
    assert submitted.status_code == 201, submitted.text
    refused = client.post(f"/api/v1/submissions/{submitted.json()['id']}/approve")
    assert refused.status_code == 422 and "lies in THA" in refused.json()["detail"], refused.text
    assert client.get(f"/api/v1/submissions/{submitted.json()['id']}").json()["properties"]["status"] == "submitted"
    assert _stored() == []
    accepted = client.post(f"/api/v1/submissions/{submitted.json()['id']}/approve", json={"border": "accept"})
    assert accepted.status_code == 200 and accepted.json()["properties"]["status"] == "approved", accepted.text
    assert [(h["external_id"], h["border_flag"]) for h in _stored()] == [("OP-THA", True)]
