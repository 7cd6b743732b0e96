"""OGC API - Features: landing, conformance, collections, items (every parameter), paging, CRS, GDAL."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from pyproj import Transformer
from shapely.geometry import shape

from app.geometry import geodesic_area_m2, polygonal_part
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect, true_area

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def post_many(client, n: int, iso3: str = "KHM", prefix: str = "H", classification: str = "SHA",
              recorded_on: str = "2015-01-01", size: float = 50.0) -> list[dict]:
    """n square hazards of `size` metres in a row, in one request (5 km south of the `ledger` fixture's hazards,
    which they would overlap otherwise)."""
    features = [hazard_feature(f"{prefix}-{i:05d}", rect(i * 100.0, -5000.0, size, size), classification=classification,
                               recorded_on=recorded_on) for i in range(n)]
    response = client.post(f"/api/v1/states/{iso3}/hazards", params={"crs": UTM48N},
                           json={"type": "FeatureCollection", "features": features})
    assert response.status_code == 201, response.text
    return response.json()["hazards"]


def items(client, collection: str = "hazardous_areas", expect: int = 200, **params) -> dict:
    response = client.get(f"/collections/{collection}/items", params=params)
    assert response.status_code == expect, response.text
    if expect == 200:
        assert response.headers["content-type"].startswith(GEOJSON)
    return response.json()


@pytest.fixture
def ledger(client) -> dict:
    """Three KHM hazards (one cleared in part, one released in full, one reclassified whole) and a THA one."""
    a = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), region="Battambang")
    b = post_hazard(client, "KHM-B", rect(2000, 0, 500, 500), classification="CHA", recorded_on="2016-06-01")
    c = post_hazard(client, "KHM-C", rect(4000, 0, 300, 300))
    t = post_hazard(client, "THA-A", rect(0, 5000, 200, 200), iso3="THA")
    e1 = post_event(client, a["id"], "clearance", "2018-03-01", rect(0, 0, 400, 1000),
                    items_destroyed={"ap_mines": 12, "av_mines": 1})
    e2 = post_event(client, b["id"], "reduction", "2019-05-01", rect(2000, 0, 500, 500))
    e3 = post_event(client, c["id"], "reclassification", "2020-01-01", None)
    e4 = post_event(client, a["id"], "cancellation", "2020-02-01", rect(400, 0, 100, 1000))
    voided = client.post(f"/api/v1/events/{e4['id']}/void", json={"reason": "wrong polygon"})
    assert voided.status_code == 200, voided.text
    return {"a": a, "b": b, "c": c, "t": t, "e1": e1, "e2": e2, "e3": e3, "e4": e4}


# --- discovery ----------------------------------------------------------------------------------------
def test_landing_page_links(client) -> None:
    body = client.get("/").json()
    rels = {link["rel"]: link for link in body["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    api = client.get(rels["service-desc"]["href"])
    assert api.status_code == 200
    assert api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = api.json()
    assert document["openapi"].startswith("3.0")
    limit = next(p for p in document["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
                 if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 10_000 and limit["schema"]["default"] == 100
    assert "null" not in json.dumps(document).replace('"nullable"', "")  # no 3.1 null types left
    assert client.get(rels["data"]["href"]).status_code == 200


def test_conformance_declares_only_what_is_implemented(client) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html" in classes  # app/ogc/html.py


def test_collections_and_extent(client, ledger) -> None:
    body = client.get("/collections").json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["hazardous_areas", "land_release_events", "countries", "provinces", "pending_submissions"]
    hazards = client.get("/collections/hazardous_areas").json()
    assert hazards["storageCrs"] == CRS84 and CRS84 in hazards["crs"]
    (x1, y1, x2, y2), = hazards["extent"]["spatial"]["bbox"]
    assert 104 < x1 < x2 < 106 and 12 < y1 < y2 < 14
    assert hazards["extent"]["temporal"]["interval"][0][0].startswith("2015-01-01")
    assert any(link["rel"] == "items" and link["type"] == GEOJSON for link in hazards["links"])


def test_unknown_collection_and_feature_are_404(client, ledger) -> None:
    for path in ("/collections/minefields", "/collections/minefields/items",
                 "/collections/hazardous_areas/items/not-a-uuid",
                 "/collections/hazardous_areas/items/00000000-0000-0000-0000-000000000000",
                 f"/collections/land_release_events/items/{ledger['a']['id']}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


# --- items --------------------------------------------------------------------------------------------
def test_hazard_items_are_geojson_with_the_ledger_properties(client, ledger) -> None:
    body = items(client)
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == 4 and body["numberReturned"] == 4
    by_ext = {f["properties"]["external_id"]: f for f in body["features"]}
    a = by_ext["KHM-A"]["properties"]
    assert a["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1000, 1000), rel=1e-4)
    assert a["remaining_area_m2"] == pytest.approx(true_area(400, 0, 600, 1000), rel=1e-4)
    assert a["region"] == "Battambang" and a["contamination"] == ["AP_MINE"] and a["status"] == "active"
    geometry_area = geodesic_area_m2(polygonal_part(shape(by_ext["KHM-A"]["geometry"])))
    assert geometry_area == pytest.approx(a["remaining_area_m2"], rel=1e-4)
    b = by_ext["KHM-B"]
    # released in full: the land it covered, all released (a Feature of OGC API - Features has a geometry)
    assert b["properties"]["status"] == "released" and b["properties"]["remaining_area_m2"] == 0
    assert geodesic_area_m2(polygonal_part(shape(b["geometry"]))) == \
        pytest.approx(b["properties"]["baseline_area_m2"], rel=1e-6)
    assert by_ext["KHM-C"]["properties"]["classification"] == "CHA"  # reclassified whole


def test_geometry_baseline(client, ledger) -> None:
    body = items(client, geometry="baseline", state="KHM")
    by_ext = {f["properties"]["external_id"]: f for f in body["features"]}
    assert geodesic_area_m2(polygonal_part(shape(by_ext["KHM-A"]["geometry"]))) == \
        pytest.approx(true_area(0, 0, 1000, 1000), rel=1e-4)
    assert by_ext["KHM-B"]["geometry"]["type"] == "MultiPolygon"
    items(client, geometry="convex", expect=400)


def test_property_filters(client, ledger) -> None:
    assert items(client, state="THA")["numberMatched"] == 1
    assert items(client, state="khm")["numberMatched"] == 3
    assert {f["properties"]["external_id"] for f in items(client, classification="CHA")["features"]} == \
        {"KHM-B", "KHM-C"}
    assert [f["properties"]["external_id"] for f in items(client, status="released")["features"]] == ["KHM-B"]
    kinds = {f["properties"]["kind"] for f in items(client, "land_release_events", kind="clearance")["features"]}
    assert kinds == {"clearance"}
    for bad in ({"state": "Cambodia"}, {"classification": "DHA"}, {"status": "closed"}):
        problem = items(client, expect=400, **bad)
        assert next(iter(bad)) in problem["detail"]
    problem = items(client, expect=400, kind="clearance")  # kind is a filter of the events
    assert "land_release_events" in problem["detail"]
    assert items(client, "land_release_events", expect=400, classification="SHA")["invalid_params"][0]["name"] == \
        "classification"
    assert items(client, expect=400, colour="red")["invalid_params"][0]["name"] == "colour"


def test_events_layer_excludes_voided_unless_asked(client, ledger) -> None:
    body = items(client, "land_release_events")
    ids = {f["id"] for f in body["features"]}
    assert ids == {ledger["e1"]["id"], ledger["e2"]["id"], ledger["e3"]["id"]}
    e1 = next(f for f in body["features"] if f["id"] == ledger["e1"]["id"])["properties"]
    assert e1["kind"] == "clearance" and e1["releases_land"] is True and e1["ap_mines"] == 12 and e1["av_mines"] == 1
    assert e1["released_area_m2"] == pytest.approx(true_area(0, 0, 400, 1000), rel=1e-4)
    e3 = next(f for f in body["features"] if f["id"] == ledger["e3"]["id"])
    # a whole-hazard reclassification carries the land it reclassified: all that remained of KHM-C
    assert e3["properties"]["releases_land"] is False and e3["properties"]["released_area_m2"] == 0
    assert geodesic_area_m2(polygonal_part(shape(e3["geometry"]))) == pytest.approx(true_area(4000, 0, 300, 300),
                                                                                   rel=1e-4)
    with_voided = items(client, "land_release_events", include_voided="true")
    assert with_voided["numberMatched"] == 4
    voided = next(f for f in with_voided["features"] if f["id"] == ledger["e4"]["id"])["properties"]
    assert voided["voided"] is True and voided["void_reason"] == "wrong polygon"
    items(client, "land_release_events", expect=400, include_voided="maybe")
    # a voided event stays readable by id, flagged
    one = client.get(f"/collections/land_release_events/items/{ledger['e4']['id']}").json()
    assert one["properties"]["voided"] is True


def test_datetime_instant_is_the_ledger_as_of_that_day(client, ledger) -> None:
    before = items(client, datetime="2016-01-01")
    assert {f["properties"]["external_id"] for f in before["features"]} == {"KHM-A", "KHM-C", "THA-A"}
    a = next(f for f in before["features"] if f["properties"]["external_id"] == "KHM-A")
    assert a["properties"]["remaining_area_m2"] == pytest.approx(true_area(0, 0, 1000, 1000), rel=1e-4)
    mid = items(client, datetime="2018-12-31T23:00:00Z", state="KHM")
    by_ext = {f["properties"]["external_id"]: f["properties"] for f in mid["features"]}
    assert by_ext["KHM-A"]["remaining_area_m2"] == pytest.approx(true_area(400, 0, 600, 1000), rel=1e-4)
    assert by_ext["KHM-B"]["status"] == "active" and by_ext["KHM-C"]["classification"] == "SHA"
    assert items(client, datetime="2019-05-01", status="released")["numberMatched"] == 1
    # events: an instant is "as of", an interval selects the dates within it
    assert items(client, "land_release_events", datetime="2018-12-31")["numberMatched"] == 1
    assert items(client, "land_release_events", datetime="2019-01-01/..")["numberMatched"] == 2
    assert items(client, "land_release_events", datetime="../2019-05-01")["numberMatched"] == 2
    assert items(client, "land_release_events", datetime="2019-01-01/2019-12-31")["numberMatched"] == 1
    for bad in ("yesterday", "2020-13-01", "2020-01-01/2019-01-01", "a/b/c"):
        assert items(client, "land_release_events", expect=400, datetime=bad)["invalid_params"][0]["name"] == \
            "datetime"
    assert "instant" in items(client, expect=400, datetime="2018-01-01/2019-01-01")["detail"]


def test_bbox_in_crs84_epsg4326_and_projected(client, ledger) -> None:
    to_ll = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)
    # around KHM-A only (x 0..1000 m, y 0..1000 m from the origin)
    (x1, y1), (x2, y2) = (to_ll.transform(500_000 + 100, 1_450_000 + 100),
                          to_ll.transform(500_000 + 900, 1_450_000 + 900))
    body = items(client, bbox=f"{x1},{y1},{x2},{y2}")
    assert [f["properties"]["external_id"] for f in body["features"]] == ["KHM-A"]
    body = items(client, bbox=f"{y1},{x1},{y2},{x2}", **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert [f["properties"]["external_id"] for f in body["features"]] == ["KHM-A"]
    body = items(client, bbox="501900,1449900,504500,1450600", **{"bbox-crs": "EPSG:32648"})
    assert {f["properties"]["external_id"] for f in body["features"]} == {"KHM-C"}  # KHM-B: nothing remains
    body = items(client, bbox="501900,1449900,504500,1450600", geometry="baseline", **{"bbox-crs": "EPSG:32648"})
    assert {f["properties"]["external_id"] for f in body["features"]} == {"KHM-B", "KHM-C"}
    assert items(client, bbox="0,0,1,1")["numberMatched"] == 0
    six = items(client, bbox=f"{x1},{y1},0,{x2},{y2},10")
    assert six["numberMatched"] == 1
    # events take the bbox on their released geometry
    assert items(client, "land_release_events", bbox=f"{x1},{y1},{x2},{y2}")["numberMatched"] == 1
    for bad in ("1,2,3", "a,b,c,d", "0,10,1,5", "-200,0,0,1"):
        assert items(client, expect=400, bbox=bad)["invalid_params"][0]["name"] == "bbox"
    assert items(client, expect=400, bbox="0,0,1,1", **{"bbox-crs": "EPSG:999999"})["invalid_params"][0]["name"] == \
        "bbox-crs"
    assert items(client, expect=400, **{"bbox-crs": "EPSG:4326"})["invalid_params"][0]["name"] == "bbox-crs"


def test_output_crs_and_content_crs_header(client, ledger) -> None:
    default = client.get("/collections/hazardous_areas/items", params={"state": "THA"})
    assert default.headers["content-crs"] == f"<{CRS84}>"
    lon, lat = default.json()["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 104 < lon < 106 and 12 < lat < 14
    latlon = client.get("/collections/hazardous_areas/items",
                        params={"state": "THA", "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert latlon.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    assert latlon.json()["features"][0]["geometry"]["coordinates"][0][0][0] == pytest.approx([lat, lon])
    utm = client.get("/collections/hazardous_areas/items", params={"state": "THA", "crs": "EPSG:32648"})
    assert utm.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/32648>"
    ring = utm.json()["features"][0]["geometry"]["coordinates"][0][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert min(xs) == pytest.approx(500_000, abs=0.05) and max(xs) == pytest.approx(500_200, abs=0.05)
    assert min(ys) == pytest.approx(1_455_000, abs=0.05) and max(ys) == pytest.approx(1_455_200, abs=0.05)
    one = client.get(f"/collections/hazardous_areas/items/{ledger['t']['id']}", params={"crs": "EPSG:32648"})
    assert one.status_code == 200 and one.headers["content-crs"].endswith("/32648>")
    assert items(client, expect=400, crs="EPSG:999999")["invalid_params"][0]["name"] == "crs"
    assert items(client, expect=400, crs="WGS84 please")["invalid_params"][0]["name"] == "crs"


def test_one_feature(client, ledger) -> None:
    response = client.get(f"/collections/hazardous_areas/items/{ledger['a']['id']}")
    assert response.status_code == 200 and response.headers["content-type"].startswith(GEOJSON)
    feature = response.json()
    assert feature["type"] == "Feature" and feature["id"] == ledger["a"]["id"]
    assert feature["properties"]["external_id"] == "KHM-A"
    assert any(link["rel"] == "collection" for link in feature["links"])
    then = client.get(f"/collections/hazardous_areas/items/{ledger['b']['id']}", params={"datetime": "2016-01-01"})
    assert then.status_code == 404  # recorded later
    baseline = client.get(f"/collections/hazardous_areas/items/{ledger['b']['id']}", params={"geometry": "baseline"})
    assert baseline.json()["geometry"]["type"] == "MultiPolygon"
    assert client.get(f"/collections/hazardous_areas/items/{ledger['a']['id']}", params={"limit": 3}).status_code == 400
    event = client.get(f"/collections/land_release_events/items/{ledger['e1']['id']}").json()
    assert event["properties"]["hazard_id"] == ledger["a"]["id"]


def test_limit_parameter(client) -> None:
    post_many(client, 12)
    assert items(client, limit=5)["numberReturned"] == 5
    assert items(client)["numberReturned"] == 12
    assert items(client, limit=10_000)["numberReturned"] == 12  # the declared maximum
    # above the declared maximum: a 400 that says so (issue 17: it was served as the maximum, silently)
    assert "at most 10000" in items(client, expect=400, limit=10_001)["invalid_params"][0]["reason"]
    for bad in ("0", "-3", "ten", "2.5"):
        assert items(client, expect=400, limit=bad)["invalid_params"][0]["name"] == "limit"
    assert items(client, expect=400, offset="-1")["invalid_params"][0]["name"] == "offset"
    assert items(client, expect=400, f="xml")["invalid_params"][0]["name"] == "f"  # f=html is offered (html.py)


def test_paging_through_a_layer_bigger_than_a_page_gets_every_feature_once(client) -> None:
    created = post_many(client, 250)
    seen: list[str] = []
    url = "/collections/hazardous_areas/items?limit=100"
    pages = 0
    while url:
        body = client.get(url).json()
        pages += 1
        # the first and the last page say how many match; the one in the middle does not count again
        assert body.get("numberMatched") == (None if pages == 2 else 250)
        assert body["numberReturned"] == len(body["features"])
        seen += [f["id"] for f in body["features"]]
        rels = {link["rel"]: link["href"] for link in body["links"]}
        if pages > 1:
            assert "prev" in rels
        url = rels.get("next")
        assert pages <= 3
    assert pages == 3 and len(seen) == 250 and set(seen) == {h["id"] for h in created}
    # the default page is 100, and the prev link of page 2 leads back to page 1
    page2 = items(client, offset=100)
    prev = next(link["href"] for link in page2["links"] if link["rel"] == "prev")
    assert [f["id"] for f in client.get(prev).json()["features"]] == seen[:100]
    # past the end: no features, and the count is still given
    past = items(client, offset=1000)
    assert past["numberReturned"] == 0 and past["numberMatched"] == 250


def test_next_links_page_by_id_so_a_change_between_pages_skips_nothing(client) -> None:
    """The next link carries the last id of the page (keyset paging): a hazard of page 1 released in full
    while the client reads (so it leaves the status=active layer) does not push a feature off page 2."""
    created = post_many(client, 250)
    first = items(client, limit=100, status="active")
    next_link = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert f"after={first['features'][-1]['id']}" in next_link and "offset=100" in next_link
    gone = first["features"][0]
    index = int(gone["properties"]["external_id"].split("-")[1])
    post_event(client, gone["id"], "clearance", "2024-01-10", rect(index * 100.0 - 5, -5005, 60, 60))
    seen = [f["id"] for f in first["features"]]
    url = next_link
    while url:
        body = client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == 250 and set(seen) == {h["id"] for h in created}  # nothing skipped, nothing twice
    assert body["numberMatched"] == 249  # the count is of the layer as it is now
    assert items(client, expect=400, after="not-an-id")["invalid_params"][0]["name"] == "after"
    # a hand-made `after` without the offset still gets the right count
    tail = items(client, limit=100, after=seen[199])
    assert [f["id"] for f in tail["features"]] == seen[200:] and tail["numberMatched"] == 250


def test_gdal_reads_every_collection_with_the_right_count(client, ledger, live_server, admin_key,
                                                          tmp_path: Path) -> None:
    post_many(client, 230, prefix="G")
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {admin_key}"}  # GDAL sends the key
    expected = {"hazardous_areas": 234, "land_release_events": 3}
    for name, count in expected.items():
        info = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{live_server}", name],
                              capture_output=True, text=True, timeout=120, env=env)
        assert info.returncode == 0, info.stderr
        assert f"Feature Count: {count}" in info.stdout, info.stdout
        out = tmp_path / f"{name}.gpkg"
        copy = subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live_server}", name,
                               "-oo", "PAGE_SIZE=100"], capture_output=True, text=True, timeout=300, env=env)
        assert copy.returncode == 0, copy.stderr
        import pyogrio

        frame = pyogrio.read_dataframe(out)
        assert len(frame) == count
        if name == "hazardous_areas":
            assert frame["external_id"].is_unique
            a = frame[frame["external_id"] == "KHM-A"].iloc[0]
            assert a["remaining_area_m2"] == pytest.approx(true_area(400, 0, 600, 1000), rel=1e-4)
    # a bbox through GDAL (-spat) becomes the bbox parameter
    to_ll = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)
    (x1, y1), (x2, y2) = to_ll.transform(500_100, 1_450_100), to_ll.transform(500_900, 1_450_900)
    spat = subprocess.run(["ogrinfo", "-ro", "-al", "-so", f"OAPIF:{live_server}/collections/hazardous_areas",
                           "-spat", str(x1), str(y1), str(x2), str(y2)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert spat.returncode == 0, spat.stderr
    assert "Feature Count: 1\n" in spat.stdout, spat.stdout


def test_a_page_is_made_in_full_then_sent_in_chunks(client) -> None:
    """The page is complete (its size known) before anything is sent; it leaves in pieces, header first,
    counts and links last."""
    from app.ogc import collections, params
    from app.ogc import items as features

    post_many(client, 300)
    query = params.ItemsQuery(collection=collections.COLLECTIONS["hazardous_areas"], limit=300)
    page = features.make_page(query, lambda returned, has_next, last_id: [])
    chunks = list(page.chunks())
    assert len(chunks) >= 3 and sum(len(chunk) for chunk in chunks) == page.size
    assert chunks[0].startswith(b'{"type":"FeatureCollection"')
    assert b'"numberMatched": 300' in chunks[-1] and b'"numberMatched"' not in chunks[0]
    body = json.loads(b"".join(chunks))
    assert body["numberReturned"] == 300 and len({f["id"] for f in body["features"]}) == 300
    assert page.spool.closed

def test_collection_extent_covers_only_what_the_key_may_read(client, client_as, ledger) -> None:
    everything = client.get("/collections/hazardous_areas").json()["extent"]["spatial"]["bbox"][0]
    khm_viewer = client_as("viewer", "KHM")
    own = khm_viewer.get("/collections/hazardous_areas").json()["extent"]["spatial"]["bbox"][0]
    listed = khm_viewer.get("/collections").json()["collections"][0]["extent"]["spatial"]["bbox"][0]
    assert own == listed
    # the THA hazard lies about 5 km north of the KHM ones: a KHM key must not learn where it is
    assert own[3] < everything[3] - 0.03
    assert own[1] == pytest.approx(everything[1])


def test_a_slow_client_holds_no_database_connection(client) -> None:
    """When the page is ready to send, its statements are done and the connection is back in the pool:
    the client's pace never holds a statement (nor runs it into the statement timeout)."""
    from app import database
    from app.ogc import collections, params
    from app.ogc import items as features

    post_many(client, 300)
    page = features.make_page(params.ItemsQuery(collection=collections.COLLECTIONS["hazardous_areas"], limit=300),
                              lambda *link_args: [])
    assert database.get_engine().pool.checkedout() == 0
    document = json.loads(b"".join(page.chunks()))
    assert document["numberReturned"] == 300 and len(document["features"]) == 300


