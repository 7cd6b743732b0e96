"""Deterministic synthetic data for the benchmark: hazards, land-release events and an import file.

    python -m bench.generate --size small --data-dir bench/work/data     # into the embedded cluster
    python -m bench.generate --hazards 2000 --events 8000 --database-url postgresql://...

What is generated (seeded: the same arguments and day give the same hazards and events; only the
database ids (uuids) differ between loads; event dates end 30 days before the day of the run):
- N hazardous areas spread over eight States of geodata/article5_states.csv, clustered around
  "sites" the way survey data is; each a star-shaped (hence valid) polygon of 20-500 vertices whose
  area is log-uniform from 1 ha to 5 km2; 60% SHA, 40% CHA; recorded between 2000 and 2022.
- M land-release events (cancellation / reduction / clearance) over them. The events of one hazard
  are disjoint wedges around its centre (together covering a fraction of the hazard, all of it for
  one hazard in ten), reaching past the hazard's edge so that part of each polygon falls outside.
- a GeoPackage of 100,000 hazard polygons (20-60 vertices) for the import measurement, for a State
  the generated hazards do not use (Croatia), written with pyogrio.

How the ledger columns are filled (the choice, and why it is correct):
Replaying 40,000 or 800,000 events one by one through the ledger would take longer than the
benchmark itself, so the load is bulk SQL with the ledger's own SQL fragments (app.geometry:
sql_snap, sql_intersection, sql_difference, sql_area):
1. hazards: COPY of hex EWKB into a staging table, then one INSERT ... SELECT with
   baseline = remaining = sql_snap(polygon) and the areas by ST_Area(geography) (sql_area);
2. events: one INSERT ... SELECT in (date, id) order (so `arrival` follows the dates) with
   released_geom = sql_intersection(event, baseline) and outside_area_m2 = area(event - baseline).
   Because the wedges of one hazard are disjoint, "what remained just before the event" cuts the
   event exactly as the baseline does: the replay order cannot change any released piece;
3. hazards: remaining_geom = sql_difference(baseline, union of released pieces), remaining_area_m2
   its geodesic area (0 and status 'released' on the last event's date when under MIN_AREA_M2),
   and the last event of each hazard absorbs the centimetre-level rounding so that
   baseline_area_m2 - sum(released_area_m2) = remaining_area_m2 holds exactly, as in the ledger.
`verify_with_replay` then replays a sample of hazards through `app.ledger.replay` (in a rolled-back
transaction) and reports the largest difference in remaining area and any status mismatch.
Not generated: reclassifications (splits), voids, audit-log rows for the bulk load.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg
import shapely

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.geometry import MIN_AREA_M2, SQL_EMPTY, sql_area, sql_difference, sql_intersection, sql_snap  # noqa: E402

SIZES = {"small": (10_000, 40_000), "large": (200_000, 800_000)}
IMPORT_POLYGONS = 100_000
IMPORT_STATE = "HRV"
BOUNDARIES = ROOT / "geodata" / "boundaries" / "countries.geojson.gz"  # app/places: hazards lie in their State
SEED = 20261123

# (iso3, weight, lon_min, lat_min, lon_max, lat_max): rough land boxes of eight States.
STATES = [
    ("KHM", 3.0, 102.6, 11.2, 106.4, 14.2),
    ("AFG", 2.0, 62.5, 31.5, 69.5, 36.5),
    ("UKR", 2.0, 30.5, 46.8, 38.0, 50.2),
    ("BIH", 1.0, 16.5, 43.2, 19.3, 45.0),
    ("COL", 1.0, -76.0, 2.0, -72.5, 8.0),
    ("IRQ", 1.0, 42.5, 31.5, 46.0, 36.5),
    ("YEM", 1.0, 43.8, 13.2, 47.5, 16.0),
    ("AGO", 1.0, 14.5, -15.5, 21.5, -9.5),
]
SITES_PER_STATE = 60
KINDS = ("cancellation", "reduction", "clearance")
KIND_P = (0.35, 0.25, 0.40)
ORGANISATIONS = ("HALO Trust", "MAG", "NPA", "DDG", "national army", "CMAC", "FSD")
M_PER_DEG_LAT = 110_540.0
M_PER_DEG_LON = 111_320.0
EPOCH = date(2000, 1, 1)


def _known_states() -> set[str]:
    import csv

    with (ROOT / "geodata" / "article5_states.csv").open(newline="", encoding="utf-8") as f:
        return {row["iso3"] for row in csv.DictReader(f)}


@dataclass
class Plan:
    """Where a hazard is and which angles around its centre no generated event has touched."""

    external_id: str
    state_iso3: str
    cx: float
    cy: float
    rmax_m: float
    free_from: float  # radians
    free_to: float


def _to_lonlat(cx: float, cy: float, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    kx = M_PER_DEG_LON * math.cos(math.radians(cy))
    return np.column_stack([cx + r * np.cos(theta) / kx, cy + r * np.sin(theta) / M_PER_DEG_LAT])


def star_polygon(rng: np.random.Generator, cx: float, cy: float, area_m2: float, vertices: int):
    """A valid star-shaped polygon of about `area_m2` around (cx, cy); returns (polygon, rmax_m)."""
    r0 = math.sqrt(area_m2 / math.pi)
    theta = 2 * math.pi * (np.arange(vertices) + rng.uniform(0.0, 0.8, vertices)) / vertices
    k = int(rng.integers(2, 6))
    phase = rng.uniform(0, 2 * math.pi, 2)
    r = r0 * (1 + 0.22 * np.sin(k * theta + phase[0]) + 0.08 * np.sin(3 * k * theta + phase[1])
              + rng.uniform(-0.04, 0.04, vertices))
    coords = _to_lonlat(cx, cy, r, theta)
    return shapely.Polygon(coords), float(r.max())


def wedge(cx: float, cy: float, radius_m: float, a0: float, a1: float) -> shapely.Polygon:
    """The sector from angle a0 to a1 (radians), out to `radius_m` (arc in steps of at most 15 degrees)."""
    steps = max(2, int(math.ceil((a1 - a0) / (math.pi / 12))) + 1)
    theta = np.linspace(a0, a1, steps)
    arc = _to_lonlat(cx, cy, np.full(steps, radius_m), theta)
    return shapely.Polygon(np.vstack([[cx, cy], arc]))


def _date_text(days: int) -> str:
    return (EPOCH + timedelta(days=int(days))).isoformat()


def generate_rows(n_hazards: int, n_events: int, seed: int = SEED, last_event_day: date | None = None):
    """Yield nothing; return (hazard rows, event rows, plans) as lists, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    known = _known_states()
    states = [s for s in STATES if s[0] in known]
    weights = np.array([s[1] for s in states]) / sum(s[1] for s in states)
    sites = {
        s[0]: np.column_stack([rng.uniform(s[2], s[4], SITES_PER_STATE), rng.uniform(s[3], s[5], SITES_PER_STATE)])
        for s in states
    }
    last_day = ((last_event_day or (date.today() - timedelta(days=30))) - EPOCH).days
    recorded_max = (date(2022, 12, 31) - EPOCH).days

    state_idx = rng.choice(len(states), size=n_hazards, p=weights)
    # events per hazard: Poisson around M/N, then nudged so that the total is exactly M
    mean = n_events / max(n_hazards, 1)
    counts = rng.poisson(mean, n_hazards)
    diff = n_events - int(counts.sum())
    while diff != 0:
        i = rng.integers(0, n_hazards, abs(diff))
        if diff > 0:
            np.add.at(counts, i, 1)
        else:
            counts[i] = np.maximum(counts[i] - 1, 0)
        diff = n_events - int(counts.sum())
    counts = np.minimum(counts, 24)  # a few hazards carry many events; cap the extreme tail
    spill = n_events - int(counts.sum())
    if spill:
        room = np.flatnonzero(counts < 24)
        np.add.at(counts, rng.choice(room, spill), 1)

    hazards, events, plans, geoms, event_geoms = [], [], [], [], []
    serial = {s[0]: 0 for s in states}
    for i in range(n_hazards):
        iso3 = states[state_idx[i]][0]
        serial[iso3] += 1
        site = int(rng.integers(0, SITES_PER_STATE))
        sx, sy = sites[iso3][site]
        cx, cy = float(sx + rng.normal(0, 0.08)), float(sy + rng.normal(0, 0.08))
        area = float(math.exp(rng.uniform(math.log(1e4), math.log(5e6))))
        vertices = int(rng.integers(20, 501))
        polygon, rmax = star_polygon(rng, cx, cy, area, vertices)
        external_id = f"{iso3}-B{serial[iso3]:07d}"
        recorded = int(rng.integers(0, recorded_max))
        classification = "SHA" if rng.random() < 0.6 else "CHA"
        contamination = "{AP_MINE}" if rng.random() < 0.7 else rng.choice(
            ["{AP_MINE,AV_MINE}", "{IMPROVISED_AP_MINE}", "{ERW}", "{AP_MINE,ERW}"])
        hazards.append([external_id, iso3, classification, contamination, f"{iso3} region {site % 12 + 1}",
                        _date_text(recorded), f"Site {site} area {serial[iso3]}"])
        geoms.append(polygon)

        k = int(counts[i])
        start = float(rng.uniform(0, 2 * math.pi))
        fraction = 1.0 if (k and rng.random() < 0.1) else float(rng.uniform(0.1, 0.9))
        span = fraction * 2 * math.pi
        if k:
            w = rng.uniform(0.3, 1.0, k)
            bounds = start + span * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
            bounds[-1] = start + span
            days = np.sort(rng.integers(recorded + 1, max(recorded + 2, last_day), k))
            kinds = rng.choice(len(KINDS), size=k, p=KIND_P)
            for j in range(k):
                kind = KINDS[kinds[j]]
                items = [int(rng.poisson(1.5)), int(rng.poisson(0.2)), int(rng.poisson(0.1)),
                         int(rng.poisson(2.0))] if kind == "clearance" else [0, 0, 0, 0]
                events.append([external_id, iso3, f"{external_id}-E{j + 1:02d}", kind, _date_text(days[j]),
                               ORGANISATIONS[int(rng.integers(0, len(ORGANISATIONS)))], *items])
                event_geoms.append(wedge(cx, cy, rmax * 1.3, float(bounds[j]), float(bounds[j + 1])))
        free = (start + span, start + 2 * math.pi) if fraction < 1.0 else (0.0, 0.0)
        plans.append(Plan(external_id, iso3, cx, cy, rmax, *free))
    hazard_wkb = shapely.to_wkb(shapely.set_srid(np.array(geoms, dtype=object), 4326), hex=True, include_srid=True)
    event_wkb = shapely.to_wkb(shapely.set_srid(np.array(event_geoms, dtype=object), 4326), hex=True,
                               include_srid=True) if event_geoms else []
    for row, g in zip(hazards, hazard_wkb, strict=False):
        row.append(g)
    for row, g in zip(events, event_wkb, strict=False):
        row.append(g)
    return hazards, events, plans


