"""Land is counted once per State: overlaps between hazards on write, on import, on void and on back-dating."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.geometry import geodesic_area_m2
from tests.conftest import auth_headers, make_api_key, reset_database
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect, true_area

REL = 1e-4


def approx(value: float) -> pytest.approx:
    return pytest.approx(value, rel=REL, abs=2.0)


def post_hazards(client, *features, overlap: str | None = None):
    params = {"crs": UTM48N, **({"overlap": overlap} if overlap else {})}
    body = features[0] if len(features) == 1 else {"type": "FeatureCollection", "features": list(features)}
    return client.post("/api/v1/states/KHM/hazards", params=params, json=body)


def remaining_total(client, as_of: str | None = None) -> float:
    params = {"as_of": as_of} if as_of else {}
    return client.get("/api/v1/states/KHM/summary", params=params).json()["remaining"]["total"]["area_m2"]


def external_ids(client) -> set[str]:
    page = client.get("/api/v1/states/KHM/hazards").json()
    return {f["properties"]["external_id"] for f in page["features"]}


def test_a_hazard_inside_another_is_refused_naming_it(client) -> None:
    post_hazard(client, "A", rect(0, 0, 1000, 1000))
    response = post_hazards(client, hazard_feature("B", rect(800, 800, 400, 400), recorded_on="2016-01-01"))
    assert response.status_code == 409, response.text
    body = response.json()
    assert "B overlaps A" in body["detail"]
    (pair,) = body["overlaps"]
    assert pair["overlap_m2"] == approx(true_area(800, 800, 200, 200))
    assert pair["from"] == "2016-01-01"
    assert external_ids(client) == {"A"}


def test_sharing_an_edge_is_no_overlap(client) -> None:
    post_hazard(client, "A", rect(0, 0, 1000, 1000))
    post_hazard(client, "B", rect(1000, 0, 1000, 1000))
    assert external_ids(client) == {"A", "B"}


def test_overlap_with_a_hazard_recorded_later_is_refused_too(client) -> None:
    # written in the other order of their dates: the overlap starts the day the later one counts
    post_hazard(client, "A", rect(0, 0, 1000, 1000), recorded_on="2018-01-01")
    response = post_hazards(client, hazard_feature("B", rect(500, 0, 1000, 1000), recorded_on="2015-01-01"))
    assert response.status_code == 409
    assert response.json()["overlaps"][0]["from"] == "2018-01-01"


def test_land_released_before_may_become_a_new_hazard(client) -> None:
    a = post_hazard(client, "A", rect(0, 0, 1000, 1000))
    post_event(client, a["id"], "clearance", "2017-01-01", rect(0, 0, 500, 1000))
    # residual contamination found on cleared land after its release (Oslo Action Plan Action 26)
    post_hazard(client, "B", rect(0, 0, 500, 500), recorded_on="2018-01-01")
    # but not dated while A still counted that land
    response = post_hazards(client, hazard_feature("C", rect(0, 600, 400, 400), recorded_on="2016-06-01"))
    assert response.status_code == 409
    assert response.json()["overlaps"][0]["overlap_m2"] == approx(true_area(0, 600, 400, 400))
    assert remaining_total(client) == approx(true_area(500, 0, 500, 1000) + true_area(0, 0, 500, 500))


def test_clip_records_the_land_not_already_counted(client) -> None:
    post_hazard(client, "A", rect(0, 0, 1000, 1000))
    response = post_hazards(client, hazard_feature("B", rect(800, 0, 400, 1000), recorded_on="2016-01-01"),
                            overlap="clip")
    assert response.status_code == 201, response.text
    (b,) = response.json()["hazards"]
    assert b["baseline_area_m2"] == approx(true_area(1000, 0, 200, 1000))
    assert b["clipped"]["area_m2"] == approx(true_area(800, 0, 200, 1000))
    assert b["clipped"]["overlaps"][0]["other_external_id"] == "A"
    assert remaining_total(client) == approx(true_area(0, 0, 1200, 1000))


def test_a_collection_is_all_or_nothing_and_checked_within_itself(client) -> None:
    post_hazard(client, "A", rect(0, 0, 1000, 1000))
    features = [hazard_feature("B", rect(2000, 0, 500, 500)),
                hazard_feature("C", rect(2400, 0, 500, 500), recorded_on="2016-01-01")]
    response = post_hazards(client, *features)
    assert response.status_code == 409
    assert response.json()["overlaps"][0]["external_id"] == "C"
    assert response.json()["overlaps"][0]["other_external_id"] == "B"
    assert external_ids(client) == {"A"}
    clipped = post_hazards(client, *features, overlap="clip")
    assert clipped.status_code == 201
    areas = {h["external_id"]: h["baseline_area_m2"] for h in clipped.json()["hazards"]}
    # the one recorded first keeps the shared land
    assert areas == approx({"B": true_area(2000, 0, 500, 500), "C": true_area(2500, 0, 400, 500)})


def test_a_hazard_wholly_counted_already_cannot_be_clipped_to_nothing(client) -> None:
    post_hazard(client, "A", rect(0, 0, 1000, 1000))
    response = post_hazards(client, hazard_feature("B", rect(100, 100, 200, 200)), overlap="clip")
    assert response.status_code == 409
    assert "B" in response.json()["detail"]
    assert external_ids(client) == {"A"}


def test_a_void_that_would_give_back_land_now_in_another_hazard_is_refused(client) -> None:
    a = post_hazard(client, "A", rect(0, 0, 1000, 1000))
    cleared = post_event(client, a["id"], "clearance", "2017-01-01", rect(0, 0, 500, 1000))
    b = post_hazard(client, "B", rect(0, 0, 500, 500), recorded_on="2018-01-01")
    response = client.post(f"/api/v1/events/{cleared['id']}/void", json={"reason": "wrong polygon"})
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert a["id"] in detail and b["id"] in detail
    assert response.json()["overlaps"][0]["overlap_m2"] == approx(true_area(0, 0, 500, 500))
    assert hazard_remaining(client, a["id"]) == approx(true_area(500, 0, 500, 1000))
    # a back-dated release only takes land away: no overlap can follow (the 2017 clearance releases less)
    post_event(client, a["id"], "cancellation", "2016-01-01", rect(0, 0, 200, 1000))
    assert remaining_total(client, "2018-06-01") == approx(true_area(500, 0, 500, 1000) + true_area(0, 0, 500, 500))
    # a void that gives back land nobody else counts is fine
    other = post_event(client, a["id"], "cancellation", "2019-01-01", rect(600, 0, 100, 100))
    assert client.post(f"/api/v1/events/{other['id']}/void", json={"reason": "mistake"}).status_code == 200


def hazard_remaining(client, hazard_id: str) -> float:
    return client.get(f"/api/v1/hazards/{hazard_id}").json()["properties"]["remaining_area_m2"]


def test_a_back_dated_split_that_would_keep_land_now_in_another_hazard_is_refused(client) -> None:
    a = post_hazard(client, "A", rect(0, 0, 1000, 1000))
    post_event(client, a["id"], "clearance", "2019-01-01", rect(0, 0, 300, 1000))
    post_hazard(client, "B", rect(0, 0, 300, 300), recorded_on="2020-01-01")
    # a split of 2018 would keep x 0..500, y 0..500 in a CHA that the 2019 clearance of A does not touch
    response = client.post(f"/api/v1/hazards/{a['id']}/events", params={"crs": UTM48N},
                           json={"kind": "reclassification", "date": "2018-01-01", "geometry": rect(0, 0, 500, 500)})
    assert response.status_code == 409, response.text
    assert response.json()["overlaps"][0]["overlap_m2"] == approx(true_area(0, 0, 300, 300))
    assert "B" in response.json()["detail"]
    assert external_ids(client) == {"A", "B"}
    # a split of land nobody else counts is fine
    post_event(client, a["id"], "reclassification", "2018-01-01", rect(500, 500, 300, 300))


def test_stored_overlaps_are_listed(client, database_url, monkeypatch, capsys) -> None:
    import json

    from sqlalchemy import text

    from app import cli, database
    from app.settings import get_settings

    a = post_hazard(client, "A", rect(0, 0, 1000, 1000))
    b = post_hazard(client, "B", rect(2000, 0, 1000, 1000), recorded_on="2017-01-01")
    # data loaded before the rule: B is moved onto A behind the API's back
    moved = ("ST_Translate(baseline_geom, (SELECT ST_XMin(baseline_geom) FROM hazardous_areas WHERE id = :a) "
             "- ST_XMin(baseline_geom) + 0.004, 0)")
    with database.get_engine().begin() as conn:
        conn.execute(text(f"UPDATE hazardous_areas SET baseline_geom = {moved}, remaining_geom = {moved} "
                          "WHERE id = :b"),
                     {"a": a["id"], "b": b["id"]})
    response = client.get("/api/v1/states/KHM/overlaps")
    assert response.status_code == 200, response.text
    (pair,) = response.json()["overlaps"]
    assert {pair["external_id"], pair["other_external_id"]} == {"A", "B"}
    assert pair["from"] == "2017-01-01"
    assert 100_000 < pair["overlap_m2"] < 1_000_000
    assert client.get("/api/v1/states/THA/overlaps").json()["overlaps"] == []
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert cli.main(["overlaps", "khm", "--json"]) == 0
        (listed,) = json.loads(capsys.readouterr().out)["overlaps"]
        assert listed["overlap_m2"] == pytest.approx(pair["overlap_m2"])
        assert cli.main(["overlaps", "KHM"]) == 0
        assert "1 overlap(s)" in capsys.readouterr().out
        assert cli.main(["overlaps", "XXX"]) == 1
    finally:
        get_settings.cache_clear()


def test_the_overlap_listing_is_read_by_the_readers_of_the_state(client_as) -> None:
    assert client_as(None).get("/api/v1/states/KHM/overlaps").status_code == 401
    assert client_as("viewer", "THA").get("/api/v1/states/KHM/overlaps").status_code == 403
    assert client_as("viewer", "KHM").get("/api/v1/states/KHM/overlaps").status_code == 200
    assert client_as("admin").get("/api/v1/states/XXX/overlaps").status_code == 404


# --- file import: the same rule, checked for the whole file in one statement -----------------------
def _file(tmp_path, name: str, boxes: list[tuple[str, float, float, float, float, str]]):
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import box

    from tests.ledger_scenarios import X0, Y0

    frame = gpd.GeoDataFrame(
        {"external_id": [b[0] for b in boxes], "classification": ["SHA"] * len(boxes),
         "recorded_on": [b[5] for b in boxes]},
        geometry=[box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h) for _, x, y, w, h, _ in boxes], crs=UTM48N)
    path = tmp_path / f"{name}.gpkg"
    pyogrio.write_dataframe(frame, path, driver="GPKG")
    return path


def _upload(client, path, **form):
    with path.open("rb") as f:
        return client.post("/api/v1/states/KHM/imports", files={"file": (path.name, f)}, data=form)


def test_import_refuses_overlaps_with_stored_hazards_and_within_the_file(client, tmp_path) -> None:
    post_hazard(client, "A", rect(0, 0, 1000, 1000))
    path = _file(tmp_path, "f", [("F1", 900, 0, 300, 300, "2016-01-01"), ("F2", 2000, 0, 500, 500, "2016-01-01"),
                                 ("F3", 2400, 0, 500, 500, "2016-02-01"), ("F4", 5000, 0, 100, 100, "2016-01-01")])
    response = _upload(client, path)
    assert response.status_code == 409, response.text
    pairs = {(p["external_id"], p["other_external_id"]): p["overlap_m2"] for p in response.json()["overlaps"]}
    assert pairs == approx({("F1", "A"): true_area(900, 0, 100, 300), ("F3", "F2"): true_area(2400, 0, 100, 500)})
    assert external_ids(client) == {"A"}

    clipped = _upload(client, path, overlap="clip")
    assert clipped.status_code == 201, clipped.text
    result = clipped.json()
    assert result["created"] == 4 and result["clipped_count"] == 2
    areas = {h["external_id"]: h["baseline_area_m2"] for h in result["hazards"]}
    assert areas == approx({"F1": true_area(1000, 0, 200, 300), "F2": true_area(2000, 0, 500, 500),
                            "F3": true_area(2500, 0, 400, 500), "F4": true_area(5000, 0, 100, 100)})
    assert {c["external_id"]: c["area_m2"] for c in result["clipped"]} == approx(
        {"F1": true_area(900, 0, 100, 300), "F3": true_area(2400, 0, 100, 500)})
    assert result["created_area_m2"] == approx(sum(areas.values()))
    assert client.get("/api/v1/states/KHM/overlaps").json()["overlaps"] == []
    # the same file again: the clipped hazards are stored with other polygons than the file's
    again = _upload(client, path, overlap="clip")
    assert again.status_code == 409
    assert {c["external_id"] for c in again.json()["conflicts"]} == {"F1", "F3"}


def test_import_on_land_released_before_is_no_overlap(client, tmp_path) -> None:
    a = post_hazard(client, "A", rect(0, 0, 1000, 1000))
    post_event(client, a["id"], "cancellation", "2017-01-01", rect(0, 0, 500, 1000))
    path = _file(tmp_path, "g", [("G1", 0, 0, 400, 400, "2018-01-01")])
    assert _upload(client, path).status_code == 201


# --- the property: whatever the writes and their order, no land counts twice at any date ---------------
DAYS = ["2015-01-01", "2016-01-01", "2017-01-01", "2018-01-01", "2019-01-01"]
box_strategy = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 4), st.integers(1, 4))  # 100 m cells
write_strategy = st.one_of(
    st.tuples(st.just("hazard"), box_strategy, st.integers(0, 4)),
    st.tuples(st.just("clearance"), box_strategy, st.integers(1, 4), st.integers(0, 9)),
    st.tuples(st.just("void"), st.integers(0, 9)),
)
# a hazard on land cleared before, then the clearance voided (refused), then a hazard clipped
replayed_case = [("hazard", (0, 0, 4, 4), 0), ("clearance", (0, 0, 2, 4), 1, 0), ("hazard", (0, 0, 2, 2), 2),
                 ("void", 0), ("hazard", (1, 1, 4, 4), 3)]


def _cells(box: tuple[int, int, int, int]) -> dict:
    x, y, w, h = box
    return rect(x * 100.0, y * 100.0, w * 100.0, h * 100.0)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(write_strategy, min_size=5, max_size=14).map(lambda w: [replayed_case[0], *w]))
@example(writes=replayed_case)
def test_no_land_counts_twice_whatever_the_writes(client, writes) -> None:
    """Hazards (clipped where they overlap), clearances and voids in any order: at every date the
    State's remaining area equals the area of the union of its remaining geometries (shapely)."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    reset_database()
    client.headers.update(auth_headers(make_api_key("editor", "KHM")))
    hazards: list[str] = []
    events: list[str] = []
    for n, write in enumerate(writes):
        if write[0] == "hazard":
            response = post_hazards(client, hazard_feature(f"H{n}", _cells(write[1]), recorded_on=DAYS[write[2]]),
                                    overlap="clip")
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                hazards.append(response.json()["hazards"][0]["id"])
        elif write[0] == "clearance" and hazards:
            response = client.post(f"/api/v1/hazards/{hazards[write[3] % len(hazards)]}/events",
                                   params={"crs": UTM48N},
                                   json={"kind": "clearance", "date": DAYS[write[2]], "geometry": _cells(write[1])})
            assert response.status_code in (201, 422), response.text
            if response.status_code == 201:
                events.append(response.json()["id"])
        elif write[0] == "void" and events:
            response = client.post(f"/api/v1/events/{events[write[1] % len(events)]}/void", json={"reason": "test"})
            assert response.status_code in (200, 409), response.text
    for day in DAYS:
        features = client.get("/api/v1/states/KHM/hazards", params={"as_of": day, "limit": 100}).json()["features"]
        counted = sum(f["properties"]["remaining_area_m2"] for f in features)
        union = geodesic_area_m2(unary_union([shape(f["geometry"]) for f in features if f["geometry"]]))
        assert counted == pytest.approx(union, abs=10.0), (day, writes)