def test_a_page_past_the_memory_bound_waits_on_disk(client, monkeypatch) -> None:
    """A page holds at most SPOOL_MEMORY_BYTES in memory; the rest waits in a temporary file and comes out
    whole and in order."""
    from app.ogc import collections, pages, params
    from app.ogc import items as features

    post_many(client, 300)
    query = params.ItemsQuery(collection=collections.COLLECTIONS["hazardous_areas"], limit=300)
    in_memory = features.make_page(query, lambda *link_args: [])
    assert not in_memory.spool._rolled
    expected = [f["id"] for f in json.loads(b"".join(in_memory.chunks()))["features"]]
    monkeypatch.setattr(pages, "SPOOL_MEMORY_BYTES", 1000)
    on_disk = features.make_page(query, lambda *link_args: [])
    assert on_disk.spool._rolled and on_disk.size > 100_000
    assert [f["id"] for f in json.loads(b"".join(on_disk.chunks()))["features"]] == expected


def test_tiles_do_not_declare_the_paging_parameters(client) -> None:
    document = client.get("/api").json()
    tile_path = next(path for path in document["paths"] if "/tiles/" in path)
    names = {p["name"] for p in document["paths"][tile_path]["get"]["parameters"]}
    assert "bbox" in names and not names & {"limit", "offset", "after", "crs"}


