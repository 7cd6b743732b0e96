"""Deterministic synthetic data for the benchmark, loaded through the service's own history import.

    python -m bench.generate --size small --data-dir bench/work/data     # into the embedded cluster
    python -m bench.generate --hazards 2000 --events 8000 --database-url postgresql://...

What is generated (seeded: the same arguments and day give the same hazards and events; only the
database ids (uuids) differ between loads; event dates end 30 days before the day of the run):
- N hazardous areas spread over eight States of geodata/article5_states.csv, clustered around
  "sites" the way survey data is (more sites per State as N grows); each a star-shaped (hence valid)
  polygon of 20-500 vertices whose area is log-uniform from 1 ha to 1 km2; 60% SHA, 40% CHA;
  recorded between 2000 and 2022. The service counts land once per State and keeps a State's hazards
  and events inside its boundary (app/ledger/overlaps.py, app/places), so a hazard is placed only where
  its circle (the polygon's reach) touches no other hazard of its State and the circle its events reach
  lies inside the State (geodata/boundaries); elsewhere its centre is drawn again.
- M land-release events (cancellation / reduction / clearance) over them. The events of one hazard
  are disjoint wedges around its centre (together covering a fraction of the hazard, all of it for
  one hazard in ten), reaching 30% past the hazard's edge so that part of each polygon falls outside.
- a GeoPackage of 100,000 hazard polygons (20-60 vertices) for the import measurement, for a State
  the generated hazards do not use (Croatia), written with pyogrio.

How they reach the ledger: as a national centre would move its history, through the bulk history
import (`app.files.history.import_history`, what `landrelease import-history` and
`POST /api/v1/states/{iso3}/history-imports` run), one State at a time: each State's hazards and events
are written to a GeoPackage of their own (layers `hazardous_areas` and `land_release_events`, the
columns the import reads), then imported in-process, all or nothing, with the ledger's checks,
refusals and audit entries. `load` reports each import's progress in the log and returns the wall and
CPU seconds of each of its phases (this process and the import's PostgreSQL backend, as
bench/measure_history_import.py's `PhaseClock` takes them), summed over the States.
`verify_with_replay` then replays a sample of hazards one by one through `app.ledger.replay` (in a
rolled-back transaction) and reports the largest difference in remaining area from what the set-based
import stored, and any status mismatch.
Not generated: reclassifications (splits), voids.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
SITES_PER_STATE = 60  # at least; one site per HAZARDS_PER_SITE hazards of the State beyond that
HAZARDS_PER_SITE = 100
SITE_SPREAD_DEG = 0.08
LARGEST_HAZARD_M2 = 1e6
EVENT_REACH = 1.3  # an event's wedge reaches this many times the hazard's largest radius
PLACEMENT_TRIES = 1000
KINDS = ("cancellation", "reduction", "clearance")
KIND_P = (0.35, 0.25, 0.40)
ORGANISATIONS = ("HALO Trust", "MAG", "NPA", "DDG", "national army", "CMAC", "FSD")
M_PER_DEG_LAT = 110_540.0
M_PER_DEG_LON = 111_320.0
EPOCH = date(2000, 1, 1)
# the import's limits for the reader worker, raised for a whole State's history in one file (app/settings)
IMPORT_LIMITS = {"LANDRELEASE_MAX_IMPORT_FEATURES": "2000000", "LANDRELEASE_MAX_IMPORT_VERTICES": "100000000",
                 "LANDRELEASE_IMPORT_SECONDS": "7200", "LANDRELEASE_IMPORT_CPU_SECONDS": "7200",
                 "LANDRELEASE_IMPORT_MEMORY_MB": "8192"}
HAZARD_COLUMNS = ("external_id", "classification", "contamination", "recorded_on", "name")
EVENT_COLUMNS = ("hazard_external_id", "external_id", "kind", "date", "organisation", "ap_mines",
                 "improvised_ap_mines", "av_mines", "other_eo")


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


def _star_radii(rng: np.random.Generator, area_m2: float, vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """The angles and radii (m) of a valid star-shaped polygon of about `area_m2`."""
    r0 = math.sqrt(area_m2 / math.pi)
    theta = 2 * math.pi * (np.arange(vertices) + rng.uniform(0.0, 0.8, vertices)) / vertices
    k = int(rng.integers(2, 6))
    phase = rng.uniform(0, 2 * math.pi, 2)
    r = r0 * (1 + 0.22 * np.sin(k * theta + phase[0]) + 0.08 * np.sin(3 * k * theta + phase[1])
              + rng.uniform(-0.04, 0.04, vertices))
    return theta, r


def star_polygon(rng: np.random.Generator, cx: float, cy: float, area_m2: float, vertices: int):
    """A valid star-shaped polygon of about `area_m2` around (cx, cy); returns (polygon, rmax_m)."""
    theta, r = _star_radii(rng, area_m2, vertices)
    return shapely.Polygon(_to_lonlat(cx, cy, r, theta)), float(r.max())


def _circle(cx: float, cy: float, radius_m: float) -> shapely.Polygon:
    """A 32-gon around (cx, cy), in the same local metres as the hazards and wedges."""
    theta = np.linspace(0, 2 * math.pi, 33)[:-1]
    return shapely.Polygon(_to_lonlat(cx, cy, np.full(32, radius_m), theta))


class _Placement:
    """Where a State's hazards may go: inside its boundary (with the reach of their events), and not on
    another hazard of the State (the circle of each polygon's largest radius, on a grid of cells)."""

    CELL_DEG = 0.05  # hazards overlap only from neighbouring cells (rmax < 760 m)

    def __init__(self, boundary: Any) -> None:
        shapely.prepare(boundary)
        self.boundary = boundary
        self.cells: dict[tuple[int, int], list[tuple[float, float, float]]] = {}

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return int(math.floor(x / self.CELL_DEG)), int(math.floor(y / self.CELL_DEG))

    def free(self, cx: float, cy: float, rmax: float) -> bool:
        kx = M_PER_DEG_LON * math.cos(math.radians(cy))
        i, j = self._cell(cx, cy)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                for x, y, r in self.cells.get((i + di, j + dj), ()):
                    if math.hypot((x - cx) * kx, (y - cy) * M_PER_DEG_LAT) < 1.02 * (r + rmax) + 10:
                        return False
        return bool(self.boundary.contains(_circle(cx, cy, 1.05 * EVENT_REACH * rmax)))

    def take(self, cx: float, cy: float, rmax: float) -> None:
        self.cells.setdefault(self._cell(cx, cy), []).append((cx, cy, rmax))


def wedge(cx: float, cy: float, radius_m: float, a0: float, a1: float) -> shapely.Polygon:
    """The sector from angle a0 to a1 (radians), out to `radius_m` (arc in steps of at most 15 degrees); the
    whole disc when it goes all the way round (a ring through its centre would touch itself)."""
    steps = max(2, int(math.ceil((a1 - a0) / (math.pi / 12))) + 1)
    theta = np.linspace(a0, a1, steps)
    arc = _to_lonlat(cx, cy, np.full(steps, radius_m), theta)
    if a1 - a0 >= 2 * math.pi - 1e-9:
        return shapely.Polygon(arc)
    return shapely.Polygon(np.vstack([[cx, cy], arc]))


def _date_text(days: int) -> str:
    return (EPOCH + timedelta(days=int(days))).isoformat()


def _boundaries(states: list[str]) -> dict[str, Any]:
    """Each State's boundary (geodata/boundaries, as the service loads it)."""
    import geopandas as gpd

    frame = gpd.read_file(f"/vsigzip/{BOUNDARIES}").set_index("iso3")
    return {iso3: frame.geometry[iso3] for iso3 in states}


def generate_rows(n_hazards: int, n_events: int, seed: int = SEED, last_event_day: date | None = None):
    """(hazard rows, event rows, plans), deterministic for a seed. A hazard row is HAZARD_COLUMNS plus its
    State and polygon, an event row EVENT_COLUMNS plus its State and wedge (shapely geometries)."""
    rng = np.random.default_rng(seed)
    known = _known_states()
    states = [s for s in STATES if s[0] in known]
    weights = np.array([s[1] for s in states]) / sum(s[1] for s in states)
    state_idx = rng.choice(len(states), size=n_hazards, p=weights)
    per_state = np.bincount(state_idx, minlength=len(states))
    sites = {
        s[0]: np.column_stack([rng.uniform(s[2], s[4], n), rng.uniform(s[3], s[5], n)])
        for s, n in ((s, max(SITES_PER_STATE, int(per_state[k]) // HAZARDS_PER_SITE)) for k, s in enumerate(states))
    }
    placement = {iso3: _Placement(boundary) for iso3, boundary in _boundaries([s[0] for s in states]).items()}
    last_day = ((last_event_day or (date.today() - timedelta(days=30))) - EPOCH).days
    recorded_max = (date(2022, 12, 31) - EPOCH).days

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

    hazards: list[list[Any]] = []
    events: list[list[Any]] = []
    plans: list[Plan] = []
    serial = {s[0]: 0 for s in states}
    for i in range(n_hazards):
        iso3 = states[state_idx[i]][0]
        serial[iso3] += 1
        area = float(math.exp(rng.uniform(math.log(1e4), math.log(LARGEST_HAZARD_M2))))
        theta, r = _star_radii(rng, area, int(rng.integers(20, 501)))
        rmax = float(r.max())
        for _ in range(PLACEMENT_TRIES):  # a centre near a site, where the hazard and its events fit
            site = int(rng.integers(0, len(sites[iso3])))
            sx, sy = sites[iso3][site]
            cx, cy = float(sx + rng.normal(0, SITE_SPREAD_DEG)), float(sy + rng.normal(0, SITE_SPREAD_DEG))
            if placement[iso3].free(cx, cy, rmax):
                break
        else:
            raise RuntimeError(f"no room for hazard {i + 1} in {iso3} after {PLACEMENT_TRIES} tries: generate fewer")
        placement[iso3].take(cx, cy, rmax)
        polygon = shapely.Polygon(_to_lonlat(cx, cy, r, theta))
        external_id = f"{iso3}-B{serial[iso3]:07d}"
        recorded = int(rng.integers(0, recorded_max))
        classification = "SHA" if rng.random() < 0.6 else "CHA"
        contamination = "AP_MINE" if rng.random() < 0.7 else str(rng.choice(
            ["AP_MINE,AV_MINE", "IMPROVISED_AP_MINE", "ERW", "AP_MINE,ERW"]))
        hazards.append([external_id, classification, contamination, _date_text(recorded),
                        f"Site {site} area {serial[iso3]}", iso3, polygon])

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
                events.append([external_id, f"{external_id}-E{j + 1:02d}", kind, _date_text(days[j]),
                               ORGANISATIONS[int(rng.integers(0, len(ORGANISATIONS)))], *items, iso3,
                               wedge(cx, cy, rmax * EVENT_REACH, float(bounds[j]), float(bounds[j + 1]))])
        free = (start + span, start + 2 * math.pi) if fraction < 1.0 else (0.0, 0.0)
        plans.append(Plan(external_id, iso3, cx, cy, rmax, *free))
    return hazards, events, plans


# --- loading: through the history import ----------------------------------------------------------
PLAN_TABLE = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.hazard_plan, bench.loaded;
CREATE TABLE bench.hazard_plan (external_id text PRIMARY KEY, state_iso3 text, cx float8, cy float8,
    rmax_m float8, free_from float8, free_to float8);
"""
PROGRESS_EVERY_S = 15.0  # within a phase, a progress line in the log at most this often


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


def write_history_files(folder: Path, hazards: list[list[Any]], events: list[list[Any]]) -> dict[str, Path]:
    """One GeoPackage per State (`generate_rows`' rows), its layers as the history import reads them."""
    import geopandas as gpd
    import pyogrio

    from app.files.history import DEFAULT_EVENTS_LAYER, DEFAULT_HAZARDS_LAYER

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.gpkg"):
        old.unlink()
    files: dict[str, Path] = {}
    for iso3 in dict.fromkeys(h[len(HAZARD_COLUMNS)] for h in hazards):
        path = files[iso3] = folder / f"{iso3}.gpkg"
        for layer, rows, columns in ((DEFAULT_HAZARDS_LAYER, hazards, HAZARD_COLUMNS),
                                     (DEFAULT_EVENTS_LAYER, events, EVENT_COLUMNS)):
            mine = [r for r in rows if r[len(columns)] == iso3]
            frame = gpd.GeoDataFrame({c: [r[k] for r in mine] for k, c in enumerate(columns)},
                                     geometry=[r[-1] for r in mine], crs="EPSG:4326")
            pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", append=path.exists())
    return files


@dataclass
class PhaseTime:
    """One phase of the history import, summed over the States: wall seconds, and the CPU seconds of this
    process (with the ended file readers) and of the import's PostgreSQL backend."""

    wall_s: float = 0.0
    python_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0


@dataclass
class LoadReport:
    """What `load` took: the rows generated, the files written, and each State's history import."""

    hazards: int
    events: int
    generate_s: float = 0.0
    files_s: float = 0.0
    import_s: float = 0.0  # every State's import, one after the other, end to end
    states: dict[str, float] = field(default_factory=dict)  # iso3: seconds of its import
    phases: dict[str, PhaseTime] = field(default_factory=dict)

    def add(self, iso3: str, clock: Any, seconds: float) -> None:
        """A State's import as its `PhaseClock` saw it: a phase lasts until the next one begins."""
        self.states[iso3] = seconds
        self.import_s += seconds
        phases = list(clock.phases.items())
        for k, (phase, (began, ended, *_)) in enumerate(phases):
            following = phases[k + 1][1][0] if k + 1 < len(phases) else seconds
            python_s, postgres_s = clock.cpu.get(phase, (0.0, 0.0))
            total = self.phases.setdefault(phase, PhaseTime())
            total.wall_s += max(ended, following) - began
            total.python_cpu_s += python_s
            total.postgres_cpu_s += postgres_s

    @property
    def cpu_s(self) -> tuple[float, float]:
        """(this process, PostgreSQL) CPU seconds of all the imports."""
        return (sum(p.python_cpu_s for p in self.phases.values()),
                sum(p.postgres_cpu_s for p in self.phases.values()))

    def summary(self) -> str:
        python_s, postgres_s = self.cpu_s
        return (f"generated in {self.generate_s:.1f} s, written to files in {self.files_s:.1f} s, imported in "
                f"{self.import_s:.1f} s (CPU: this process {python_s:.1f} s, PostgreSQL {postgres_s:.1f} s; "
                + ", ".join(f"{iso3} {s:.1f} s" for iso3, s in self.states.items()) + ")")


class _LoggedProgress:
    """A history import's progress callback: its `PhaseClock`, and a line in the log when a phase begins and
    at most every PROGRESS_EVERY_S within it."""

    def __init__(self, iso3: str, clock: Any, log: Callable[[str], None]) -> None:
        self.iso3, self.clock, self.log = iso3, clock, log
        self.phase = ""
        self.printed = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.clock(phase, done, total)
        now = time.monotonic()
        if phase != self.phase or now - self.printed >= PROGRESS_EVERY_S:
            self.phase, self.printed = phase, now
            self.log(f"  [{time.strftime('%H:%M:%S')}] {self.iso3}: {phase} {done:,}/{total:,}")


def load(url: str, n_hazards: int, n_events: int, seed: int = SEED, folder: Path = ROOT / "bench" / "work" /
         "history-files", log: Callable[[str], None] = print) -> LoadReport:
    """Generate, write each State's GeoPackage into `folder` and import it through the history import, State
    after State, into the database at `url` (emptied of hazards, events and audit entries first: the benchmark
    owns it)."""
    with _raised_import_limits():
        return _load(url, n_hazards, n_events, seed, folder, log)


@contextlib.contextmanager
def _raised_import_limits() -> Iterator[None]:
    """The import's size limits raised for the load (IMPORT_LIMITS, where not set already), and put back after
    it: the process (a test session) goes on with its own."""
    from app.settings import get_settings

    before = {name: os.environ.get(name) for name in IMPORT_LIMITS}
    for name, value in IMPORT_LIMITS.items():
        os.environ.setdefault(name, value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def _load(url: str, n_hazards: int, n_events: int, seed: int, folder: Path, log: Callable[[str], None]) -> LoadReport:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from app import database
    from app.audit import Actor
    from app.files import history
    from bench.measure_history_import import PhaseClock, postmaster_of

    report = LoadReport(n_hazards, n_events)
    t = time.perf_counter()
    hazards, events, plans = generate_rows(n_hazards, n_events, seed)
    report.generate_s = time.perf_counter() - t
    log(f"generated {len(hazards):,} hazards, {len(events):,} events in {report.generate_s:.1f} s")
    t = time.perf_counter()
    files = write_history_files(folder, hazards, events)
    report.files_s = time.perf_counter() - t
    log(f"wrote {len(files)} history files into {folder} in {report.files_s:.1f} s")
    conninfo = conninfo_of(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE land_release_events, hazardous_areas, audit_log CASCADE")
        conn.execute("DROP TABLE IF EXISTS bench.loaded")
    engine = create_engine(database.sqlalchemy_url(url), connect_args=database.connect_args())
    try:
        for iso3, path in files.items():
            with Session(engine) as session:
                clock = PhaseClock(postmaster_of(session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
                result = history.import_history(session, iso3, history.HistoryOptions(events=path, source=path.name),
                                                Actor("bench"), progress=_LoggedProgress(iso3, clock, log))
                clock.finish()
            report.add(iso3, clock, time.perf_counter() - clock.started)
            log(f"{iso3}: {result['hazards']['created']:,} hazards and {result['events']['rows']:,} events imported "
                f"in {report.states[iso3]:.1f} s")
    finally:
        engine.dispose()
    with psycopg.connect(conninfo) as conn:
        conn.execute(PLAN_TABLE)
        with conn.cursor().copy("COPY bench.hazard_plan FROM STDIN") as copy:
            for p in plans:
                copy.write_row([p.external_id, p.state_iso3, p.cx, p.cy, p.rmax_m, p.free_from, p.free_to])
        conn.execute("CREATE TABLE bench.loaded AS SELECT %s::int AS hazards, %s::int AS events, %s::int AS seed",
                     (n_hazards, n_events, seed))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE hazardous_areas")
        conn.execute("VACUUM ANALYZE land_release_events")
    log("loaded: " + report.summary())
    return report


def verify_with_replay(url: str, sample: int = 50, seed: int = SEED) -> dict[str, float]:
    """Replay a sample of hazards one by one through the ledger (rolled back) and compare with what the
    history import stored."""
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
    parser.add_argument("--files-dir", default=str(ROOT / "bench" / "work" / "history-files"),
                        help="where each State's history GeoPackage is written (default bench/work/history-files)")
    parser.add_argument("--verify", type=int, default=50, help="hazards to replay through the ledger (0: none)")
    parser.add_argument("--import-file", help="also write the import GeoPackage here")
    parser.add_argument("--import-polygons", type=int, default=IMPORT_POLYGONS)
    args = parser.parse_args(argv)
    n_hazards, n_events = SIZES[args.size]
    n_hazards = args.hazards if args.hazards is not None else n_hazards
    n_events = args.events if args.events is not None else n_events

    from app.database import sqlalchemy_url

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
        report = load(url, n_hazards, n_events, args.seed, Path(args.files_dir))
        for phase, spent in report.phases.items():
            print(f"  {phase}: {spent.wall_s:.1f} s (CPU: this process {spent.python_cpu_s:.1f} s, PostgreSQL "
                  f"{spent.postgres_cpu_s:.1f} s)")
        if args.verify:
            print("replay check:", verify_with_replay(sqlalchemy_url(url), args.verify, args.seed))
        if args.import_file:
            print("import file:", write_import_file(Path(args.import_file), args.import_polygons))
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
