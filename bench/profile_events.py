"""Events per second through the API, of one or more versions of the service in one run, and where the time goes.

    python -m bench.profile_events --data-dir bench/work/data [--code old=/path/to/checkout] [--events 200]
    python -m bench.profile_events --data-dir bench/work/data --in-process [--events 200]

On a cluster loaded by `python -m bench.generate`: each version is served by `landrelease serve` from
its checkout on the same database with an admin key; each takes `--events` events with one client
and then with eight, the versions alternating, every event a clearance wedge (dated yesterday, so
no replay) on a part of a hazard no event has touched, as bench/run.py's figure 5 sends them, each
hazard used once (organisation `profile-events`). `--in-process` calls the route through a
TestClient in this process instead and prints the seconds per SQL statement (bench/statement_timer.py)
and, when pyinstrument is importable (`PYTHONPATH=bench/work/prof-lib`), a profile.

Beside each rate it prints the CPU time per event of the service's process and of the cluster's
processes (the postmaster and its children: backends, WAL writer, autovacuum), read from /proc: on a
shared machine the rates move with the load, the CPU per event much less. One service process
runs Python on one core at a time, so its CPU per event bounds its rate (1000 / ms per event).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.embedded import EmbeddedCluster  # noqa: E402
from bench import generate  # noqa: E402
from bench.profile_tiles import admin_key, serve  # noqa: E402
from bench.run import stop, wait_http  # noqa: E402

WORK = ROOT / "bench" / "work"
ORGANISATION = "profile-events"


def event_bodies(conninfo: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(hazard id, body) of a wedge on a hazard inside its State that this script has not used yet."""
    with psycopg.connect(conninfo) as conn:
        plans = conn.execute(f"""
            SELECT h.id, p.cx, p.cy, p.rmax_m, p.free_from, p.free_to FROM bench.hazard_plan p
            JOIN hazardous_areas h ON h.external_id = p.external_id AND h.state_iso3 = p.state_iso3
            WHERE p.free_to > p.free_from AND h.status = 'active'
                  AND EXISTS (SELECT 1 FROM countries c WHERE c.iso3 = h.state_iso3 AND ST_Covers(c.geom,
                      ST_Buffer(ST_SetSRID(ST_MakePoint(p.cx, p.cy), 4326)::geography, p.rmax_m * 1.3)::geometry))
                  AND NOT EXISTS (SELECT 1 FROM land_release_events e
                                  WHERE e.hazard_id = h.id AND e.organisation = '{ORGANISATION}')
            ORDER BY md5(p.external_id)""").fetchall()
    when = (date.today() - timedelta(days=1)).isoformat()
    for hid, cx, cy, rmax, a0, a1 in plans:
        w = generate.wedge(cx, cy, rmax * 1.3, a0, a0 + (a1 - a0) / 6)
        yield str(hid), {"kind": "clearance", "date": when, "organisation": ORGANISATION,
                         "geometry": {"type": "Polygon", "coordinates": [[list(c) for c in w.exterior.coords]]}}


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU seconds of each of these processes so far (/proc/<pid>/stat; an ended one is left out)."""
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at the second (a process that ended in
    between, such as an autovacuum worker, would otherwise take its whole life off the total)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def cluster_pids(data_dir: Path) -> list[int]:
    """The cluster's postmaster and its children (the children come and go: read them again each time)."""
    postmaster = (data_dir / "pg" / "postmaster.pid").read_text().split()[0]
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and _parent(p) == postmaster]
    return [int(postmaster), *children]


def _parent(proc: Path) -> str | None:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return None


def rate(post: Any, bodies: list[tuple[str, dict[str, Any]]], clients: int, service: int,
         data_dir: Path) -> tuple[float, float, float]:
    """Accepted events per second of wall time, and the CPU ms per event of the service and of the cluster."""
    before = cpu_seconds([service]), cpu_seconds(cluster_pids(data_dir))
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda item: post(*item), bodies))
    elapsed = time.perf_counter() - t
    after = cpu_seconds([service]), cpu_seconds(cluster_pids(data_dir))
    bad = [c for c in codes if c != 201]
    if bad:
        raise RuntimeError(f"{len(bad)} events not accepted: {bad[:5]}")
    return (len(bodies) / elapsed, cpu_since(before[0], after[0]) / len(bodies) * 1000,
            cpu_since(before[1], after[1]) / len(bodies) * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(WORK / "data"))
    parser.add_argument("--code", action="append", default=[], help="name=checkout (repeatable; default: this one)")
    parser.add_argument("--events", type=int, default=200, help="events per version and number of clients")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args(argv)
    cluster = EmbeddedCluster(Path(args.data_dir), fsync=False)
    cluster.start()
    conninfo = generate.conninfo_of(cluster.url)
    bodies = event_bodies(conninfo)
    processes: list[subprocess.Popen] = []
    try:
        if args.in_process:
            return _in_process(cluster.url, [next(bodies) for _ in range(args.events)])
        codes = [tuple(c.split("=", 1)) for c in args.code] or [("this", str(ROOT))]
        posts = {}
        pids = {}
        for i, (name, code) in enumerate(codes):
            port = 18810 + i
            processes.append(serve(Path(code), port, cluster.url, WORK / f"profile-events-{name}.log"))
            wait_http(f"http://127.0.0.1:{port}/health", processes[-1])
            client = httpx.Client(headers={"Authorization": f"Bearer {admin_key(Path(code), cluster.url)}"},
                                  timeout=120, limits=httpx.Limits(max_connections=16))

            def post(hid: str, body: dict[str, Any], client: httpx.Client = client, port: int = port) -> int:
                return client.post(f"http://127.0.0.1:{port}/api/v1/hazards/{hid}/events", json=body).status_code
            posts[name], pids[name] = post, processes[-1].pid
        figures: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        for _ in range(args.rounds):
            for clients in (1, 8):
                for name, post in posts.items():
                    figures.setdefault((name, clients), []).append(
                        rate(post, [next(bodies) for _ in range(args.events)], clients, pids[name],
                             Path(args.data_dir)))
        for (name, clients), values in figures.items():
            print(f"{name:12s} {clients} client(s): " + ", ".join(
                f"{r:.1f}/s (CPU ms/event: service {s:.2f}, PostgreSQL {p:.2f})" for r, s, p in values))
    finally:
        for process in processes:
            stop(process)
        cluster.stop()
    return 0


def _in_process(url: str, bodies: list[tuple[str, dict[str, Any]]]) -> int:
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import Session

    from app import database
    from app.access import create_key
    from app.main import create_app
    from bench.statement_timer import time_statements

    database.configure(url)
    with Session(database.get_engine()) as session:
        _, secret = create_key(session, name="profile events", role="admin")
    spent = time_statements(database.get_engine())
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None  # noqa: N806
    with TestClient(create_app()) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        profiler = Profiler(interval=0.0005) if Profiler else None
        if profiler:
            profiler.start()
        t = time.perf_counter()
        for hid, body in bodies:
            r = client.post(f"/api/v1/hazards/{hid}/events", json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
        elapsed = time.perf_counter() - t
        if profiler:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
    n = len(bodies)
    print(f"{n} events in {elapsed:.2f} s: {n / elapsed:.1f}/s, {elapsed / n * 1000:.2f} ms each; SQL per event:")
    for statement, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {seconds / n * 1000:7.3f} ms  {statement}")
    print(f"  {sum(spent.values()) / n * 1000:7.3f} ms  in all SQL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
