"""Ledger fidelity (issue 14): cuts and measures agree on long edges, against an independent reference.

The reference is not the service's code: the polygons as they were drawn, intersected or differenced
with shapely in their own CRS (where their edges are straight), densified there every 10 m (every
1e-4 degree for lon/lat input), transformed with pyproj and measured with pyproj's `Geod`. Every area
the ledger reports must be within 0.1 m2 + 2 mm x perimeter of it, and `baseline = remaining +
released` must hold exactly.
"""
from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from tests.conftest import auth_headers, make_api_key, reset_database
from tests.ledger_scenarios import post_event, post_hazard

GEOD = Geod(ellps="WGS84")
REFERENCE_SPACING_M = 10.0
REFERENCE_SPACING_DEG = 1e-4


# --- the reference --------------------------------------------------------------------------------
def as_drawn(geometry: dict[str, Any]) -> BaseGeometry:
    return shape(geometry)


def reference(geometry: BaseGeometry, crs: str | None) -> tuple[float, float]:
    """Geodesic (area, perimeter) of a polygon given in `crs` (None: lon/lat) with straight edges there."""
    if geometry.is_empty:
        return 0.0, 0.0
    if crs is None:
        fine = shapely.segmentize(geometry, REFERENCE_SPACING_DEG)
    else:
        to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        fine = shapely.transform(shapely.segmentize(geometry, REFERENCE_SPACING_M),
                                 lambda xy: _stack(*to_lonlat.transform(xy[:, 0], xy[:, 1])))
    area, perimeter = GEOD.geometry_area_perimeter(shapely.orient_polygons(fine))
    return abs(area), perimeter


def _stack(x: Any, y: Any) -> Any:
    import numpy as np

    return np.column_stack([x, y])


def tolerance(perimeter_m: float) -> float:
    return 0.1 + 0.002 * perimeter_m


def served_area(geometry: dict[str, Any]) -> float:
    """pyproj's geodesic area of a served GeoJSON geometry (lon/lat)."""
    area, _ = GEOD.geometry_area_perimeter(shapely.orient_polygons(shape(geometry)))
    return abs(area)


def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def check_event(client, hazard: dict[str, Any], hazard_geometry: dict[str, Any], event: dict[str, Any],
                event_geometry: dict[str, Any], crs: str | None, iso3: str = "KHM") -> dict[str, float]:
    """The event's released and outside areas and the hazard's remaining area against the reference;
    the released geometry served by the events layer and the export against the released area; the
    exact identity. Returns the measured errors (m2)."""
    drawn_hazard, drawn_event = as_drawn(hazard_geometry), as_drawn(event_geometry)
    released_ref, released_perimeter = reference(drawn_event.intersection(drawn_hazard), crs)
    outside_ref, outside_perimeter = reference(drawn_event.difference(drawn_hazard), crs)
    remaining_ref, remaining_perimeter = reference(drawn_hazard.difference(drawn_event), crs)
    errors = {
        "released": event["released_area_m2"] - released_ref,
        "outside": event["outside_area_m2"] - outside_ref,
        "remaining": event["remaining_area_m2"] - remaining_ref,
    }
    assert abs(errors["released"]) <= tolerance(released_perimeter), (errors, released_ref)
    assert abs(errors["outside"]) <= tolerance(outside_perimeter), (errors, outside_ref)
    assert abs(errors["remaining"]) <= tolerance(remaining_perimeter), (errors, remaining_ref)
    # the released geometry as served, in the events layer and in the export
    item = client.get(f"/collections/land_release_events/items/{event['id']}")
    assert item.status_code == 200, item.text
    errors["served"] = served_area(item.json()["geometry"]) - event["released_area_m2"]
    assert abs(errors["served"]) <= tolerance(released_perimeter), errors
    export = client.get(f"/api/v1/states/{iso3}/export", params={"format": "geojson", "layer": "land_release_events"})
    assert export.status_code == 200, export.text
    exported = next(f for f in json.load(io.BytesIO(export.content))["features"]
                    if f["properties"]["id"] == event["id"])
    assert abs(served_area(exported["geometry"]) - event["released_area_m2"]) <= tolerance(released_perimeter)
    # baseline = remaining + released, exactly
    assert hazard["baseline_area_m2"] == event["remaining_area_m2"] + event["released_area_m2"]
    return errors


