"""The land-release ledger: every accounting rule of shared/domain.md, against real PostGIS."""
from __future__ import annotations

import threading
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import text

from app import database
from tests.conftest import auth_headers
from tests.ledger_scenarios import (
    UTM48N,
    hazard_feature,
    post_event,
    post_hazard,
    rect,
    rect_lonlat,
    true_area,
)

REL = 1e-4  # relative tolerance on areas (the geodesic areas of PostGIS and pyproj agree to ~1e-6)


def approx(value: float) -> pytest.approx:
    return pytest.approx(value, rel=REL, abs=2.0)


def hazard(client, hazard_id: str, as_of: str | None = None) -> dict:
    response = client.get(f"/api/v1/hazards/{hazard_id}", params={"as_of": as_of} if as_of else {})
    assert response.status_code == 200, response.text
    return response.json()


def stored_hazard_count() -> int:
    with database.get_engine().connect() as conn:
        return conn.execute(text("SELECT count(*) FROM hazardous_areas")).scalar_one()


# --- geometry in -----------------------------------------------------------------------------------
def test_utm_square_of_one_km_is_one_square_km(client) -> None:
    created = post_hazard(client, "KHM-1", rect(0, 0, 1000, 1000))
    assert created["baseline_area_m2"] == pytest.approx(1_000_000, rel=1e-3)
    assert created["remaining_area_m2"] == created["baseline_area_m2"]
    assert created["baseline_area_m2"] == approx(true_area(0, 0, 1000, 1000))


def test_wgs84_input_is_the_default(client) -> None:
    created = post_hazard(client, "KHM-LL", rect_lonlat(0, 0, 200, 300), crs=None)
    assert created["baseline_area_m2"] == approx(true_area(0, 0, 200, 300))
    feature = hazard(client, created["id"])
    assert feature["geometry"]["type"] == "MultiPolygon"
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert 104 < lon < 106 and 12 < lat < 14  # Battambang, longitude first


def test_unknown_crs_is_400(client) -> None:
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": "EPSG:999999"},
                           json=hazard_feature("X", rect(0, 0, 10, 10)))
    assert response.status_code == 400
    assert "EPSG:999999" in response.json()["detail"]


def test_unknown_state_is_404(client) -> None:
    response = client.post("/api/v1/states/XXX/hazards", params={"crs": UTM48N},
                           json=hazard_feature("X", rect(0, 0, 10, 10)))
    assert response.status_code == 404
    assert "XXX" in response.json()["detail"]


def test_self_intersecting_polygon_is_422_unless_repaired(client) -> None:
    x0, y0 = 500_000, 1_450_000
    bowtie = {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + 100, y0 + 100], [x0 + 100, y0], [x0, y0 + 100],
                                                  [x0, y0]]]}
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json=hazard_feature("BOW", bowtie))
    assert response.status_code == 422
    body = response.json()
    assert "Self-intersection" in body["detail"]
    assert body["invalid_features"][0]["external_id"] == "BOW"
    assert stored_hazard_count() == 0

    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N, "repair": "true"},
                           json=hazard_feature("BOW", bowtie))
    assert response.status_code == 201, response.text
    created = response.json()["hazards"][0]
    # the repaired bow tie is two triangles of a quarter of the square each
    assert created["baseline_area_m2"] == pytest.approx(true_area(0, 0, 100, 100) / 2, rel=1e-3)
    assert created["repair"]["area_after_m2"] == pytest.approx(created["baseline_area_m2"], rel=1e-3)
    assert "Self-intersection" in created["repair"]["reason"]


def test_feature_collection_is_all_or_nothing(client) -> None:
    good = hazard_feature("GOOD-1", rect(0, 0, 100, 100))
    unclosed = hazard_feature("BAD-1", {"type": "Polygon", "coordinates": [rect(200, 0, 100, 100)["coordinates"][0][:-1]
                                                                             + [[500_150, 1_450_050]]]})
    point = hazard_feature("BAD-2", {"type": "Point", "coordinates": [500_000, 1_450_000]})
    no_class = {"type": "Feature", "geometry": rect(400, 0, 100, 100),
                "properties": {"external_id": "BAD-3", "recorded_on": "2016-01-01"}}
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json={"type": "FeatureCollection", "features": [good, unclosed, point, no_class]})
    assert response.status_code == 422
    invalid = response.json()["invalid_features"]
    assert [(f["index"], f["external_id"]) for f in invalid] == [(1, "BAD-1"), (2, "BAD-2"), (3, "BAD-3")]
    assert "not closed" in invalid[0]["errors"][0]["message"]
    assert "Point" in invalid[1]["errors"][0]["message"]
    assert invalid[2]["errors"][0]["field"] == "properties.classification"
    assert stored_hazard_count() == 0