def test_a_client_gone_in_the_middle_of_a_page_leaves_nothing_behind(client) -> None:
    """A page that nobody reads to the end has its spool closed; the connections it used are back in the
    pool in a state the next request can use."""
    from app import database
    from app.ogc import collections, params
    from app.ogc import items as features

    post_many(client, 300)
    for _ in range(database.get_engine().pool.size() + 1):  # every pooled connection, and then some
        page = features.make_page(params.ItemsQuery(collection=collections.COLLECTIONS["hazardous_areas"],
                                                      limit=300), lambda *link_args: [])
        body = page.chunks()
        assert next(body).startswith(b'{"type":"FeatureCollection"')
        body.close()
        assert page.spool.closed
    assert items(client, limit=300)["numberReturned"] == 300

def test_a_database_error_is_a_problem_not_a_cut_off_document(client, ledger, monkeypatch) -> None:
    from app.ogc import items as features

    assert client.get("/collections/hazardous_areas/items", params={"offset": "9" * 30}).status_code == 400
    real_page_sql = features.page_sql
    monkeypatch.setattr(features, "page_sql",
                        lambda query: ("SELECT no_such_column FROM hazardous_areas", *real_page_sql(query)[1:]))
    response = client.get("/collections/hazardous_areas/items")
    assert response.status_code >= 500
    assert response.headers["content-type"].startswith("application/problem+json")


