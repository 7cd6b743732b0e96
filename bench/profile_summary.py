"""Where the per-State summary and the Committee overview spend their time, on the bench database.

    .venv/bin/python -m bench.profile_summary [KHM] [--data-dir DIR] [--pending N]

Runs `app.committee.summaries.state_summary` and `overview` in-process against the bench database
(bench/work/data, left by the last `bench.run`, or DIR: a database of `bench.generate --data-dir DIR`), times
every SQL statement, and prints EXPLAIN ANALYZE of the slowest one. With `--pending N`, the backlog is first
seeded to N submissions awaiting review as `bench.run` seeds it (the generated organisations in each State's
register; for the first of them, land-release reports on wedges no event touches), in-process through
`app.submissions.submit` as the submission route calls it for an operator.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def seed_backlog(conninfo: str, pending: int) -> int:
    """Seed the backlog up to `pending` submitted reports (as `bench.run.Bench.seed_backlog`); how many there are."""
    from sqlalchemy import text

    from app import audit, database, organisations, submissions
    from app.geometry import WGS84
    from app.ledger.input import checked_polygon
    from app.submissions.results import ReleaseReport
    from bench import generate, run

    with database.session() as session:
        wanted = pending - session.execute(text("SELECT count(*) FROM submissions WHERE status = 'submitted'")
                                           ).scalar_one()
        operators: dict[str, uuid.UUID] = {}
        for iso3, *_ in generate.STATES:
            known = {o.name: o.id for o in organisations.list_register(session, iso3, full=False).organisations}
            for name in generate.ORGANISATIONS:
                if name not in known:
                    known[name] = organisations.create(session, iso3, organisations.OrganisationIn(name=name),
                                                       audit.Actor(name="bench")).id
            operators[iso3] = known[generate.ORGANISATIONS[0]]
    bench = run.Bench(argparse.Namespace(repeats=1))
    bench.conninfo, bench.base = conninfo, ""
    for _, (iso3, url, body) in zip(range(max(wanted, 0)), bench.event_queue, strict=False):
        report = ReleaseReport.model_validate(  # an operator reports for its own
            {k: v for k, v in body.items() if k != "organisation"})
        hazard_id = uuid.UUID(url.split("/")[-2])
        submissions.submit(iso3, submissions.release_report(hazard_id, report, checked_polygon(report.geometry, WGS84)),
                           audit.Actor(name=f"bench operator {iso3}"), organisation_id=operators[iso3], direct=False)
    with database.session() as session:
        count: int = session.execute(text("SELECT count(*) FROM submissions WHERE status = 'submitted'")).scalar_one()
    return count


def main(argv: list[str]) -> int:
    from sqlalchemy import event

    from app import database, migrate
    from app.committee import summaries
    from app.embedded import EmbeddedCluster
    from bench import generate
    from bench.run import DATA_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("state", nargs="?", default="KHM")
    parser.add_argument("--data-dir", default=str(DATA_DIR), help="the bench database's cluster (bench/work/data)")
    parser.add_argument("--pending", type=int, default=0, help="seed the backlog to this many pending submissions")
    args = parser.parse_args(argv)
    iso3 = args.state
    cluster = EmbeddedCluster(Path(args.data_dir), fsync=False)
    cluster.start()
    migrate.upgrade(cluster.url)
    engine = database.configure(cluster.url)
    spent: dict[str, list] = defaultdict(lambda: [0.0, 0, None, None])

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        conn.info["t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        entry = spent[" ".join(statement.split())[:100]]
        entry[0] += time.perf_counter() - conn.info.pop("t", time.perf_counter())
        entry[1] += 1
        entry[2], entry[3] = statement, parameters

    try:
        if args.pending:
            print(f"backlog: {seed_backlog(generate.conninfo_of(cluster.url), args.pending)} submissions pending")
        for label, call in (("state summary " + iso3, lambda s: summaries.state_summary(s, iso3, date.today())),
                            ("overview", lambda s: summaries.overview(s, date.today()))):
            spent.clear()
            with database.session() as session:
                call(session)  # warm
                spent.clear()
                t = time.perf_counter()
                for _ in range(5):
                    call(session)
                total = (time.perf_counter() - t) / 5
            print(f"\n{label}: {total * 1000:.1f} ms per call; SQL per call:")
            for statement, (seconds, count, _, _) in sorted(spent.items(), key=lambda kv: -kv[1][0])[:8]:
                print(f"  {seconds * 1000 / 5:7.1f} ms  x{count // 5}  {statement}")
            slowest = max(spent.values(), key=lambda v: v[0])
            with engine.connect() as conn:
                conn.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + slowest[2],
                                            slowest[3]).scalars().all()
            print("  EXPLAIN ANALYZE of the slowest:")
            for line in plan[:45]:
                print("   ", line)
    finally:
        database.dispose()
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
