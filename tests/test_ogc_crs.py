"""OGC API - Features Part 2 (CRS): each collection lists exactly the CRS it accepts, an unlisted one is a
400, projected output is plain GeoJSON (no `crs` member), and the OpenAPI 3.0 document validates."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from tests.ledger_scenarios import post_hazard, rect

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


def test_the_openapi_30_document_validates(client) -> None:
    """`/api` is valid OpenAPI 3.0 (openapi-spec-validator): no 3.1-only keywords such as info.summary or
    contentMediaType, and the items parameters carry their maxima so that clients pick large pages."""
    document = client.get("/api").json()
    validate(document)  # raises with the first error found
    assert "summary" not in document["info"] and document["info"]["description"]
    assert "contentMediaType" not in str(document)
    parameters = {p["name"]: p for p in document["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]}
    assert parameters["limit"]["schema"]["maximum"] == 10_000 and parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["limit"]["style"] == "form" and parameters["limit"]["explode"] is False


def test_each_collection_lists_the_crs_it_accepts(client) -> None:
    """CRS84, EPSG:4326, EPSG:3857, the UTM zones and national grids of the Article 5 States; storageCrs."""
    from app.ogc.crs import STATE_CRS

    for collection in ("hazardous_areas", "land_release_events"):
        document = client.get(f"/collections/{collection}").json()
        listed = document["crs"]
        assert listed[:3] == [CRS84, EPSG.format(4326), EPSG.format(3857)]
        assert document["storageCrs"] == CRS84 and document["storageCrs"] in listed
        assert len(listed) == len(set(listed))
        for code in (32648, 32647, 3148, 24047, 3765, 5235, 32735):  # UTM 48N, Indian 1960, Croatia TM, ...
            assert EPSG.format(code) in listed
        assert {EPSG.format(code) for codes in STATE_CRS.values() for code in codes} <= set(listed)
    assert client.get("/collections").json()["crs"] == listed


def test_every_listed_crs_is_accepted_and_an_unlisted_one_is_a_400(client) -> None:
    post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    listed = client.get("/collections/hazardous_areas").json()["crs"]
    for uri in listed:
        response = client.get("/collections/hazardous_areas/items", params={"crs": uri})
        assert response.status_code == 200, (uri, response.text)
        assert response.headers["content-crs"] == f"<{uri}>"
        assert response.json()["numberReturned"] == 1
        bbox = client.get("/collections/hazardous_areas/items", params={"bbox": "-1e9,-1e9,1e9,1e9" if uri not in (
            CRS84, EPSG.format(4326)) else "-90,-180,90,180" if uri != CRS84 else "-180,-90,180,90", "bbox-crs": uri})
        assert bbox.status_code in (200, 400), bbox.text  # a huge projected box may not transform: never a 500
    # Lambert-93 (France) and British National Grid: PROJ knows them, the collections do not list them
    for name in ("crs", "bbox-crs"):
        for unlisted in ("EPSG:2154", EPSG.format(27700)):
            params = {name: unlisted, **({"bbox": "0,0,1,1"} if name == "bbox-crs" else {})}
            response = client.get("/collections/hazardous_areas/items", params=params)
            assert response.status_code == 400, response.text
            problem = response.json()
            assert problem["invalid_params"][0]["name"] == name
            assert "not a CRS of these collections" in problem["detail"]
            assert "EPSG:32648" in problem["detail"]  # the message lists what is offered


def test_projected_output_has_no_crs_member_in_geometries(client) -> None:
    hazard = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    for crs in ("EPSG:32648", EPSG.format(3148), EPSG.format(3857)):
        page = client.get("/collections/hazardous_areas/items", params={"crs": crs}).json()
        geometry = page["features"][0]["geometry"]
        assert set(geometry) == {"type", "coordinates"}, geometry.keys()
        one = client.get(f"/collections/hazardous_areas/items/{hazard['id']}", params={"crs": crs}).json()
        assert set(one["geometry"]) == {"type", "coordinates"}
        events = client.get("/collections/land_release_events/items", params={"crs": crs}).json()
        assert all(set(f["geometry"]) == {"type", "coordinates"} for f in events["features"])
    x, y = page["features"][0]["geometry"]["coordinates"][0][0][0]
    assert abs(x) > 1e6 and abs(y) > 1e6  # web mercator metres, not degrees


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_crs_parameter_is_a_400_on_items_and_tiles(client, value: str) -> None:
    for path in ("/collections/hazardous_areas/items", "/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0"):
        for name in ("crs", "bbox-crs"):
            if name == "crs" and "tiles" in path:
                continue
            response = client.get(path, params={name: value})
            assert response.status_code == 400, (path, name, response.text)
            assert response.json()["invalid_params"][0]["name"] == name