# --- loading ---------------------------------------------------------------------------------
STAGING = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.stage_hazards, bench.stage_events, bench.hazard_plan, bench.hazard_result;
CREATE UNLOGGED TABLE bench.stage_hazards (external_id text, state_iso3 text, classification text,
    contamination text[], region text, recorded_on date, name text, geom geometry);
CREATE UNLOGGED TABLE bench.stage_events (hazard_external_id text, state_iso3 text, external_id text, kind text,
    date date, organisation text, ap_mines int, improvised_ap_mines int, av_mines int, other_eo int, geom geometry);
CREATE TABLE bench.hazard_plan (external_id text PRIMARY KEY, state_iso3 text, cx float8, cy float8,
    rmax_m float8, free_from float8, free_to float8);
"""

INSERT_HAZARDS = f"""
INSERT INTO hazardous_areas (state_iso3, external_id, name, classification, contamination, region, recorded_on,
                             baseline_geom, baseline_area_m2, remaining_geom, remaining_area_m2)
SELECT s.state_iso3, s.external_id, s.name, s.classification, s.contamination, s.region, s.recorded_on,
       g.geom, a.m2, g.geom, a.m2
FROM bench.stage_hazards s
CROSS JOIN LATERAL (SELECT {sql_snap('s.geom')} AS geom) g
CROSS JOIN LATERAL (SELECT {sql_area('g.geom')} AS m2) a
"""

INSERT_EVENTS = f"""
INSERT INTO land_release_events (hazard_id, state_iso3, external_id, kind, date, submitted_geom, released_geom,
    released_area_m2, outside_area_m2, organisation, ap_mines, improvised_ap_mines, av_mines, other_eo)
