"""The ledger's sliver rule (`app.geometry.sql_without_slivers`) over many random events: a difference that lies
within its mask is kept as it is, without the overlay with the mask; the result must be the full opening's
(the difference overlaid with its mask, on the grid) within 0.01 m2, with the same hazards left with nothing."""
from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon
from sqlalchemy import text

from app import database
from app.geometry import (
    MIN_AREA_M2,
    snap_to_grid,
    sql_area,
    sql_grid_difference,
    sql_grid_intersection,
    sql_polygonal,
    sql_sliver_mask,
    sql_without_slivers,
)

M_PER_DEG = 111_320.0


def _blob(rng: np.random.Generator, cx: float, cy: float, radius_m: float, vertices: int) -> Polygon:
    while True:  # a star-shaped ring, drawn again in the rare case two of its angles nearly coincide
        angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
        r = radius_m / M_PER_DEG * (1 + 0.3 * rng.random(vertices))
        blob = Polygon(np.c_[cx + r * np.cos(angles) / np.cos(np.radians(cy)), cy + r * np.sin(angles)])
        if blob.is_valid:
            return blob


def _pairs(count: int) -> list[tuple[Polygon, Polygon, str]]:
    """(hazard, event, how the event was drawn): overlapping blobs, half the hazard drawn again a few
    millimetres off (a sliver along the cut's edge), the whole hazard drawn again a few millimetres off
    (nothing but slivers remains), and needle-sharp wedges (sharp corners)."""
    rng = np.random.default_rng(20261202)
    pairs = []
    for i in range(count):
        cx, cy = rng.uniform(-170, 170), rng.uniform(-60, 60)
        hazard = _blob(rng, cx, cy, rng.uniform(30, 400), int(rng.integers(8, 60)))
        shift = rng.uniform(0.5, 9) * 1e-3 / M_PER_DEG * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        moved = shapely.affinity.translate(hazard, *shift)
        x0, y0, x1, y1 = hazard.bounds
        case = ("overlap", "half again", "all again", "needle")[i % 4]
        if case == "overlap":
            event = _blob(rng, cx + rng.uniform(-1, 1) * (x1 - x0) / 2, cy + rng.uniform(-1, 1) * (y1 - y0) / 2,
                          rng.uniform(20, 300), int(rng.integers(4, 40)))
        elif case == "half again":
            cut = rng.uniform(x0, x1)
            event = moved.intersection(shapely.box(x0 - 1, y0 - 1, cut, y1 + 1))
        elif case == "all again":
            event = moved
        else:
            tip = np.array([cx, cy])
            angle, width = rng.uniform(0, 2 * np.pi), rng.uniform(0.001, 0.3)
            reach = 2 * (x1 - x0)
            event = Polygon([tip, tip + reach * np.array([np.cos(angle), np.sin(angle)]),
                             tip + reach * np.array([np.cos(angle + width), np.sin(angle + width)])])
        pairs.append((hazard, event, case))
    return pairs


def test_the_sliver_rule_is_the_full_opening_over_many_random_events(database_url) -> None:
    pairs = _pairs(400)
    hazards = snap_to_grid(np.array([p[0] for p in pairs], dtype=object))
    events = snap_to_grid(np.array([p[1] for p in pairs], dtype=object))
    assert shapely.is_valid(hazards).all() and shapely.is_valid(events).all()
    full = sql_polygonal(sql_grid_intersection("g", sql_sliver_mask("g")))
    with database.get_engine().connect() as conn:
        rows = conn.execute(text(
            f"""
            WITH p AS MATERIALIZED (
                SELECT n, ST_Multi(ST_GeomFromWKB(rw, 4326)) AS r, ST_Multi(ST_GeomFromWKB(sw, 4326)) AS s
                FROM unnest(CAST(:r AS bytea[]), CAST(:s AS bytea[])) WITH ORDINALITY AS u(rw, sw, n)),
            d AS MATERIALIZED (
                SELECT n, r, s, {sql_polygonal(sql_grid_difference('r', 's'))} AS rest,
                       {sql_polygonal(sql_grid_difference('s', 'r'))} AS outside FROM p)
            SELECT n, {sql_area('rest')} AS raw_rest,
                   {sql_area(sql_without_slivers(sql_grid_difference('r', 's')))} AS rest,
                   (SELECT {sql_area(full)} FROM (SELECT rest AS g) AS f) AS full_rest,
                   {sql_area(sql_without_slivers(sql_grid_difference('s', 'r')))} AS outside,
                   (SELECT {sql_area(full)} FROM (SELECT outside AS g) AS f) AS full_outside,
                   covered_by_or_false(rest, {sql_sliver_mask('rest')}) AS rest_within_mask
            FROM d ORDER BY n"""),
            {"r": list(shapely.to_wkb(hazards)), "s": list(shapely.to_wkb(events))}).all()
    assert len(rows) == len(pairs)
    for row, (_, _, case) in zip(rows, pairs, strict=True):
        assert abs(row.rest - row.full_rest) < 0.01, (row.n, case)
        assert abs(row.outside - row.full_outside) < 0.01, (row.n, case)
        assert (row.rest < MIN_AREA_M2) == (row.full_rest < MIN_AREA_M2), (row.n, case)  # the hazard's status
    # the events drawn again a few millimetres off leave slivers, which both drop
    cases = [case for _, _, case in pairs]
    dropped = [row.raw_rest - row.full_rest for row, case in zip(rows, cases, strict=True) if case != "overlap"]
    assert sum(d > 0.01 for d in dropped) > len(dropped) / 2
    released = [row for row, case in zip(rows, cases, strict=True) if case == "all again"]
    assert sum(row.raw_rest >= MIN_AREA_M2 for row in released) > len(released) / 2  # slivers of 1 m2 and more
    assert all(row.rest < MIN_AREA_M2 for row in released)  # what remains of a hazard drawn again is only slivers
    # both branches of the rule were taken: differences within their mask, and differences with slivers
    assert any(row.rest_within_mask for row in rows) and not all(row.rest_within_mask for row in rows)