def test_repost_identical_is_200_same_id_and_different_is_409(client) -> None:
    first = post_hazard(client, "KHM-7", rect(0, 0, 300, 300), region="Battambang")
    again = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                        json=hazard_feature("KHM-7", rect(0, 0, 300, 300), region="Battambang"))
    assert again.status_code == 200
    assert again.json()["hazards"][0]["id"] == first["id"]
    changed = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                          json=hazard_feature("KHM-7", rect(0, 0, 301, 300), region="Battambang"))
    assert changed.status_code == 409
    assert first["id"] in changed.json()["detail"]
    assert stored_hazard_count() == 1


def test_latitude_longitude_swapped_is_called_out(client) -> None:
    swapped = {"type": "Polygon", "coordinates": [[[13.0, 103.0], [13.01, 103.0], [13.01, 103.01], [13.0, 103.01],
                                                   [13.0, 103.0]]]}
    response = client.post("/api/v1/states/KHM/hazards", json=hazard_feature("SW", swapped))
    assert response.status_code == 422
    assert "longitude first" in response.json()["detail"]


# --- events ---------------------------------------------------------------------------------------
def test_event_releases_only_what_remains_and_reports_what_is_outside(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    first = post_event(client, h["id"], "cancellation", "2016-03-01", rect(0, 0, 400, 1000))
    assert first["released_area_m2"] == approx(true_area(0, 0, 400, 1000))
    assert first["outside_area_m2"] == 0
    # overlaps the cancelled strip by 200 m and sticks out of the hazard by 100 m
    second = post_event(client, h["id"], "clearance", "2017-03-01", rect(200, 0, 900, 1000),
                        items_destroyed={"ap_mines": 4, "other_eo": 1}, organisation="CMAC")
    assert second["released_area_m2"] == approx(true_area(400, 0, 600, 1000))
    assert second["outside_area_m2"] == approx(true_area(1000, 0, 100, 1000))
    assert second["remaining_area_m2"] == pytest.approx(0)
    assert second["hazard_status"] == "released"
    feature = hazard(client, h["id"])
    assert feature["properties"]["status"] == "released"
    assert feature["properties"]["released_on"] == "2017-03-01"
    assert feature["properties"]["events"][1]["items_destroyed"]["ap_mines"] == 4
    # nothing remains: a further event is refused
    response = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N},
                           json={"kind": "clearance", "date": "2018-01-01", "geometry": rect(0, 0, 10, 10)})
    assert response.status_code == 422
    assert "fully released" in response.json()["detail"]


def test_event_rules_dates_and_empty_release(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 100, 100), recorded_on="2015-06-01")
    cases = [
        ({"kind": "clearance", "date": "2015-05-31", "geometry": rect(0, 0, 10, 10)}, "before the hazard was recorded"),
        ({"kind": "clearance", "date": (date.today() + timedelta(days=2)).isoformat(), "geometry": rect(0, 0, 10, 10)},
         "future"),
        ({"kind": "clearance", "date": "2016-01-01", "geometry": rect(500, 500, 10, 10)}, "releases nothing"),
        ({"kind": "clearance", "date": "2016-01-01"}, "needs the geometry"),
    ]
    for body, message in cases:
        response = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N}, json=body)
        assert response.status_code == 422, body
        assert message in response.json()["detail"]
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM land_release_events")).scalar_one() == 0
    unknown = client.post("/api/v1/hazards/00000000-0000-0000-0000-000000000000/events",
                          json={"kind": "clearance", "date": "2016-01-01", "geometry": rect_lonlat(0, 0, 10, 10)})
    assert unknown.status_code == 404
    bad_items = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N},
                            json={"kind": "clearance", "date": "2016-01-01", "geometry": rect(0, 0, 10, 10),
                                  "items_destroyed": {"ap_mines": -1}})
    assert bad_items.status_code == 422
    assert "items_destroyed" in bad_items.json()["detail"]