SELECT h.id, e.state_iso3, e.external_id, e.kind, e.date, s.sub, r.rel, {sql_area('r.rel')},
       {sql_area(sql_difference('s.sub', 'h.baseline_geom'))}, e.organisation, e.ap_mines, e.improvised_ap_mines,
       e.av_mines, e.other_eo
FROM bench.stage_events e
JOIN hazardous_areas h ON h.state_iso3 = e.state_iso3 AND h.external_id = e.hazard_external_id
CROSS JOIN LATERAL (SELECT {sql_snap('e.geom')} AS sub) s
CROSS JOIN LATERAL (SELECT {sql_intersection('s.sub', 'h.baseline_geom')} AS rel) r
ORDER BY e.date, e.external_id
"""

HAZARD_RESULT = f"""
CREATE UNLOGGED TABLE bench.hazard_result AS
WITH agg AS (
    SELECT hazard_id, ST_Union(released_geom) AS released, sum(released_area_m2) AS released_m2
    FROM land_release_events WHERE voided_at IS NULL GROUP BY hazard_id),
last AS (
    SELECT DISTINCT ON (hazard_id) hazard_id, id AS event_id, date
    FROM land_release_events WHERE voided_at IS NULL ORDER BY hazard_id, date DESC, arrival DESC),
rest AS (
    SELECT h.id, h.baseline_area_m2, agg.released_m2, last.event_id, last.date,
           {sql_difference('h.baseline_geom', 'agg.released')} AS geom
    FROM hazardous_areas h JOIN agg ON agg.hazard_id = h.id JOIN last ON last.hazard_id = h.id)
