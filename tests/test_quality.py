"""The data-quality report (app/places/quality.py): one test per kind of row, each row linking to what it is about.

Hazards stored before the checks of every write (legacy data) are inserted straight into the table."""
from __future__ import annotations

import json

import pytest
from pyproj import Transformer
from shapely.geometry import Polygon, box, mapping, shape
from sqlalchemy import text

from app import database
from app.cli import main as cli_main
from tests.ledger_scenarios import X0, Y0, hazard_feature, post_event, post_hazard, rect

IN_BATTAMBANG = box(102.90, 13.00, 102.91, 13.01)
ACROSS_THE_BORDER = box(102.42, 13.54, 102.48, 13.59)


def legacy(external_id: str, polygon: Polygon, iso3: str = "KHM") -> str:
    """A hazard as data stored before the checks: straight into the table, unchecked."""
    with database.get_engine().begin() as conn:
        return str(conn.execute(text(
            "WITH g AS (SELECT ST_Multi(ST_GeomFromText(:wkt, 4326)) AS geom) "
            "INSERT INTO hazardous_areas (state_iso3, external_id, classification, contamination, recorded_on, "
            "baseline_geom, baseline_area_m2, remaining_geom, remaining_area_m2) "
            "SELECT :iso3, :external_id, 'SHA', '{AP_MINE}', '2015-01-01', geom, ST_Area(geom::geography), geom, "
            "ST_Area(geom::geography) FROM g RETURNING id"),
            {"wkt": polygon.wkt, "iso3": iso3, "external_id": external_id}).scalar_one())


def report(client, iso3: str = "KHM") -> dict:
    response = client.get(f"/api/v1/states/{iso3}/quality")
    assert response.status_code == 200, response.text
    return response.json()


def rows_of(body: dict, kind: str) -> list[dict]:
    rows = [r for r in body["rows"] if r["kind"] == kind]
    assert body["counts"][kind] == len(rows)
    return rows


def assert_links(client, row: dict) -> None:
    assert client.get(row["link"]).status_code == 200


def test_a_clean_state_has_no_rows(client) -> None:
    post_hazard(client, "OK", rect(0, 0, 500, 500))
    body = report(client)
    assert body["rows"] == [] and body["tolerance_m"] == 2000.0 and set(body["counts"].values()) == {0}


def test_hazards_outside_the_state_and_flagged_at_the_border(client) -> None:
    hazard_id = legacy("OUT", box(102.0, 14.0, 102.01, 14.01))  # in Thailand
    flagged = client.post("/api/v1/states/KHM/hazards", params={"border": "accept"},
                          json=hazard_feature("BORDER", mapping(ACROSS_THE_BORDER))).json()["hazards"][0]
    body = report(client)
    (outside,) = rows_of(body, "outside_state")
    assert outside["hazard_id"] == hazard_id and outside["lies_in"] == "THA" and outside["value"] > 50_000
    assert "OUT lies in THA" in outside["message"]
    (border,) = rows_of(body, "border_flag")
    assert border["hazard_id"] == flagged["id"] and border["lies_in"] == "THA"
    assert_links(client, outside)
    assert_links(client, border)


def test_likely_swapped_coordinates(client) -> None:
    hazard_id = legacy("SWAPPED", box(43.85, 18.40, 43.86, 18.41), iso3="BIH")  # Sarajevo as lat/lon
    (row,) = rows_of(report(client, "BIH"), "swapped_coordinates")
    assert row["hazard_id"] == hazard_id and "longitude and latitude swapped" in row["message"]
    assert_links(client, row)


def test_likely_wrong_utm_zone(client) -> None:
    to_wgs84 = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True)  # zone 48N metres read as 47N
    square = Polygon([to_wgs84.transform(x, y) for x, y in rect(0, 0, 500, 500)["coordinates"][0]])
    hazard_id = legacy("ZONE", square)
    (row,) = rows_of(report(client), "utm_zone")
    assert row["hazard_id"] == hazard_id and "UTM zone 48N instead of 47N" in row["message"]