def test_back_dated_event_replays_later_events(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    late = post_event(client, h["id"], "clearance", "2020-01-01", rect(0, 0, 600, 1000))
    assert late["released_area_m2"] == approx(true_area(0, 0, 600, 1000))
    early = post_event(client, h["id"], "cancellation", "2018-01-01", rect(400, 0, 600, 1000))
    # the earlier cancellation takes its whole polygon; the clearance now only what was left of its own
    assert early["released_area_m2"] == approx(true_area(400, 0, 600, 1000))
    events = {e["id"]: e for e in hazard(client, h["id"])["properties"]["events"]}
    assert events[late["id"]]["released_area_m2"] == approx(true_area(0, 0, 400, 1000))
    assert hazard(client, h["id"])["properties"]["status"] == "released"
    assert hazard(client, h["id"])["properties"]["released_on"] == "2020-01-01"
    between = hazard(client, h["id"], "2019-06-30")["properties"]
    assert between["remaining_area_m2"] == approx(true_area(0, 0, 400, 1000))
    assert between["status"] == "active"
    assert hazard(client, h["id"], "2017-12-31")["properties"]["remaining_area_m2"] == approx(
        true_area(0, 0, 1000, 1000))


def test_as_of_geometry_is_what_remained_that_day(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    post_event(client, h["id"], "reduction", "2016-01-01", rect(0, 0, 500, 1000))
    post_event(client, h["id"], "clearance", "2017-01-01", rect(500, 0, 250, 1000))
    from shapely.geometry import shape

    from app.geometry import geodesic_area_m2

    then = hazard(client, h["id"], "2016-06-01")
    assert geodesic_area_m2(shape(then["geometry"])) == approx(true_area(500, 0, 500, 1000))
    assert [e["kind"] for e in then["properties"]["events"]] == ["reduction"]
    now = hazard(client, h["id"])
    assert geodesic_area_m2(shape(now["geometry"])) == approx(true_area(750, 0, 250, 1000))
    before = client.get(f"/api/v1/hazards/{h['id']}", params={"as_of": "2014-01-01"})
    assert before.status_code == 404
    assert "recorded on 2015-01-01" in before.json()["detail"]


def test_void_recomputes_as_if_the_event_never_happened(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    wrong = post_event(client, h["id"], "clearance", "2016-01-01", rect(0, 0, 600, 1000))
    later = post_event(client, h["id"], "clearance", "2017-01-01", rect(400, 0, 600, 1000))
    assert later["released_area_m2"] == approx(true_area(600, 0, 400, 1000))
    assert later["remaining_area_m2"] == pytest.approx(0)
    voided = client.post(f"/api/v1/events/{wrong['id']}/void", json={"reason": "entered on the wrong hazard"})
    assert voided.status_code == 200
    props = hazard(client, h["id"])["properties"]
    assert props["remaining_area_m2"] == approx(true_area(0, 0, 400, 1000))
    assert props["status"] == "active" and props["released_on"] is None
    events = {e["id"]: e for e in props["events"]}
    assert events[wrong["id"]]["voided"] and events[wrong["id"]]["void_reason"] == "entered on the wrong hazard"
    assert events[later["id"]]["released_area_m2"] == approx(true_area(400, 0, 600, 1000))
    again = client.post(f"/api/v1/events/{wrong['id']}/void", json={"reason": "twice"})
    assert again.status_code == 409
    no_reason = client.post(f"/api/v1/events/{later['id']}/void", json={})
    assert no_reason.status_code == 422
    with database.get_engine().connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE row_id = :id ORDER BY id"),
                               {"id": wrong["id"]}).scalars().all()
    assert actions == ["create", "void"]


def test_reclassification_split_makes_a_new_cha_and_releases_nothing(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000), contamination=["AP_MINE", "AV_MINE"], region="Pailin")
    split = post_event(client, h["id"], "reclassification", "2018-05-01", rect(0, 0, 300, 300))
    child_id = split["new_hazard_id"]
    assert child_id
    child = hazard(client, child_id)["properties"]
    assert child["classification"] == "CHA"
    assert child["parent_id"] == h["id"]
    assert child["recorded_on"] == "2018-05-01"
    assert child["region"] == "Pailin" and sorted(child["contamination"]) == ["AP_MINE", "AV_MINE"]
    assert child["baseline_area_m2"] == approx(true_area(0, 0, 300, 300))
    parent = hazard(client, h["id"])["properties"]
    assert parent["classification"] == "SHA"
    assert parent["remaining_area_m2"] == approx(true_area(0, 0, 1000, 1000) - true_area(0, 0, 300, 300))
    # before the split the child does not exist and the parent is whole
    assert client.get(f"/api/v1/hazards/{child_id}", params={"as_of": "2018-04-30"}).status_code == 404
    assert hazard(client, h["id"], "2018-04-30")["properties"]["remaining_area_m2"] == approx(
        true_area(0, 0, 1000, 1000))
    # the split-off CHA is cleared on its own
    cleared = post_event(client, child_id, "clearance", "2019-01-01", rect(0, 0, 300, 300),
                         items_destroyed={"ap_mines": 2})
    assert cleared["hazard_status"] == "released"
    # voiding the split is refused while the CHA has events
    response = client.post(f"/api/v1/events/{split['id']}/void", json={"reason": "mistake"})
    assert response.status_code == 409


def test_whole_reclassification_changes_class_from_that_date(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 500, 500))
    result = post_event(client, h["id"], "reclassification", "2019-01-01", None, crs=None)
    assert result["released_area_m2"] == 0 and result["new_hazard_id"] is None
    assert hazard(client, h["id"])["properties"]["classification"] == "CHA"
    assert hazard(client, h["id"], "2018-12-31")["properties"]["classification"] == "SHA"
    assert hazard(client, h["id"])["properties"]["remaining_area_m2"] == approx(true_area(0, 0, 500, 500))
    again = client.post(f"/api/v1/hazards/{h['id']}/events", json={"kind": "reclassification", "date": "2020-01-01"})
    assert again.status_code == 422
    assert "already a CHA" in again.json()["detail"]
    cha = post_hazard(client, "C", rect(2000, 0, 100, 100), classification="CHA")
    refused = client.post(f"/api/v1/hazards/{cha['id']}/events",
                          json={"kind": "reclassification", "date": "2020-01-01"})
    assert refused.status_code == 422