SELECT id, baseline_area_m2, released_m2, event_id, date, geom, {sql_area('geom')} AS m2 FROM rest
"""

APPLY_RESULT = [
    # a remnant under MIN_AREA_M2 goes with the last event (the hazard is released in full on its date)
    f"""UPDATE bench.hazard_result SET geom = {SQL_EMPTY}, m2 = 0 WHERE m2 < {MIN_AREA_M2}""",
    """UPDATE land_release_events e SET released_area_m2 = e.released_area_m2
           + (r.baseline_area_m2 - r.released_m2 - r.m2)
       FROM bench.hazard_result r WHERE e.id = r.event_id""",
    """UPDATE hazardous_areas h SET remaining_geom = r.geom, remaining_area_m2 = r.m2,
           status = CASE WHEN r.m2 = 0 THEN 'released' ELSE 'active' END,
           released_on = CASE WHEN r.m2 = 0 THEN r.date END
       FROM bench.hazard_result r WHERE h.id = r.id""",
]


def conninfo_of(url: str) -> str:
    """A libpq URL from the service's SQLAlchemy URL (drops the +psycopg driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def loaded(conninfo: str) -> tuple[int, int, int] | None:
    """(hazards, events, seed) of the last complete `load` into this database, if any."""
    try:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute("SELECT hazards, events, seed FROM bench.loaded").fetchone()
    except psycopg.Error:
        return None
    return tuple(row) if row else None


