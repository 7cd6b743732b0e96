"""Where the per-State summary and the Committee overview spend their time, on the bench database.

    .venv/bin/python -m bench.profile_summary [KHM]

Runs `app.committee.summaries.state_summary` and `overview` in-process against bench/work/data (left by the
last `bench.run`), times every SQL statement, and prints EXPLAIN ANALYZE of the slowest one.
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    from sqlalchemy import event

    from app import database
    from app.committee import summaries
    from app.embedded import EmbeddedCluster
    from bench.run import DATA_DIR

    iso3 = argv[0] if argv else "KHM"
    cluster = EmbeddedCluster(DATA_DIR, fsync=False)
    cluster.start()
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