# --- section 1: cuts and measures agree on long edges --------------------------------------------
UTM48N = "EPSG:32648"
UTM33N = "EPSG:32633"


def test_utm_hazard_of_100_km2_cut_along_its_long_axis(client) -> None:
    """50 km x 2 km in UTM 48N, the northern half released by an event drawn along its edges in UTM."""
    x0, y0 = 450_000.0, 1_420_000.0
    hazard_geometry = box(x0, y0, x0 + 50_000, y0 + 2_000)
    event_geometry = box(x0, y0 + 1_000, x0 + 50_000, y0 + 2_000)
    hazard = post_hazard(client, "LONG", hazard_geometry, crs=UTM48N)
    area_ref, perimeter = reference(as_drawn(hazard_geometry), UTM48N)
    assert abs(hazard["baseline_area_m2"] - area_ref) <= tolerance(perimeter)
    event = post_event(client, hazard["id"], "clearance", "2016-01-01", event_geometry, crs=UTM48N)
    errors = check_event(client, hazard, hazard_geometry, event, event_geometry, UTM48N)
    assert event["outside_area_m2"] == 0
    # the other half, drawn along the same UTM edges: nothing remains, nothing is outside
    rest = post_event(client, hazard["id"], "clearance", "2016-02-01", box(x0, y0, x0 + 50_000, y0 + 1_000),
                      crs=UTM48N)
    assert rest["outside_area_m2"] == 0 and rest["remaining_area_m2"] == 0 and rest["hazard_status"] == "released"
    assert event["released_area_m2"] + rest["released_area_m2"] == hazard["baseline_area_m2"]
    print("UTM 100 km2 errors (m2):", errors)


def test_utm_hazard_of_10000_km2_at_69_north(client) -> None:
    """100 km x 100 km in UTM 33N (northern Norway), a western strip released along three of its edges."""
    x0, y0 = 450_000.0, 7_600_000.0
    hazard_geometry = box(x0, y0, x0 + 100_000, y0 + 100_000)
    event_geometry = box(x0 - 5_000, y0 - 5_000, x0 + 37_777, y0 + 105_000)  # sticks out west, south, north
    hazard = post_hazard(client, "BIG", hazard_geometry, crs=UTM33N)
    area_ref, perimeter = reference(as_drawn(hazard_geometry), UTM33N)
    assert abs(hazard["baseline_area_m2"] - area_ref) <= tolerance(perimeter)
    event = post_event(client, hazard["id"], "reduction", "2016-01-01", event_geometry, crs=UTM33N)
    errors = check_event(client, hazard, hazard_geometry, event, event_geometry, UTM33N)
    # an event drawn exactly along the hazard's eastern, northern and southern edges leaves no remnant
    east = post_event(client, hazard["id"], "clearance", "2016-02-01",
                      box(x0 + 37_777, y0, x0 + 100_000, y0 + 100_000), crs=UTM33N)
    assert east["outside_area_m2"] == 0 and east["remaining_area_m2"] == 0 and east["hazard_status"] == "released"
    print("UTM 10,000 km2 at 69N errors (m2):", errors)


def test_lonlat_box_at_60_north_cut_through_its_north_edge(client) -> None:
    """A 100 km2 lon/lat box at 60 N; an event over its northern quarter that sticks out to the north."""
    west, south = 25.0, 60.0
    east, north = west + 0.1796, south + 0.0898
    hazard_geometry = box(west, south, east, north)
    event_geometry = box(west - 0.01, north - 0.0224, east + 0.01, north + 0.01)
    hazard = post_hazard(client, "N60", hazard_geometry, crs=None)
    area_ref, perimeter = reference(as_drawn(hazard_geometry), None)
    assert abs(hazard["baseline_area_m2"] - area_ref) <= tolerance(perimeter)
    event = post_event(client, hazard["id"], "cancellation", "2016-01-01", event_geometry, crs=None)
    errors = check_event(client, hazard, hazard_geometry, event, event_geometry, None)
    print("lon/lat 100 km2 at 60N errors (m2):", errors)


