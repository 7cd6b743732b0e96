"""The benchmark's floors and its check of the mixed load's writes (bench/floors.py, bench/mixed.py), on the
test PostGIS: a floor that measured another statement or another table than the service's would make every
ratio of bench/results*.md wrong."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import geopandas as gpd
import psycopg
import pytest
import shapely

from bench import floors, mixed
from bench.generate import conninfo_of
from bench.run import tile_address
from tests.ledger_scenarios import post_event, post_hazard, rect, rect_lonlat


@pytest.fixture
def conninfo(database_url: str) -> Iterator[str]:
    yield conninfo_of(database_url)
    with psycopg.connect(conninfo_of(database_url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")


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
