"""The benchmark's load, floors and its check of the mixed load's writes (bench/generate.py, bench/floors.py,
bench/mixed.py), on the test PostGIS: a load that stored another ledger than the service's rules give, or a
floor that measured another statement or another table than the service's, would make every ratio of
bench/results*.md wrong."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import geopandas as gpd
import psycopg
import pytest
import shapely

from bench import floors, generate, mixed
from bench.generate import conninfo_of
from bench.run import tile_address
from tests.ledger_scenarios import post_event, post_hazard, rect, rect_lonlat


@pytest.fixture
def conninfo(database_url: str) -> Iterator[str]:
    yield conninfo_of(database_url)
    with psycopg.connect(conninfo_of(database_url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")


def test_the_bench_loads_its_history_through_the_import_and_the_ledger_replays_it_alike(conninfo, database_url,
                                                                                       tmp_path) -> None:
    logged: list[str] = []
    report = generate.load(database_url, 24, 96, folder=tmp_path, log=logged.append)
    hazards, _, _ = generate.generate_rows(24, 96)
    states = {h[len(generate.HAZARD_COLUMNS)] for h in hazards}
    assert set(report.states) == states and report.import_s > 0
    assert report.cpu_s[1] > 0  # the CPU of the cluster's processes is counted (the replay's as well)
    for iso3 in states:  # the load's progress is in the bench's log, State by State
        assert any(f"{iso3}: replaying events" in line for line in logged), iso3
    with psycopg.connect(conninfo) as conn:
        counts = conn.execute("""
            SELECT (SELECT count(*) FROM hazardous_areas), (SELECT count(*) FROM land_release_events),
                   (SELECT count(*) FROM audit_log WHERE table_name = 'land_release_events' AND action = 'create'),
                   (SELECT count(*) FROM bench.hazard_plan), (SELECT count(*) FROM land_release_events e
                    JOIN hazardous_areas h ON h.id = e.hazard_id WHERE e.released_area_m2 <= 0),
                   (SELECT max(abs(h.baseline_area_m2 - h.remaining_area_m2 - r.m2)) FROM hazardous_areas h
                    JOIN (SELECT hazard_id, sum(released_area_m2) AS m2 FROM land_release_events GROUP BY hazard_id) r
                    ON r.hazard_id = h.id)""").fetchone()
    assert counts[:5] == (24, 96, 96, 24, 0)  # every generated event released land, each with its audit entry
    assert counts[5] < 1e-6  # the ledger's balance: baseline = remaining + what the events released
    assert generate.loaded(conninfo) == (24, 96, generate.SEED)
    check = generate.verify_with_replay(database_url, sample=24)
    assert check["checked"] > 0 and check["status_mismatches"] == 0, check
    assert check["max_remaining_diff_of_baseline"] < 1e-9, check  # one by one, the same remaining areas


def test_the_tile_floor_runs_the_very_tile_the_service_sends(client, database_url) -> None:
    post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), contamination=["AP_MINE"])
    post_hazard(client, "KHM-B", rect(1500, 0, 400, 400), classification="CHA")
    lon, lat = shapely.geometry.shape(rect_lonlat(400, 400, 200, 200)).centroid.coords[0]
    addresses = [(z, *tile_address((lon, lat, lon, lat), z)) for z in (0, 6, 10, 14)]
    floor = floors.timed_tiles(database_url, "hazardous_areas", addresses)
    for (z, x, y), (_, data) in zip(addresses, floor, strict=True):
        response = client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert response.status_code == 200, (z, response.text)
        assert response.content == data, z


def test_the_import_anchor_makes_by_hand_the_table_the_import_stores(client, database_url, conninfo, tmp_path) -> None:
    frame = gpd.GeoDataFrame(
        {"external_id": [f"KHM-IMP-{i}" for i in range(3)], "classification": ["SHA", "CHA", "SHA"],
         "contamination": ["AP_MINE"] * 3, "name": [f"Imported {i}" for i in range(3)],
         "region": ["Battambang"] * 3, "recorded_on": ["2020-01-01", "2020-01-02", "2020-01-03"]},
        geometry=[shapely.geometry.shape(rect_lonlat(i * 2000, 0, 800, 600)) for i in range(3)], crs="EPSG:4326")
    path = tmp_path / "hazards.gpkg"
    frame.to_file(path, layer="hazardous_areas", driver="GPKG")
    with path.open("rb") as f:
        response = client.post("/api/v1/states/KHM/imports", files={"file": (path.name, f)})
    assert response.status_code < 300, response.text

    floors.prepare_anchor_table(conninfo)
    floors.import_anchor(conninfo, floors.gdal_pg(database_url), str(path), "KHM")
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("""
            SELECT a.external_id, a.baseline_area_m2, h.baseline_area_m2, a.remaining_area_m2,
                   ST_HausdorffDistance(a.baseline_geom, h.baseline_geom),
                   (a.classification, a.contamination, a.name, a.region, a.recorded_on)
                   = (h.classification, h.contamination, h.name, h.region, h.recorded_on)
            FROM bench.anchor_hazards a JOIN hazardous_areas h USING (state_iso3, external_id)""").fetchall()
    assert len(rows) == 3
    for external_id, by_hand, stored, remaining, distance, same_properties in rows:
        # PostGIS's ST_Area(geography) by hand, pyproj's geodesic area in the import: 2e-7 apart here (0.09 m2 in 48 ha)
        assert by_hand == pytest.approx(stored, rel=1e-6) and remaining == by_hand, external_id
        assert distance < 1e-8 and same_properties, external_id  # the same polygon on the grid, the same columns


def test_the_mixed_load_check_finds_accepted_events_and_names_a_lost_one(client, conninfo) -> None:
    hazard = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    event = post_event(client, hazard["id"], "clearance", "2020-03-01", rect(0, 0, 400, 1000))
    lost = str(uuid.uuid4())
    missing = mixed.check_writes(conninfo, [event["id"], lost], [])
    assert missing == [f"event {lost}: not in land_release_events", f"event {lost}: no create row in audit_log"]