@pytest.mark.parametrize("latitude", [0.0, 35.0, 70.0])
def test_lonlat_hazard_with_100_km_edges(client, latitude: float) -> None:
    """Near 10,000 km2 in lon/lat up to 70 degrees; a diagonal cut, so that no edge is a parallel or a meridian."""
    south = latitude - 0.45 if latitude else -0.45
    width = 0.9 / max(0.342, __import__("math").cos(__import__("math").radians(latitude)))
    hazard_geometry = box(10.0, south, 10.0 + width, south + 0.9)
    event_geometry = {"type": "Polygon", "coordinates": [[[9.9, south - 0.1], [10.0 + width * 0.7, south - 0.1],
                                                           [10.0 + width * 0.2, south + 1.0], [9.9, south + 1.0],
                                                           [9.9, south - 0.1]]]}
    hazard = post_hazard(client, f"D{latitude:g}", hazard_geometry, crs=None)
    area_ref, perimeter = reference(as_drawn(hazard_geometry), None)
    assert abs(hazard["baseline_area_m2"] - area_ref) <= tolerance(perimeter)
    event = post_event(client, hazard["id"], "clearance", "2016-01-01", event_geometry, crs=None)
    errors = check_event(client, hazard, hazard_geometry, event, event_geometry, None)
    print(f"lon/lat 100 km edges at {latitude} errors (m2):", errors)


def test_small_utm_hazard_is_unchanged_in_meaning(client) -> None:
    """The 1 km hazards of the other tests: the reference agrees to well under a square metre."""
    x0, y0 = 500_000.0, 1_450_000.0
    hazard_geometry = box(x0, y0, x0 + 1_000, y0 + 1_000)
    event_geometry = box(x0 + 200, y0 - 100, x0 + 1_100, y0 + 700)
    hazard = post_hazard(client, "SMALL", hazard_geometry, crs=UTM48N)
    event = post_event(client, hazard["id"], "clearance", "2016-01-01", event_geometry, crs=UTM48N)
    errors = check_event(client, hazard, hazard_geometry, event, event_geometry, UTM48N)
    assert all(abs(e) < 1.0 for e in errors.values()), errors


def test_identity_is_exact_at_every_date(client) -> None:
    """baseline = remaining + the released areas of the events dated on or before D, exactly."""
    x0, y0 = 450_000.0, 1_420_000.0
    hazard = post_hazard(client, "EXACT", box(x0, y0, x0 + 20_000, y0 + 7_000), crs=UTM48N)
    released = []
    for i, (dx, day) in enumerate([(3_333.3, "2016-03-01"), (1_234.5, "2016-01-01"), (7_777.7, "2016-02-01")]):
        event = post_event(client, hazard["id"], ["clearance", "reduction", "cancellation"][i], day,
                           box(x0 + dx, y0 - 500, x0 + dx + 4_321.1, y0 + 6_000 + i * 300), crs=UTM48N)
        released.append(event)
    events = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    for as_of in ("2015-12-31", "2016-01-01", "2016-01-15", "2016-02-01", "2016-03-01", "2020-01-01"):
        props = client.get(f"/api/v1/hazards/{hazard['id']}", params={"as_of": as_of}).json()["properties"]
        released_then = [e["released_area_m2"] for e in events if e["date"] <= as_of]
        assert props["baseline_area_m2"] - sum(released_then) == props["remaining_area_m2"]
        assert props["remaining_area_m2"] + sum(released_then) == props["baseline_area_m2"]
    summary = client.get("/api/v1/states/KHM/summary", params={"as_of": "2020-01-01"}).json()
    assert summary["remaining"]["total"]["area_m2"] + summary["released"]["total"]["released_m2"] == \
        hazard["baseline_area_m2"]


