"""The grid and the areas computed for many geometries at once (the file import's fast path) give the
answers of the one-geometry rules: GEOS's snap-rounding and pyproj's geodesic area."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from app.geometry import (
    AREA_QUANTUM_M2,
    GEOD,
    GRID_DEG,
    densified,
    geodesic_area_m2,
    geodesic_areas_m2,
    quantized_m2,
    snap_to_grid,
)


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float, vertices: int = 40) -> Polygon:
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    r = radius * (1 + 0.2 * rng.random(vertices))
    return Polygon(np.c_[cx + r * np.cos(angles), cy + r * np.sin(angles)])


def _field_polygons() -> np.ndarray:
    """Hazard-like polygons the world over: plain, with holes, multi-part, both ring orientations."""
    rng = np.random.default_rng(7)
    shapes = []
    for i in range(600):
        cx, cy = rng.uniform(-179, 179), rng.uniform(-80, 80)
        radius = rng.uniform(0.0005, 0.02)
        shape = _blob(rng, cx, cy, radius)
        if i % 3 == 0:
            shape = shape.difference(shapely.Point(cx, cy).buffer(radius / 3))
        if i % 4 == 0:
            shape = shapely.reverse(shape)  # anticlockwise shells, clockwise holes
        if i % 5 == 0:
            shape = MultiPolygon([shape, shapely.affinity.translate(shape, 0.5, 0)])
        shapes.append(shape)
    return np.array(shapes, dtype=object)


def test_snap_to_grid_is_geos_snap_rounding_with_its_orientation():
    shapes = _field_polygons()
    ours = snap_to_grid(shapes)
    geos = shapely.set_precision(shapes, GRID_DEG)
    # the same point set and vertices, up to the ring's first vertex
    assert shapely.equals_exact(shapely.normalize(ours), shapely.normalize(geos), 0).all()
    for mine, theirs in zip(shapely.get_parts(ours), shapely.get_parts(geos), strict=True):
        assert not mine.exterior.is_ccw and not theirs.exterior.is_ccw  # shells clockwise, as GEOS gives them
        assert all(ring.is_ccw for ring in mine.interiors)
    coordinates = shapely.get_coordinates(ours)
    assert np.abs(coordinates / GRID_DEG - np.round(coordinates / GRID_DEG)).max() < 1e-4  # on the grid


def test_snap_to_grid_rounds_halves_up_like_geos():
    shapes = np.array([Polygon([(0.000000005, 0.000000015), (1.000000005, -0.000000025), (1, 1)])], dtype=object)
    assert shapely.equals_exact(shapely.normalize(snap_to_grid(shapes)),
                                shapely.normalize(shapely.set_precision(shapes, GRID_DEG)), 0).all()


def test_snap_to_grid_lets_geos_repair_what_rounding_would_collapse():
    # vertices 0.4 mm apart collapse onto one grid node; two parts 0.3 mm apart touch once on the grid
    spiky = Polygon([(10, 10), (10.001, 10), (10.001, 10.000000004), (10.001000003, 10.000000004),
                     (10.001, 10.001), (10, 10.001)])
    near = MultiPolygon([Polygon([(20, 20), (20.001, 20), (20.001, 20.001), (20, 20.001)]),
                         Polygon([(20.001000003, 20), (20.002, 20), (20.002, 20.001), (20.001000003, 20.001)])])
    shapes = np.array([spiky, near], dtype=object)
    ours = snap_to_grid(shapes)
    assert shapely.is_valid(ours).all()
    assert shapely.equals_exact(ours, shapely.set_precision(shapes, GRID_DEG), 0).all()  # GEOS's own answer
    assert shapely.get_num_geometries(ours[1]) == 1  # the parts that now share an edge are merged


def test_areas_of_many_geometries_are_the_areas_one_by_one(monkeypatch):
    from app import geometry

    shapes = _field_polygons()  # holes, several parts, both orientations
    # pyproj's own area of each geometry (consistently oriented once snapped)
    one_by_one = np.array([abs(GEOD.geometry_area_perimeter(snap_to_grid([s])[0])[0]) for s in shapes])
    monkeypatch.setattr(geometry, "_RINGS_PER_THREAD", 10)  # so that the threads share these few rings
    for threads in (1, 2, 3):
        together = geodesic_areas_m2(snap_to_grid(shapes), threads=threads)
        assert together == pytest.approx(one_by_one, rel=1e-12)
    # orientation does not matter to the many-at-once form (it takes each ring's absolute area)
    reversed_shapes = np.array([shapely.reverse(s) for s in shapes], dtype=object)
    assert geodesic_areas_m2(reversed_shapes) == pytest.approx(geodesic_areas_m2(shapes), rel=1e-12)
    holed = shapes[3]  # i % 3 == 0 and not reversed: a hole
    assert geodesic_areas_m2([holed])[0] < geodesic_areas_m2([Polygon(holed.exterior)])[0] * 0.95
    assert len(geodesic_areas_m2(np.array([], dtype=object))) == 0
    # one geometry: the parts of a MultiPolygon count whatever their orientation (pyproj's signed sum
    # of a clockwise and an anticlockwise part is nothing), lines and points have no area
    square = Polygon([(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01)])
    mixed = MultiPolygon([square, shapely.affinity.translate(shapely.reverse(square), 1, 0)])
    assert geodesic_area_m2(mixed) == pytest.approx(2 * geodesic_area_m2(square), rel=1e-9)
    assert geodesic_area_m2(shapely.LineString([(0, 0), (1, 1), (1, 0)])) == 0.0


def test_well_separated_vertices_are_rounded_without_geos(monkeypatch):
    """The fast path is the one taken for ordinary field polygons: GEOS's snap-rounding only for collapses."""
    calls = []
    real = shapely.set_precision
    monkeypatch.setattr(shapely, "set_precision", lambda *a, **k: calls.append(a) or real(*a, **k))
    snap_to_grid(_field_polygons())
    assert calls == []
    collapsing = Polygon([(10, 10), (10.001, 10), (10.001, 10.000000004), (10.001000003, 10.000000004),
                          (10.001, 10.001), (10, 10.001)])
    snap_to_grid([collapsing])
    assert len(calls) == 1