# --- failures in the middle of a page: a problem answer or a transfer error, never a cut 200 -------------------
SLOW_PAGE_FEATURES = 400
SLOW_SECONDS_PER_FEATURE = 0.01  # the page's COPY takes at least 4 s; its first 64 KB are ready after ~1 s


@pytest.fixture
def slow_features(client, database_url: str):
    """Every Feature of a page costs PostgreSQL SLOW_SECONDS_PER_FEATURE: a `ST_IsEmpty(geometry)` that sleeps
    first, found before PostGIS's own on the search path of new connections (the page's SQL is unchanged).
    Yields a function that reconfigures the engine with a statement timeout."""
    from sqlalchemy import text

    from app import database
    from app.settings import get_settings

    post_many(client, SLOW_PAGE_FEATURES, size=20.0)
    with database.get_engine().begin() as conn:
        conn.execute(text("CREATE SCHEMA slow_features"))
        conn.execute(text(f"""
            CREATE FUNCTION slow_features.st_isempty(g public.geometry) RETURNS boolean LANGUAGE plpgsql VOLATILE AS
            $$ BEGIN PERFORM pg_sleep({SLOW_SECONDS_PER_FEATURE}); RETURN public.st_isempty(g); END $$"""))
        conn.execute(text('ALTER ROLE CURRENT_USER SET search_path = slow_features, "$user", public'))

    def with_statement_timeout(milliseconds: int) -> None:
        database.configure(database_url, get_settings().model_copy(update={"statement_timeout_ms": milliseconds}))

    database.configure(database_url)  # new connections: the slow function comes first
    try:
        yield with_statement_timeout
    finally:
        with database.get_engine().begin() as conn:
            conn.execute(text("ALTER ROLE CURRENT_USER RESET search_path"))
            conn.execute(text("DROP SCHEMA slow_features CASCADE"))
        database.configure(database_url)