def test_every_stored_segment_is_short(client) -> None:
    """A UTM edge of 100 km is stored as segments of at most 100 m, each on the edge as drawn."""
    x0, y0 = 450_000.0, 7_600_000.0
    hazard_geometry = box(x0, y0, x0 + 100_000, y0 + 1_000)
    hazard = post_hazard(client, "SEG", hazard_geometry, crs=UTM33N)
    geometry = shape(client.get(f"/collections/hazardous_areas/items/{hazard['id']}").json()["geometry"])
    ring = shapely.get_coordinates(geometry)
    _, _, lengths = GEOD.inv(ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1])
    assert max(lengths) <= 101.0
    assert len(ring) >= 2 * 1_000 + 20
    # every vertex lies on the edge as drawn (within the ~1 mm grid)
    to_utm = Transformer.from_crs("EPSG:4326", UTM33N, always_xy=True)
    x, y = to_utm.transform(ring[:, 0], ring[:, 1])
    drawn = Polygon(hazard_geometry["coordinates"][0]).exterior
    assert max(drawn.distance(shapely.Point(px, py)) for px, py in zip(x, y, strict=True)) < 0.01


# --- section 3: whole reclassifications and released hazards have a geometry ----------------------
def test_whole_reclassification_carries_the_land_it_reclassified(client) -> None:
    x0, y0 = 500_000.0, 1_450_000.0
    hazard_geometry = box(x0, y0, x0 + 1_000, y0 + 1_000)
    cleared_geometry = box(x0, y0, x0 + 400, y0 + 1_000)
    hazard = post_hazard(client, "RC", hazard_geometry, crs=UTM48N)
    cleared = post_event(client, hazard["id"], "clearance", "2017-01-01", cleared_geometry, crs=UTM48N)
    whole = post_event(client, hazard["id"], "reclassification", "2018-01-01", None, crs=None)
    expected, perimeter = reference(as_drawn(hazard_geometry).difference(as_drawn(cleared_geometry)), UTM48N)
    assert whole["released_area_m2"] == 0
    item = client.get(f"/collections/land_release_events/items/{whole['id']}").json()
    assert item["geometry"]["type"] == "MultiPolygon"
    assert abs(served_area(item["geometry"]) - expected) <= tolerance(perimeter)
    assert abs(served_area(item["geometry"]) - cleared["remaining_area_m2"]) <= tolerance(perimeter)
    layer = client.get("/collections/land_release_events/items").json()
    assert all(f["geometry"] is not None for f in layer["features"])
    export = client.get("/api/v1/states/KHM/export", params={"format": "geojson", "layer": "land_release_events"})
    exported = next(f for f in export.json()["features"] if f["properties"]["id"] == whole["id"])
    assert abs(served_area(exported["geometry"]) - expected) <= tolerance(perimeter)
    # in another CRS too
    utm = client.get(f"/collections/land_release_events/items/{whole['id']}",
                     params={"crs": "http://www.opengis.net/def/crs/EPSG/0/32648"}).json()
    assert abs(shape(utm["geometry"]).area - 600 * 1_000) < 1.0


def test_a_hazard_released_in_full_shows_the_land_it_covered(client) -> None:
    x0, y0 = 500_000.0, 1_450_000.0
    hazard = post_hazard(client, "GONE", box(x0, y0, x0 + 500, y0 + 500), crs=UTM48N)
    post_event(client, hazard["id"], "clearance", "2017-01-01", box(x0 - 10, y0 - 10, x0 + 510, y0 + 510), crs=UTM48N)
    for params in ({}, {"datetime": "2018-01-01"}):
        feature = client.get(f"/collections/hazardous_areas/items/{hazard['id']}", params=params).json()
        props = feature["properties"]
        assert props["status"] == "released" and props["remaining_area_m2"] == 0
        assert served_area(feature["geometry"]) == pytest.approx(props["baseline_area_m2"], abs=0.01)
    before = client.get(f"/collections/hazardous_areas/items/{hazard['id']}", params={"datetime": "2016-06-01"}).json()
    assert before["properties"]["status"] == "active"
    active = client.get("/collections/hazardous_areas/items", params={"status": "active"}).json()
    assert active["numberMatched"] == 0


# --- section 3: across the antimeridian --------------------------------------------------------------
FIJI = "FJI"


@pytest.fixture
def fiji(client):
    """A State on the antimeridian (not a mine-affected one: the geometry is what matters here)."""
    from sqlalchemy import text

    from app import database

    with database.get_engine().begin() as conn:
        conn.execute(text("INSERT INTO states (iso3, name, source) VALUES ('FJI', 'Fiji', 'test')"))
    try:
        yield FIJI
    finally:
        from tests.conftest import reset_database

        reset_database()
        with database.get_engine().begin() as conn:
            conn.execute(text("DELETE FROM states WHERE iso3 = 'FJI'"))