def test_event_external_id_is_idempotent(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 500, 500))
    body = {"kind": "clearance", "date": "2016-01-01", "geometry": rect(0, 0, 100, 100), "external_id": "EV-1",
            "items_destroyed": {"ap_mines": 1}}
    first = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N}, json=body)
    assert first.status_code == 201
    again = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N}, json=body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["released_area_m2"] == pytest.approx(first.json()["released_area_m2"])
    different = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N},
                            json={**body, "items_destroyed": {"ap_mines": 2}})
    assert different.status_code == 409
    assert first.json()["id"] in different.json()["detail"]
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM land_release_events")).scalar_one() == 1


def test_list_hazards_filters_and_pages(client) -> None:
    for i in range(5):
        post_hazard(client, f"H{i}", rect(i * 200, 0, 100, 100), classification="SHA" if i % 2 else "CHA",
                    recorded_on=f"201{i}-01-01")
    first = client.get("/api/v1/states/KHM/hazards", params={"limit": 2})
    assert first.status_code == 200
    body = first.json()
    assert body["numberMatched"] == 5 and body["numberReturned"] == 2
    seen = [f["properties"]["external_id"] for f in body["features"]]
    while next_link := next((link["href"] for link in body["links"] if link["rel"] == "next"), None):
        body = client.get(next_link).json()
        seen += [f["properties"]["external_id"] for f in body["features"]]
    assert seen == ["H0", "H1", "H2", "H3", "H4"]
    cha = client.get("/api/v1/states/KHM/hazards", params={"classification": "CHA"}).json()
    assert {f["properties"]["external_id"] for f in cha["features"]} == {"H0", "H2", "H4"}
    as_of = client.get("/api/v1/states/KHM/hazards", params={"as_of": "2012-06-01"}).json()
    assert {f["properties"]["external_id"] for f in as_of["features"]} == {"H0", "H1", "H2"}