def test_duplicates_and_overlaps_with_their_ratio(client) -> None:
    a = legacy("A", IN_BATTAMBANG)
    b = legacy("A-again", IN_BATTAMBANG)
    c = legacy("C", box(102.95, 13.00, 102.96, 13.01))
    legacy("D", box(102.957, 13.00, 102.967, 13.01))  # 30% of C
    body = report(client)
    (duplicate,) = rows_of(body, "duplicate")
    assert {duplicate["hazard_id"], duplicate["other_hazard_id"]} == {a, b} and duplicate["value"] == pytest.approx(1)
    (overlap,) = rows_of(body, "overlap")
    assert c in (overlap["hazard_id"], overlap["other_hazard_id"]) and overlap["value"] == pytest.approx(0.3, abs=0.01)
    assert_links(client, duplicate)
    assert client.get(overlap["other_link"]).status_code == 200


def test_events_mostly_outside_their_hazard(client) -> None:
    hazard = post_hazard(client, "H", rect(0, 0, 100, 100))
    event = post_event(client, hazard["id"], "clearance", "2020-01-01", rect(50, 0, 200, 100))
    post_event(client, hazard["id"], "reduction", "2020-02-01", rect(0, 0, 50, 100))  # within its hazard
    (row,) = rows_of(report(client), "event_outside_hazard")
    assert row["event_id"] == event["id"] and row["hazard_id"] == hazard["id"]
    assert row["value"] == pytest.approx(0.75, abs=0.01) and "75% outside its hazard" in row["message"]
    assert_links(client, row)


def test_implausible_areas(client) -> None:
    tiny = legacy("TINY", box(102.9, 13.0, 102.90002, 13.00002))  # about 2 m x 2 m
    huge = legacy("HUGE", box(103.0, 13.0, 104.0, 14.0))  # about 12,000 km2
    rows = rows_of(report(client), "implausible_area")
    assert {r["hazard_id"]: r["external_id"] for r in rows} == {tiny: "TINY", huge: "HUGE"}


def test_consecutive_vertices_more_than_5_km_apart(client) -> None:
    # in longitude/latitude, as given (a CRS given with the polygon is densified on the way in)
    long = post_hazard(client, "LONG", mapping(box(102.90, 13.0, 102.96, 13.0005)), crs=None)
    post_hazard(client, "SHORT", mapping(box(102.90, 13.01, 102.94, 13.0105)), crs=None)
    (row,) = rows_of(report(client), "long_edge")
    assert row["hazard_id"] == long["id"] and row["value"] == pytest.approx(6505, rel=0.01)
    assert "6.5 km apart" in row["message"]


def test_repaired_geometries(client) -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 100, Y0 + 100], [X0 + 100, Y0], [X0, Y0 + 100],
                                                   [X0, Y0]]]}
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": "EPSG:32648", "repair": "true"},
                           json=hazard_feature("BOWTIE", bow_tie))
    assert response.status_code == 201, response.text
    repaired = response.json()["hazards"][0]
    post_hazard(client, "PLAIN", rect(1000, 0, 100, 100))
    (row,) = rows_of(report(client), "repaired")
    assert row["hazard_id"] == repaired["id"] and row["repair"] == repaired["repair"]
    assert shape(client.get(row["link"]).json()["geometry"]).is_valid


def test_the_cli_prints_the_report(client, database_url, monkeypatch, capsys) -> None:
    from app.settings import get_settings

    legacy("OUT", box(102.0, 14.0, 102.01, 14.01))
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert cli_main(["quality", "KHM", "--json"]) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["counts"]["outside_state"] == 1 and body["rows"][0]["lies_in"] == "THA"
        assert cli_main(["quality", "KHM"]) == 0
        assert "outside_state\tOUT\tOUT lies in THA" in capsys.readouterr().out
        assert cli_main(["quality", "XXX"]) == 1
    finally:
        get_settings.cache_clear()


def test_the_dashboard_page_lists_the_rows(live_server, admin_key, artifacts_dir) -> None:
    from tests.headless_chromium import Chromium

    legacy("OUT", box(102.0, 14.0, 102.01, 14.01))
    legacy("A", IN_BATTAMBANG)
    legacy("A-again", IN_BATTAMBANG)
    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard/KHM/quality#key={admin_key}")
        assert browser.wait_for("document.body.dataset.loaded") == "true", browser.console
        kinds = browser.evaluate("[...document.querySelectorAll('#quality tbody tr')].map((r) => r.dataset.kind)")
        assert sorted(kinds) == ["duplicate", "outside_state"]
        links = browser.evaluate("[...document.querySelectorAll('#quality tbody a')].map((a) => a.href)")
        assert all("/api/v1/hazards/" in link for link in links)
        browser.screenshot(artifacts_dir / "quality_KHM.png")
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