def test_areas_are_those_postgis_measures(client):
    """The import's areas (pyproj, GeographicLib) and the ledger's (PostGIS geography) agree."""
    from sqlalchemy import text

    from app import database
    from app.geometry import sql_area

    shapes = snap_to_grid(densified(_field_polygons()[:200]))  # as stored: edges cut into short segments
    ours = geodesic_areas_m2(shapes)
    with database.get_engine().connect() as conn:
        rows = conn.execute(text(
            f"SELECT ST_Area(ST_GeomFromWKB(w, 4326)::geography, true), {sql_area('ST_GeomFromWKB(w, 4326)')} "
            "FROM unnest(CAST(:wkb AS bytea[])) WITH ORDINALITY u(w, n) ORDER BY n"),
            {"wkb": list(shapely.to_wkb(shapes))}).all()
    theirs, stored = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    assert ours == pytest.approx(theirs, rel=1e-9)
    # the ledger stores whole numbers of AREA_QUANTUM_M2 (so that its sums are exact)
    assert (stored / AREA_QUANTUM_M2 == np.round(stored / AREA_QUANTUM_M2)).all()
    assert quantized_m2(ours) == pytest.approx(stored, abs=AREA_QUANTUM_M2)


def test_a_stored_segment_reads_alike_flat_and_geodesic():
    """The premise of the segment rule, measured with pyproj: the lon/lat chord of a segment of
    `max_segment_m` at any latitude up to 85 degrees, in any direction, is within MAX_SAGITTA_M of the
    geodesic between its ends (at its middle, where they are furthest apart)."""
    from app.geometry import MAX_SAGITTA_M, max_segment_m

    radius = 6_371_008.8
    for latitude in range(0, 86, 5):
        length = float(max_segment_m(latitude))
        for direction in np.radians(np.arange(0, 180, 5)):
            dlat = np.degrees(length * np.sin(direction) / radius)
            dlon = np.degrees(length * np.cos(direction) / (radius * np.cos(np.radians(latitude))))
            a, b = (-dlon / 2, latitude - dlat / 2), (dlon / 2, latitude + dlat / 2)
            if max(abs(a[1]), abs(b[1])) > 89.9:
                continue
            azimuth, _, _ = GEOD.inv(a[0], a[1], b[0], b[1])
            to_middle, _, distance = GEOD.inv(a[0], a[1], (a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
            assert abs(distance * np.sin(np.radians(to_middle - azimuth))) <= MAX_SAGITTA_M, (latitude, direction)


def test_densified_edges_are_short_keep_every_vertex_and_cut_once():
    from app.geometry import max_segment_m

    shapes = _field_polygons()[:100]
    cut = densified(shapes)
    for ring in shapely.get_rings(shapely.get_parts(cut)):
        xy = shapely.get_coordinates(ring)
        _, _, lengths = GEOD.inv(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])
        assert (lengths <= 1.02 * max_segment_m(np.maximum(np.abs(xy[:-1, 1]), np.abs(xy[1:, 1])))).all()
    for before, after in zip(shapes, cut, strict=True):
        assert {tuple(p) for p in shapely.get_coordinates(before)} <= {tuple(p) for p in shapely.get_coordinates(after)}
        assert after.area == pytest.approx(before.area, rel=1e-12)  # the same land, vertices added on its edges
    again = densified(cut)
    assert all(shapely.equals_exact(a, b, 0) for a, b in zip(cut, again, strict=True))


def test_the_grid_overlays_run_in_a_query_the_planner_would_make_parallel(client):
    """grid_intersection/grid_difference (0015) fall back in an exception block, which no parallel query can
    run: declared parallel unsafe (0017), a large read that uses them runs instead of failing."""
    from sqlalchemy import text

    from app import database
    from app.geometry import sql_area, sql_difference, sql_intersection

    with database.session() as session:
        for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                        "max_parallel_workers_per_gather = 2"):
            session.execute(text(f"SET LOCAL {setting}"))
        session.execute(text("CREATE TEMP TABLE squares ON COMMIT DROP AS SELECT ST_Multi(ST_MakeEnvelope("
                             "100 + i * 1e-3, 12, 100 + i * 1e-3 + 5e-4, 12.0005, 4326)) AS g "
                             "FROM generate_series(1, 2000) i"))
        area = session.execute(text(
            f"SELECT sum({sql_area(sql_intersection('g', 'ST_Expand(g, -1e-4)'))} "
            f"+ {sql_area(sql_difference('g', 'ST_Expand(g, -1e-4)'))}) FROM squares")).scalar_one()
        session.rollback()
    assert area > 2000 * 2000  # each square some 3,000 m2, in two pieces