# --- concurrency ------------------------------------------------------------------------------------
def test_concurrent_writers_on_one_hazard_lose_nothing(live_server: str, admin_key: str) -> None:
    headers = auth_headers(admin_key)
    with httpx.Client(base_url=live_server, headers=headers) as http:
        created = http.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                            json=hazard_feature("H", rect(0, 0, 1000, 1000))).json()["hazards"][0]
    barrier = threading.Barrier(2)
    results: list[httpx.Response] = []

    def write(x: float) -> None:
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as http:
            barrier.wait()
            results.append(http.post(f"/api/v1/hazards/{created['id']}/events", params={"crs": UTM48N},
                                     json={"kind": "clearance", "date": "2016-01-01",
                                           "geometry": rect(x, 0, 600, 1000)}))

    threads = [threading.Thread(target=write, args=(x,)) for x in (0, 400)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201, 201]
    with database.get_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT h.remaining_area_m2, ST_Area(ST_Difference(h.baseline_geom, "
            "(SELECT ST_Union(submitted_geom) FROM land_release_events e WHERE e.hazard_id = h.id))::geography) "
            "AS expected, "
            "(SELECT sum(released_area_m2) FROM land_release_events e WHERE e.hazard_id = h.id) AS released "
            "FROM hazardous_areas h WHERE h.id = :id"), {"id": created["id"]}).one()
    assert row.remaining_area_m2 == pytest.approx(row.expected, abs=2.0)
    assert row.released == approx(true_area(0, 0, 1000, 1000))


def test_back_dated_event_cannot_empty_a_split(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 100, 100))
    split = post_event(client, h["id"], "reclassification", "2020-06-01", rect(0, 0, 50, 100))
    # a clearance of the same half dated before the split would leave the split-off CHA with nothing
    response = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N},
                           json={"kind": "clearance", "date": "2020-01-01", "geometry": rect(0, 0, 50, 100)})
    assert response.status_code == 409
    assert split["id"] in response.json()["detail"]
    child = hazard(client, split["new_hazard_id"])["properties"]
    assert child["baseline_area_m2"] == approx(true_area(0, 0, 50, 100))
    # arriving in the other order it is refused too: the split would release nothing
    other = post_hazard(client, "H2", rect(1000, 0, 100, 100))
    post_event(client, other["id"], "clearance", "2020-01-01", rect(1000, 0, 50, 100))
    refused = client.post(f"/api/v1/hazards/{other['id']}/events", params={"crs": UTM48N},
                          json={"kind": "reclassification", "date": "2020-06-01", "geometry": rect(1000, 0, 50, 100)})
    assert refused.status_code == 422
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazardous_areas WHERE classification = 'CHA'")).scalar_one() == 1


def test_a_split_of_everything_is_a_whole_reclassification(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 100, 100))
    response = client.post(f"/api/v1/hazards/{h['id']}/events", params={"crs": UTM48N},
                           json={"kind": "reclassification", "date": "2020-06-01",
                                 "geometry": rect(-10, -10, 120, 120)})
    assert response.status_code == 422
    assert "without a geometry" in response.json()["detail"]
    props = hazard(client, h["id"])["properties"]
    assert props["status"] == "active" and props["classification"] == "SHA"


def test_back_dated_cancellation_of_the_parent_updates_the_outside_area_of_the_childs_events(client) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    split = post_event(client, h["id"], "reclassification", "2018-05-01", rect(0, 0, 500, 500))
    child_id = split["new_hazard_id"]
    cleared = post_event(client, child_id, "clearance", "2019-01-01", rect(0, 0, 500, 500))
    assert cleared["outside_area_m2"] == 0
    # the parent's corner x 0..200, y 0..200 was cancelled before the split: it never was in the CHA
    post_event(client, h["id"], "cancellation", "2017-01-01", rect(0, 0, 200, 200))
    child = hazard(client, child_id)["properties"]
    assert child["baseline_area_m2"] == approx(true_area(0, 0, 500, 500) - true_area(0, 0, 200, 200))
    (event,) = child["events"]
    assert event["outside_area_m2"] == approx(true_area(0, 0, 200, 200))
    assert event["released_area_m2"] == approx(true_area(0, 0, 500, 500) - true_area(0, 0, 200, 200))


@pytest.mark.parametrize("day", ["2017-01-01", "2018-05-01"])
def test_whole_reclassification_before_a_split_is_refused(client, day: str) -> None:
    h = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    split = post_event(client, h["id"], "reclassification", "2018-05-01", rect(0, 0, 500, 500))
    response = client.post(f"/api/v1/hazards/{h['id']}/events", json={"kind": "reclassification", "date": day})
    assert response.status_code == 409, response.text
    assert split["id"] in response.json()["detail"]
    assert hazard(client, h["id"])["properties"]["classification"] == "SHA"
    # after the split, what remains of the SHA may still become a CHA as a whole
    post_event(client, h["id"], "reclassification", "2019-01-01", None, crs=None)
    assert hazard(client, h["id"])["properties"]["classification"] == "CHA"
