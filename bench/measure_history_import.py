"""Time the bulk history import (app/files/history.py) end to end: a GeoPackage of hazards and their events.

    .venv/bin/python -m bench.measure_history_import --hazards 10000 --events 40000 [--data-dir DIR]

Generates the file with bench/generate.py's shapes (`star_polygon` hazards of 20-60 vertices, 1 ha up to
the grid cell, on a grid of cells inside Croatia so that no two overlap and all lie in their State, as
`generate.write_import_file` places them; `wedge` events around each hazard's centre reaching 30% past
its edge, each overlapping its neighbours by a fifth of its angle, in the generator's kinds and
proportions, dated after the hazard in increasing order, the rows of the file shuffled so that most
events arrive back-dated). Then imports it in-process into a cluster of its own (`DIR`, default
bench/work/history-data: it can run beside `bench.run`), with the time of every phase the import
reports, and of each replay step; prints a table and the extrapolation to 100,000 hazards and 400,000
events (the target: under 10 minutes). The State's hazards and events are removed before each run.

Meant to be wired into bench/run.py as one figure (`measure(...)` returns the numbers).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STATE = "HRV"
TARGET = (100_000, 400_000, 600.0)  # hazards, events, seconds
OVERLAP = 0.2  # of each wedge's angle, shared with each neighbour


def write_history_file(path: Path, n_hazards: int, n_events: int, seed: int = 20261202) -> Path:
    """The GeoPackage (layers hazardous_areas and land_release_events, EPSG:4326)."""
    import geopandas as gpd
    import pyogrio
    import shapely

    from bench import generate

    if path.exists():
        info = pyogrio.read_info(path, layer="land_release_events")
        if info["features"] == n_events and pyogrio.read_info(path, layer="hazardous_areas")["features"] == n_hazards:
            return path
        path.unlink()
    rng = np.random.default_rng(seed)
    croatia = gpd.read_file(f"/vsigzip/{generate.BOUNDARIES}").set_index("iso3").geometry["HRV"]
    shapely.prepare(croatia)
    lon_min, lat_min, lon_max, lat_max = 13.4, 42.3, 19.5, 46.6
    cells = math.ceil(n_hazards * 5)
    columns = math.ceil(math.sqrt(cells * (lon_max - lon_min) / (lat_max - lat_min)))
    cell_lon, cell_lat = (lon_max - lon_min) / columns, (lat_max - lat_min) / math.ceil(cells / columns)
    cell_m = min(cell_lon * generate.M_PER_DEG_LON * math.cos(math.radians(lat_max)), cell_lat * generate.M_PER_DEG_LAT)
    largest = min(1e6, math.pi * (0.45 * cell_m / 1.34 / 1.3) ** 2)  # the events reach 1.3 times the hazard
    counts = rng.poisson(n_events / n_hazards, n_hazards)
    counts = np.clip(counts, 1, 12)
    while counts.sum() != n_events:  # exactly n_events, each hazard 1 to 12
        i = rng.integers(0, n_hazards)
        step = 1 if counts.sum() < n_events else -1
        if 1 <= counts[i] + step <= 12:
            counts[i] += step
    last_day = (date.today() - timedelta(days=30) - generate.EPOCH).days
    hazards, hazard_geoms, events, event_geoms = [], [], [], []
    for cell in rng.permutation(cells):
        if len(hazards) == n_hazards:
            break
        cx = lon_min + (int(cell) % columns + 0.5) * cell_lon
        cy = lat_min + (int(cell) // columns + 0.5) * cell_lat
        area = float(math.exp(rng.uniform(math.log(1e4), math.log(largest))))
        polygon, rmax = generate.star_polygon(rng, cx, cy, area, int(rng.integers(20, 61)))
        reach = shapely.Point(cx, cy).buffer(1.35 * rmax / (generate.M_PER_DEG_LON * math.cos(math.radians(cy))))
        if not croatia.contains(reach):
            continue
        i = len(hazards)
        external_id = f"HRV-H{i + 1:07d}"
        recorded = int(rng.integers(0, (date(2020, 12, 31) - generate.EPOCH).days))
        hazards.append((external_id, "SHA" if rng.random() < 0.6 else "CHA", generate._date_text(recorded)))
        hazard_geoms.append(polygon)
        k = int(counts[i])
        start, span = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.3, 0.9)) * 2 * math.pi
        bounds = start + span * np.linspace(0, 1, k + 1)
        width = span / k
        days = np.sort(rng.integers(recorded + 1, max(recorded + 2, last_day), k))
        kinds = rng.choice(len(generate.KINDS), size=k, p=generate.KIND_P)
        for j in range(k):
            kind = generate.KINDS[kinds[j]]
            events.append((external_id, f"{external_id}-E{j + 1:02d}", kind, generate._date_text(days[j]),
                           generate.ORGANISATIONS[int(rng.integers(0, len(generate.ORGANISATIONS)))],
                           int(rng.poisson(1.5)) if kind == "clearance" else 0))
            a0 = bounds[j] - (OVERLAP * width if j else 0)
            event_geoms.append(generate.wedge(cx, cy, rmax * 1.3, float(a0), float(bounds[j + 1])))
    if len(hazards) < n_hazards:
        raise SystemExit(f"only {len(hazards)} hazards fit in Croatia's cells: ask for fewer")
    order = rng.permutation(len(events))  # the file's order: most events arrive back-dated
    hazard_frame = gpd.GeoDataFrame(
        {"external_id": [h[0] for h in hazards], "classification": [h[1] for h in hazards],
         "recorded_on": [h[2] for h in hazards]}, geometry=hazard_geoms, crs="EPSG:4326")
    event_frame = gpd.GeoDataFrame(
        {name: [events[o][c] for o in order] for c, name in enumerate(
            ("hazard_external_id", "external_id", "kind", "date", "organisation", "ap_mines"))},
        geometry=[event_geoms[o] for o in order], crs="EPSG:4326")
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(hazard_frame, path, layer="hazardous_areas", driver="GPKG")
    pyogrio.write_dataframe(event_frame, path, layer="land_release_events", driver="GPKG", append=True)
    return path


def _cpu_seconds(postmaster: int | None = None) -> float:
    """CPU seconds (user + system) of this process and its ended children (the file readers), or of the
    cluster of `postmaster`: its live processes (the import's backend and the replay's other connections)
    and those it has reaped."""
    if postmaster is None:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process has ended
            continue
        if int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
        elif stat.parent.name == str(postmaster):
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postmaster_of(backend: int) -> int:
    """The postmaster of a PostgreSQL backend process (its parent): the cluster whose CPU a PhaseClock counts."""
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


class PhaseClock:
    """The import's progress callback: when each phase began and ended, the CPU seconds this process and the
    cluster's PostgreSQL processes spent in it (the machine is shared: CPU time does not count the waits for
    a core), and each replay step's time."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self.started = time.perf_counter()
        self.phases: dict[str, list[float]] = {}  # phase: [began, ended, python cpu at start, cluster cpu at start]
        self.cpu: dict[str, tuple[float, float]] = {}  # phase: (python cpu s, PostgreSQL cpu s)
        self.steps: list[tuple[int, float]] = []
        self._last_done = 0
        self._current: str | None = None

    def _close(self) -> None:
        if self._current is not None:
            span = self.phases[self._current]
            self.cpu[self._current] = (_cpu_seconds() - span[2], _cpu_seconds(self.postmaster) - span[3])

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter() - self.started
        if phase != self._current:
            self._close()
            self._current = phase
        span = self.phases.setdefault(phase, [now, now, _cpu_seconds(), _cpu_seconds(self.postmaster)])
        if phase == "replaying events" and done > self._last_done:
            self.steps.append((done - self._last_done, now - span[1]))
            self._last_done = done
        span[1] = now

    def finish(self) -> None:
        self._close()