def _get(live_server: str, admin_key: str, path: str):
    """A GET with a plain HTTP/1.1 client: (response, body); reading the body raises on a transfer error."""
    import http.client
    from urllib.parse import urlsplit

    from tests.conftest import auth_headers

    address = urlsplit(live_server)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    connection.request("GET", path, headers=auth_headers(admin_key))
    response = connection.getresponse()
    try:
        return response, response.read()
    finally:
        connection.close()


def _is_problem(response, body: bytes, status: int) -> dict:
    assert response.status == status, body[:300]
    assert response.getheader("content-type").startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == status
    return problem


def test_a_statement_timeout_in_the_middle_of_a_page_is_a_problem_not_a_cut_200(slow_features, live_server,
                                                                                   admin_key) -> None:
    """The COPY runs past the statement timeout after its first chunks were made (the status line used to be
    sent by then): the client gets a 503 problem, whole."""
    slow_features(2000)
    started = time.monotonic()
    response, body = _get(live_server, admin_key, f"/collections/hazardous_areas/items?limit={SLOW_PAGE_FEATURES}")
    assert time.monotonic() - started >= 1.9  # it was the page's COPY that was cancelled, not something before it
    assert "took too long" in _is_problem(response, body, 503)["detail"]


def test_a_database_connection_lost_in_the_middle_of_a_page_is_a_problem_not_a_cut_200(
        slow_features, live_server, admin_key) -> None:
    """The backend COPYing the page is terminated 1.5 s into the COPY: a 503 problem, and the next page is whole."""
    import threading

    from tests.test_concurrency import _terminate_backend_running

    outcome: dict = {}
    request = threading.Thread(target=lambda: outcome.update(answer=_get(
        live_server, admin_key, f"/collections/hazardous_areas/items?limit={SLOW_PAGE_FEATURES}")))
    request.start()
    terminated = _terminate_backend_running(
        request, "query LIKE 'COPY (SELECT f.id%' AND state = 'active' "
                 "AND now() - query_start > interval '1500 milliseconds'", seconds=60)
    request.join(timeout=120)
    assert terminated, "the page was made before its connection could be cut"
    assert "unavailable" in _is_problem(*outcome["answer"], 503)["detail"]
    response, body = _get(live_server, admin_key, "/collections/hazardous_areas/items?limit=5")
    assert response.status == 200 and json.loads(body)["numberReturned"] == 5