def straddling(east_width: float = 0.1, west_width: float = 0.05) -> dict[str, Any]:
    """A hazard across 180 degrees, split there (RFC 7946): `east_width` degrees east of it, `west_width` west."""
    south, north = -16.6, -16.5
    return {"type": "MultiPolygon", "coordinates": [
        box(180 - east_width, south, 180, north)["coordinates"],
        box(-180, south, -180 + west_width, north)["coordinates"],
    ]}


def test_a_hazard_across_the_antimeridian_in_every_output(client, fiji) -> None:
    geometry = straddling()
    hazard = post_hazard(client, "ANTI", geometry, iso3=fiji, crs=None, recorded_on="2015-01-01")
    expected, perimeter = reference(as_drawn(geometry), None)
    assert abs(hazard["baseline_area_m2"] - expected) <= tolerance(perimeter)
    # the Article 7 report: the area-weighted centroid, across 180 degrees (two parts 2:1 at 179.95 and 180.025)
    report = client.get(f"/api/v1/states/{fiji}/report", params={"year": 2016}).json()
    (area,) = report["mined_areas"]
    assert float(area["centroid_lon"]) == pytest.approx(179.975, abs=1e-3)
    assert float(area["centroid_lat"]) == pytest.approx(-16.55, abs=1e-3)
    # a release from its western part: the report of the year before still locates it whole
    event = post_event(client, hazard["id"], "clearance", "2017-06-01", box(-180, -16.7, -179.9, -16.4), crs=None)
    assert abs(event["released_area_m2"] - reference(as_drawn(geometry).intersection(
        as_drawn(box(-180, -16.7, -179.9, -16.4))), None)[0]) <= tolerance(perimeter)
    then = client.get(f"/api/v1/states/{fiji}/report", params={"year": 2016}).json()["mined_areas"][0]
    assert float(then["centroid_lon"]) == pytest.approx(179.975, abs=1e-3)
    now = client.get(f"/api/v1/states/{fiji}/report", params={"year": 2017}).json()["mined_areas"][0]
    assert float(now["centroid_lon"]) == pytest.approx(179.95, abs=1e-3)
    # the OGC collection's extent crosses 180 degrees: xmin > xmax
    extent = client.get("/collections/hazardous_areas").json()["extent"]["spatial"]["bbox"][0]
    assert extent == pytest.approx([179.9, -16.6, -179.95, -16.5], abs=1e-6)
    assert client.get("/collections/land_release_events").json()["extent"]["spatial"]["bbox"][0] == \
        pytest.approx([-180, -16.6, -179.95, -16.5], abs=1e-6)
    # the dashboard's map extent: east beyond 180 (as MapLibre takes it)
    chart = client.get(f"/api/v1/states/{fiji}/chart.json").json()
    assert chart["bbox"] == pytest.approx([179.9, -16.6, 180.05, -16.5], abs=1e-6)
    # items and the export: the parts as stored, each within [-180, 180]
    feature = client.get(f"/collections/hazardous_areas/items/{hazard['id']}", params={"geometry": "baseline"}).json()
    assert abs(served_area(feature["geometry"]) - expected) <= tolerance(perimeter)
    longitudes = shapely.get_coordinates(shape(feature["geometry"]))[:, 0]
    assert longitudes.min() == -180 and longitudes.max() == 180
    export = client.get(f"/api/v1/states/{fiji}/export", params={"format": "geojson"}).json()
    (exported,) = export["features"]
    assert abs(served_area(exported["geometry"]) - event["remaining_area_m2"]) <= tolerance(perimeter)
    # vector tiles on both sides of 180 degrees (z 3: columns 7 and 0, row 4)
    for column in (7, 0):
        tile = client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/3/{column}/4",
                          params={"geometry": "baseline"})
        assert tile.status_code == 200 and tile.content, column