def measure(path: Path, data_dir: Path, workers: int | None = None) -> dict[str, Any]:
    """One import of `path` into STATE (emptied first), its replay on `workers` connections (default the
    setting); the phases' seconds and the totals."""
    if workers is not None:
        os.environ["LANDRELEASE_HISTORY_WORKERS"] = str(workers)
    for name, value in (("LANDRELEASE_MAX_IMPORT_FEATURES", "2000000"), ("LANDRELEASE_IMPORT_SECONDS", "3600"),
                        ("LANDRELEASE_IMPORT_CPU_SECONDS", "3600"), ("LANDRELEASE_IMPORT_MEMORY_MB", "8192")):
        os.environ.setdefault(name, value)
    from sqlalchemy import text

    from app import database, migrate
    from app.audit import Actor
    from app.embedded import EmbeddedCluster
    from app.files import history
    from app.settings import get_settings

    get_settings.cache_clear()
    cluster = EmbeddedCluster(data_dir, fsync=False)
    cluster.start()
    try:
        migrate.upgrade(cluster.url)
        database.configure(cluster.url)
        with database.session() as session:
            session.execute(text("DELETE FROM audit_log WHERE state_iso3 = :s"), {"s": STATE})
            session.execute(text("DELETE FROM land_release_events WHERE state_iso3 = :s"), {"s": STATE})
            session.execute(text("DELETE FROM hazardous_areas WHERE state_iso3 = :s"), {"s": STATE})
            session.commit()
        with database.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE hazardous_areas"))
            conn.execute(text("VACUUM ANALYZE land_release_events"))
        with database.session() as session:
            backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            clock = PhaseClock(postmaster_of(backend))
            result = history.import_history(session, STATE, history.HistoryOptions(events=path), Actor("bench"),
                                            progress=clock)
            clock.finish()
        total = time.perf_counter() - clock.started
        load = os.getloadavg()[0]
    finally:
        cluster.stop()
    return {"result": result, "total_s": total, "phases": clock.phases, "cpu": clock.cpu, "steps": clock.steps,
            "load": load, "workers": get_settings().history_workers,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def profile_step(data_dir: Path) -> list[tuple[str, float, float]]:
    """What one replay step is made of, each part timed over every imported event against its hazard's
    baseline (the first step's inputs) in one SELECT: (part, seconds, ms per event)."""
    from sqlalchemy import text

    from app import database
    from app.embedded import EmbeddedCluster
    from app.geometry import (
        sql_area,
        sql_difference,
        sql_grid_difference,
        sql_grid_intersection,
        sql_intersection,
        sql_without_slivers,
    )

    parts = [
        ("grid_intersection(event, hazard)", f"ST_NPoints({sql_grid_intersection('s', 'r')})"),
        ("released piece (sql_intersection)", f"ST_NPoints({sql_intersection('s', 'r')})"),
        ("grid_difference(hazard, event)", f"ST_NPoints({sql_grid_difference('r', 's')})"),
        ("the sliver opening of that difference", f"ST_NPoints({sql_without_slivers(sql_grid_difference('r', 's'))})"),
        ("remaining piece (sql_difference) and its area", f"{sql_area(sql_difference('r', 's'))}"),
        ("outside its hazard (record_event's outside_area_m2)", f"{sql_area(sql_difference('s', 'r'))}"),
    ]
    cluster = EmbeddedCluster(data_dir, fsync=False)
    cluster.start()
    timings = []
    try:
        database.configure(cluster.url)
        with database.session() as session:
            session.execute(text("SET statement_timeout = 0"))
            n = session.execute(text("SELECT count(*) FROM land_release_events WHERE state_iso3 = :s "
                                     "AND submitted_geom IS NOT NULL"), {"s": STATE}).scalar_one()
            for label, expr in parts:
                t = time.perf_counter()
                session.execute(text(f"SELECT sum(({expr})::float8) FROM (SELECT e.submitted_geom AS s, "
                                     "h.baseline_geom AS r FROM land_release_events e JOIN hazardous_areas h "
                                     "ON h.id = e.hazard_id WHERE e.state_iso3 = :s AND e.submitted_geom IS NOT NULL) "
                                     "pairs"), {"s": STATE})
                seconds = time.perf_counter() - t
                timings.append((label, seconds, 1000 * seconds / max(n, 1)))
            session.rollback()
    finally:
        cluster.stop()
    return timings


def report(n_hazards: int, n_events: int, m: dict[str, Any]) -> str:
    phases = list(m["phases"].items())
    lines = [f"History import of {n_hazards:,} hazards and {n_events:,} events: {m['total_s']:.1f} s end to end "
             f"({n_events / m['total_s']:,.0f} events/s), peak RSS of this process {m['peak_rss_mb']:,.0f} MB; "
             f"load average {m['load']:.1f} on {os.cpu_count()} cores at the end; the replay on "
             f"{m['workers']} connection(s)", "",
             "| phase | began at (s) | seconds | CPU s: Python (and readers) | CPU s: PostgreSQL |",
             "|---|---:|---:|---:|---:|"]
    cpu_total = 0.0
    for k, (phase, (began, ended, *_)) in enumerate(phases):
        following = phases[k + 1][1][0] if k + 1 < len(phases) else m["total_s"]
        python_s, backend_s = m["cpu"].get(phase, (0.0, 0.0))
        cpu_total += python_s + backend_s
        lines.append(f"| {phase} | {began:.1f} | {max(ended, following) - began:.1f} | {python_s:.1f} | "
                     f"{backend_s:.1f} |")
    steps = m["steps"]
    if steps:
        lines += ["", "replay steps (events in the step: seconds): "
                  + ", ".join(f"{n:,}: {s:.1f}" for n, s in steps)]
    hazards, events, target = TARGET
    scale = events / n_events  # every phase grows with the rows it handles; the events dominate
    lines += ["", f"Extrapolated linearly to {hazards:,} hazards / {events:,} events: about "
                  f"{m['total_s'] * scale / 60:.1f} min of wall-clock time as measured, {cpu_total * scale / 60:.1f} "
                  f"min of CPU time (over all cores) "
                  f"(target {target / 60:.0f} min: {'met' if cpu_total * scale < target else 'not met'} by the CPU "
                  "estimate, at most what an unshared machine would take: parts of it run on both cores)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hazards", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--data-dir", default=str(ROOT / "bench" / "work" / "history-data"))
    parser.add_argument("--file", default=None, help="the GeoPackage (default bench/work/history-H-E.gpkg)")
    parser.add_argument("--profile", action="store_true", help="then time the parts of a replay step")
    parser.add_argument("--workers", type=int, nargs="+", default=[None],
                        help="the replay's connections, one run each in turn (e.g. 1 2 1 2: old and new side by side)")
    args = parser.parse_args(argv)
    path = Path(args.file or ROOT / "bench" / "work" / f"history-{args.hazards}-{args.events}.gpkg")
    t = time.perf_counter()
    write_history_file(path, args.hazards, args.events)
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t:.0f} s to generate)",
          flush=True)
    runs = []
    for workers in args.workers:
        m = measure(path, Path(args.data_dir), workers)
        runs.append(m)
        print(report(args.hazards, args.events, m), "", sep="\n", flush=True)
    if len(runs) > 1:
        print("| run | connections | seconds end to end | CPU s (Python and PostgreSQL) |\n|---:|---:|---:|---:|")
        for k, m in enumerate(runs, start=1):
            cpu = sum(python_s + backend_s for python_s, backend_s in m["cpu"].values())
            print(f"| {k} | {m['workers']} | {m['total_s']:.1f} | {cpu:.1f} |")
    if args.profile:
        print("\n| part of a step, over every event | seconds | ms per event |\n|---|---:|---:|")
        for label, seconds, per_event in profile_step(Path(args.data_dir)):
            print(f"| {label} | {seconds:.1f} | {per_event:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
