"""The ledger where an overlay on the grid collapses part of a polygon to a line (app/geometry.py): an event
whose corner lies on the hazard's edge leaves a notch whose tip, overlaid again, is a line as well as a
polygon; only the polygon is land, released or remaining (the demo's Cambodia failed on this)."""
from __future__ import annotations

import pytest
from shapely import wkt
from sqlalchemy import text

from app import database
from app.geometry import geodesic_area_m2
from tests.ledger_scenarios import post_event, post_hazard


def approx(value: float) -> pytest.approx:
    return pytest.approx(value, rel=1e-4, abs=2.0)  # the ledger's tolerance (tests/test_ledger.py)


def lonlat(polygon: str) -> dict:
    return {"type": "Polygon", "coordinates": [[list(p) for p in wkt.loads(polygon).exterior.coords]]}


HAZARD = "POLYGON((103.9998624 12.9997334,104.0001376 13.0002666,104.0002666 12.9998624,103.9998624 12.9997334))"
# a triangle with its corner on the hazard's north-west edge: the notch it cuts ends within a grid cell of it
CORNER_ON_EDGE = "POLYGON((104.0 13.0,104.0000627 12.9999221,104.000063 13.0000776,104.0 13.0))"
SOUTH = "POLYGON((104.00008 12.9999,104.00014 12.9999,104.00014 12.99996,104.00008 12.99996,104.00008 12.9999))"


def test_a_notch_whose_tip_collapses_to_a_line_releases_and_leaves_only_land(client) -> None:
    hazard, corner, south = (wkt.loads(p) for p in (HAZARD, CORNER_ON_EDGE, SOUTH))
    assert hazard.contains(corner) and hazard.contains(south) and not corner.intersects(south)
    created = post_hazard(client, "KHM-NOTCH", lonlat(HAZARD), crs=None)
    assert created["baseline_area_m2"] == approx(geodesic_area_m2(hazard))
    cancelled = post_event(client, created["id"], "cancellation", "2018-07-29", lonlat(CORNER_ON_EDGE), crs=None)
    assert cancelled["released_area_m2"] == approx(geodesic_area_m2(corner))
    with database.get_engine().connect() as conn:  # the situation itself: the next cut is a line and a polygon
        kinds = conn.execute(text(
            "SELECT ST_GeometryType(ST_Difference(remaining_geom, ST_GeomFromText(:south, 4326), 1e-8)) "
            "FROM hazardous_areas WHERE id = :id"), {"id": created["id"], "south": SOUTH}).scalar_one()
    assert kinds == "ST_GeometryCollection"
    reduced = post_event(client, created["id"], "reduction", "2018-12-21", lonlat(SOUTH), crs=None)
    assert reduced["released_area_m2"] == approx(geodesic_area_m2(south))
    assert reduced["remaining_area_m2"] == approx(geodesic_area_m2(hazard.difference(corner).difference(south)))
    assert reduced["remaining_area_m2"] + cancelled["released_area_m2"] + reduced["released_area_m2"] == (
        created["baseline_area_m2"])
    feature = client.get(f"/api/v1/hazards/{created['id']}").json()
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["remaining_area_m2"] == reduced["remaining_area_m2"]
    with database.get_engine().connect() as conn:
        stored = conn.execute(text(
            "SELECT ST_GeometryType(h.remaining_geom) AS remaining, array_agg(ST_GeometryType(e.released_geom)) "
            "AS released FROM hazardous_areas h JOIN land_release_events e ON e.hazard_id = h.id "
            "WHERE h.id = :id GROUP BY h.remaining_geom"), {"id": created["id"]}).one()
    assert stored.remaining == "ST_MultiPolygon" and stored.released == ["ST_MultiPolygon"] * 2