def load(conninfo: str, n_hazards: int, n_events: int, seed: int = SEED, log=print) -> dict[str, float]:
    """Generate and bulk-load; returns timings in seconds. Existing generated rows are removed first."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    hazards, events, plans = generate_rows(n_hazards, n_events, seed)
    timings["generate_s"] = time.perf_counter() - t
    log(f"generated {len(hazards)} hazards, {len(events)} events in {timings['generate_s']:.1f} s")
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET synchronous_commit = off")
        t = time.perf_counter()
        conn.execute(STAGING)
        with conn.cursor().copy("COPY bench.stage_hazards FROM STDIN") as copy:
            for row in hazards:
                copy.write_row(row)
        with conn.cursor().copy("COPY bench.stage_events FROM STDIN") as copy:
            for row in events:
                copy.write_row(row)
        with conn.cursor().copy("COPY bench.hazard_plan FROM STDIN") as copy:
            for p in plans:
                copy.write_row([p.external_id, p.state_iso3, p.cx, p.cy, p.rmax_m, p.free_from, p.free_to])
        timings["copy_s"] = time.perf_counter() - t
        t = time.perf_counter()
        # start from an empty ledger (the benchmark owns this database)
        conn.execute("TRUNCATE land_release_events, hazardous_areas, audit_log CASCADE")
        conn.execute(INSERT_HAZARDS)
        timings["insert_hazards_s"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute(INSERT_EVENTS)
        timings["insert_events_s"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute(HAZARD_RESULT)
        for statement in APPLY_RESULT:
            conn.execute(statement)
        conn.execute("DROP TABLE bench.stage_hazards, bench.stage_events, bench.hazard_result")
        timings["remaining_s"] = time.perf_counter() - t
        conn.execute("DROP TABLE IF EXISTS bench.loaded")
        conn.execute("CREATE TABLE bench.loaded AS SELECT %s::int AS hazards, %s::int AS events, %s::int AS seed",
                     (n_hazards, n_events, seed))
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE hazardous_areas")
        conn.execute("VACUUM ANALYZE land_release_events")
    log("loaded: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return timings


def verify_with_replay(url: str, sample: int = 50, seed: int = SEED) -> dict[str, float]:
    """Replay a sample of hazards through the ledger (rolled back) and compare with the bulk load."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from app import ledger

    engine = create_engine(url)
    worst, worst_rel, mismatched, checked = 0.0, 0.0, 0, 0
    try:
        with Session(engine) as session:
            rows = session.execute(text(
                "SELECT id, baseline_area_m2, remaining_area_m2, status, released_on FROM hazardous_areas h "
                "WHERE EXISTS (SELECT 1 FROM land_release_events e WHERE e.hazard_id = h.id) "
                "ORDER BY md5(id::text || :seed) LIMIT :n"), {"seed": str(seed), "n": sample}).all()
            for row in rows:
                ledger.replay(session, row.id)
                after = session.execute(text("SELECT remaining_area_m2, status, released_on FROM hazardous_areas "
                                             "WHERE id = :id"), {"id": row.id}).one()
                worst = max(worst, abs(after.remaining_area_m2 - row.remaining_area_m2))
                worst_rel = max(worst_rel, abs(after.remaining_area_m2 - row.remaining_area_m2) / row.baseline_area_m2)
                mismatched += (after.status != row.status) or (after.released_on != row.released_on)
                checked += 1
            session.rollback()
    finally:
        engine.dispose()
    return {"checked": checked, "max_remaining_diff_m2": round(worst, 3),
            "max_remaining_diff_of_baseline": float(f"{worst_rel:.2e}"), "status_mismatches": mismatched}


