"""The committed demo data set (geodata/demo): shape, plausibility and reproducibility. No database."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pyproj import Geod
from shapely.geometry import shape

DEMO_DIR = Path(__file__).resolve().parents[1] / "geodata" / "demo"
GENERATOR = DEMO_DIR / "generate.py"
STATES = ("KHM", "BIH", "IRQ")
LAST_EVENT_DATE = date(2026, 10, 31)
GEOD = Geod(ellps="WGS84")


@pytest.fixture(autouse=True)
def clean_database() -> Iterator[None]:
    """These tests read files only: replaces conftest's fixture that needs PostGIS."""
    yield


def geodesic_area_m2(geometry) -> float:
    area, _ = GEOD.geometry_area_perimeter(geometry)
    return abs(area)


def hazards(iso3: str) -> list[dict]:
    collection = json.loads((DEMO_DIR / f"{iso3}_hazards.geojson").read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    return collection["features"]


def events(iso3: str) -> list[dict]:
    return json.loads((DEMO_DIR / f"{iso3}_events.json").read_text(encoding="utf-8"))


def data_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".geojson", ".json"))


def test_three_states_with_two_files_each() -> None:
    assert data_files(DEMO_DIR) == sorted(
        [f"{iso3}_hazards.geojson" for iso3 in STATES] + [f"{iso3}_events.json" for iso3 in STATES])


@pytest.mark.parametrize("iso3", STATES)
def test_hazards_are_valid_plausible_polygons(iso3: str) -> None:
    features = hazards(iso3)
    assert 150 <= len(features) <= 250
    ids = [f["properties"]["external_id"] for f in features]
    assert len(set(ids)) == len(ids)
    for feature in features:
        props, geometry = feature["properties"], feature["geometry"]
        assert props["external_id"].startswith(f"{iso3}-")
        assert props["classification"] in ("SHA", "CHA")
        assert props["contamination"] and set(props["contamination"]) <= {
            "AP_MINE", "IMPROVISED_AP_MINE", "AV_MINE", "ERW", "CLUSTER_MUNITION", "OTHER"}
        assert props["region"] and props["name"]
        assert date(2012, 1, 1) <= date.fromisoformat(props["recorded_on"]) <= date(2025, 6, 30)
        assert geometry["type"] == "Polygon"
        assert all(ring[0] == ring[-1] for ring in geometry["coordinates"])
        polygon = shape(geometry)
        assert polygon.is_valid, props["external_id"]
        assert polygon.exterior.is_ccw, props["external_id"]
        assert 5_000 <= geodesic_area_m2(polygon) <= 3_000_000, props["external_id"]


@pytest.mark.parametrize("iso3", STATES)
def test_events_are_in_order_and_within_their_hazards_lifetime(iso3: str) -> None:
    recorded_on = {f["properties"]["external_id"]: date.fromisoformat(f["properties"]["recorded_on"])
                   for f in hazards(iso3)}
    items = events(iso3)
    assert items, "no events"
    ids = [e["external_id"] for e in items]
    assert len(set(ids)) == len(ids)
    dates = [date.fromisoformat(e["date"]) for e in items]
    assert dates == sorted(dates), "events are not in chronological order"
    assert max(dates) <= LAST_EVENT_DATE
    last_on_hazard: dict[str, date] = {}
    for event, day in zip(items, dates, strict=False):
        hazard = event["hazard_external_id"]
        assert hazard in recorded_on, event["external_id"]
        assert day >= recorded_on[hazard], f"{event['external_id']} is before its hazard was recorded"
        assert hazard not in last_on_hazard or day > last_on_hazard[hazard], event["external_id"]
        last_on_hazard[hazard] = day
        assert event["kind"] in ("cancellation", "reduction", "clearance", "reclassification")
        if event["geometry"] is None:
            assert event["kind"] == "reclassification", event["external_id"]
        else:
            assert event["geometry"]["type"] in ("Polygon", "MultiPolygon")
            assert shape(event["geometry"]).is_valid, event["external_id"]
        assert set(event["items_destroyed"]) == {"ap_mines", "improvised_ap_mines", "av_mines", "other_eo"}
        assert all(isinstance(n, int) and n >= 0 for n in event["items_destroyed"].values())


def test_the_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path), "--quiet"], check=True, timeout=300)
    assert data_files(tmp_path) == data_files(DEMO_DIR)
    for name in data_files(DEMO_DIR):
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), f"{name} differs"