def test_a_failure_after_the_status_line_is_a_transfer_error(client, live_server, admin_key, monkeypatch) -> None:
    """Past the status line (a spool that cannot be read back) the connection is cut short of the
    Content-Length: HTTP clients report a transfer error instead of taking a shorter document."""
    import errno
    import http.client

    from app.ogc import pages

    post_many(client, 300)
    real_chunks = pages.Page.chunks

    def failing_chunks(page):
        chunks = real_chunks(page)
        yield next(chunks)
        chunks.close()
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(pages.Page, "chunks", failing_chunks)
    path = "/collections/hazardous_areas/items?limit=300"
    with pytest.raises(http.client.IncompleteRead):
        _get(live_server, admin_key, path)
    curl = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", f"Authorization: Bearer {admin_key}",
                           f"{live_server}{path}"], capture_output=True, text=True, timeout=60, check=False)
    assert curl.returncode == 18, curl.stderr  # CURLE_PARTIAL_FILE: "transfer closed with ... bytes remaining"
    gdal = subprocess.run(["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{live_server}", "hazardous_areas"],
                          capture_output=True, text=True, timeout=120, check=False)
    # GDAL says so ("Recv failure" or "Connection died") and the layer ends there (ogrinfo itself exits 0)
    assert "ERROR 1:" in gdal.stderr and gdal.stdout.count("OGRFeature(") < 300
    monkeypatch.setattr(pages.Page, "chunks", real_chunks)
    response, body = _get(live_server, admin_key, path)
    assert int(response.getheader("content-length")) == len(body) and json.loads(body)["numberReturned"] == 300


def test_no_room_for_the_page_is_a_problem_before_anything_is_sent(client, monkeypatch, tmp_path: Path) -> None:
    """The spool's temporary file cannot be made (here: its folder is gone): a 503 with Retry-After, and the
    database connection is back in the pool, usable."""
    import tempfile

    from app import database
    from app.ogc import pages

    post_many(client, 300)
    monkeypatch.setattr(pages, "SPOOL_MEMORY_BYTES", 1000)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    response = client.get("/collections/hazardous_areas/items", params={"limit": 300})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "30" and "could not hold the page" in response.json()["detail"]
    assert database.get_engine().pool.checkedout() == 0
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert items(client, limit=300)["numberReturned"] == 300