def write_import_file(path: Path, n: int = IMPORT_POLYGONS, seed: int = SEED + 1) -> Path:
    """A GeoPackage of n hazard polygons (20-60 vertices) in Croatia, the columns the JSON API uses."""
    import geopandas as gpd
    import pyogrio

    if path.exists():
        info = pyogrio.read_info(path)
        if info["features"] == n:
            return path
        path.unlink()
    rng = np.random.default_rng(seed)
    # Croatia's box; the service refuses a hazard outside its State (app/places), so only the cells whose
    # polygon lies inside Croatia (geodata/boundaries) are kept: the grid has about 4.4 cells per polygon
    croatia = gpd.read_file(f"/vsigzip/{BOUNDARIES}").set_index("iso3").geometry["HRV"]
    shapely.prepare(croatia)
    lon_min, lat_min, lon_max, lat_max = 13.4, 42.3, 19.5, 46.6
    cells = math.ceil(n * 4.4)
    # One polygon per cell of a grid over the region, in a random order: the service refuses hazards that
    # overlap land another hazard of the State counts, so no two polygons of the file may overlap.
    columns = math.ceil(math.sqrt(cells * (lon_max - lon_min) / (lat_max - lat_min)))
    cell_lon, cell_lat = (lon_max - lon_min) / columns, (lat_max - lat_min) / math.ceil(cells / columns)
    cell_m = min(cell_lon * M_PER_DEG_LON * math.cos(math.radians(lat_max)), cell_lat * M_PER_DEG_LAT)
    largest = min(1e6, math.pi * (0.45 * cell_m / 1.34) ** 2)  # a star polygon reaches out to 1.34 r0
    geoms, rows = [], []
    for cell in rng.permutation(cells):
        if len(geoms) == n:
            break
        cx = lon_min + (int(cell) % columns + 0.5) * cell_lon
        cy = lat_min + (int(cell) // columns + 0.5) * cell_lat
        area = float(math.exp(rng.uniform(math.log(1e4), math.log(largest))))
        polygon, _ = star_polygon(rng, cx, cy, area, int(rng.integers(20, 61)))
        if not croatia.contains(polygon):
            continue
        i = len(geoms)
        geoms.append(polygon)
        rows.append((f"HRV-IMP-{i + 1:07d}", "SHA" if rng.random() < 0.6 else "CHA", "AP_MINE",
                     f"Imported area {i + 1}", "Lika-Senj",
                     _date_text(int(rng.integers(0, (date(2022, 12, 31) - EPOCH).days)))))
    frame = gpd.GeoDataFrame(
        {"external_id": [r[0] for r in rows], "classification": [r[1] for r in rows],
         "contamination": [r[2] for r in rows], "name": [r[3] for r in rows], "region": [r[4] for r in rows],
         "recorded_on": [r[5] for r in rows]},
        geometry=geoms, crs="EPSG:4326")
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, path, layer="hazardous_areas", driver="GPKG")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--hazards", type=int, help="override the number of hazards (tiny dev runs)")
    parser.add_argument("--events", type=int, help="override the number of events")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--database-url", help="load into this database (default: the embedded cluster)")
    parser.add_argument("--data-dir", default=str(ROOT / "bench" / "work" / "data"),
                        help="embedded cluster folder when no --database-url (default bench/work/data)")
    parser.add_argument("--verify", type=int, default=50, help="hazards to replay through the ledger (0: none)")
    parser.add_argument("--import-file", help="also write the import GeoPackage here")
    parser.add_argument("--import-polygons", type=int, default=IMPORT_POLYGONS)
    args = parser.parse_args(argv)
    n_hazards, n_events = SIZES[args.size]
    n_hazards = args.hazards if args.hazards is not None else n_hazards
    n_events = args.events if args.events is not None else n_events

    cluster = None
    url = args.database_url
    if not url:
        from app import migrate
        from app.embedded import EmbeddedCluster

        cluster = EmbeddedCluster(Path(args.data_dir), fsync=False)
        cluster.start()
        url = cluster.url
        migrate.upgrade(url)
    try:
        load(conninfo_of(url), n_hazards, n_events, args.seed)
        if args.verify:
            print("replay check:", verify_with_replay(url.replace("postgresql://", "postgresql+psycopg://", 1),
                                                      args.verify, args.seed))
        if args.import_file:
            print("import file:", write_import_file(Path(args.import_file), args.import_polygons))
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