def test_a_lonlat_polygon_across_the_antimeridian_is_refused_with_the_way_to_send_it(client) -> None:
    ring = [[179.9, -16.6], [-179.9, -16.6], [-179.9, -16.5], [179.9, -16.5], [179.9, -16.6]]
    response = client.post("/api/v1/states/KHM/hazards", json={
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"external_id": "ACROSS", "classification": "SHA", "recorded_on": "2015-01-01"}})
    assert response.status_code == 422
    assert "split it at 180 degrees" in response.text


def test_a_utm_polygon_across_the_antimeridian_is_cut_there(client, fiji) -> None:
    """UTM 60S reaches past 180 degrees: a hazard drawn there in UTM is stored as two parts, one each side."""
    utm60s = "EPSG:32760"
    x180, y = Transformer.from_crs("EPSG:4326", utm60s, always_xy=True).transform(180.0, -16.55)
    geometry = box(x180 - 6_000, y - 4_000, x180 + 3_000, y + 4_000)
    hazard = post_hazard(client, "UTM-ANTI", geometry, iso3=fiji, crs=utm60s)
    expected, perimeter = reference(as_drawn(geometry), utm60s)
    assert abs(hazard["baseline_area_m2"] - expected) <= tolerance(perimeter)
    stored = shape(client.get(f"/collections/hazardous_areas/items/{hazard['id']}").json()["geometry"])
    assert len(stored.geoms) == 2
    longitudes = shapely.get_coordinates(stored)[:, 0]
    assert longitudes.max() == 180 and longitudes.min() == -180
    east, west = sorted(stored.geoms, key=lambda p: -p.bounds[0])
    assert east.bounds[0] > 179.9 and west.bounds[2] < -179.95
    report = client.get(f"/api/v1/states/{fiji}/report", params={"year": 2016}).json()["mined_areas"][0]
    assert 179.95 < float(report["centroid_lon"]) <= 180 or -180 < float(report["centroid_lon"]) < -179.99


# --- the rule, on drawn examples ------------------------------------------------------------------
def _utm_zone_of(longitude: float, latitude: float) -> str:
    zone = int((longitude + 180) // 6) + 1
    return f"EPSG:{32600 + zone if latitude >= 0 else 32700 + zone}"


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(latitude=st.floats(-70, 70), size_m=st.floats(1_000, 100_000), aspect=st.floats(0.05, 1.0),
       cut=st.floats(0.05, 0.95), slant=st.floats(-0.4, 0.4), in_utm=st.booleans())
def test_released_and_remaining_are_within_tolerance_anywhere(client, latitude, size_m, aspect, cut, slant,
                                                              in_utm) -> None:
    """Hazards from 1 km to 100 km across, up to 70 degrees, in UTM or lon/lat; an event with a slanted
    edge that sticks out of the hazard on three sides."""
    reset_database()
    client.headers.update(auth_headers(make_api_key("editor", "KHM")))
    width, height = size_m, size_m * aspect
    if in_utm:
        crs: str | None = _utm_zone_of(20.0, latitude)
        x0, y0 = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(21.0, latitude)
        x0 -= width / 2
        scale_x = scale_y = 1.0
    else:
        crs, x0, y0 = None, 21.0, latitude - height / 222_000
        scale_y = 1 / 111_000
        scale_x = scale_y / math.cos(math.radians(latitude))
    w, h = width * scale_x, height * scale_y
    hazard_geometry = box(x0, y0, x0 + w, y0 + h)
    event_geometry = {"type": "Polygon", "coordinates": [[
        [x0 - 0.1 * w, y0 - 0.1 * h], [x0 + (cut + slant / 2) * w, y0 - 0.1 * h],
        [x0 + (cut - slant / 2) * w, y0 + 1.1 * h], [x0 - 0.1 * w, y0 + 1.1 * h], [x0 - 0.1 * w, y0 - 0.1 * h]]]}
    hazard = post_hazard(client, "ANY", hazard_geometry, crs=crs)
    expected, perimeter = reference(as_drawn(hazard_geometry), crs)
    assert abs(hazard["baseline_area_m2"] - expected) <= tolerance(perimeter)
    event = post_event(client, hazard["id"], "clearance", "2016-01-01", event_geometry, crs=crs)
    check_event(client, hazard, hazard_geometry, event, event_geometry, crs)
