"""Profile the file import in-process (pyinstrument), against the benchmark's database.

    PYTHONPATH=bench/work/prof-lib .venv/bin/python -m bench.profile_import bench/work/import-20000.gpkg

The service runs the import in a worker thread, which a whole-process profile does not see; this
calls `app.files.imports.import_hazards` directly on the bench cluster (bench/work/data), prints the
profile and the time spent in each SQL statement, and rolls nothing back: the imported hazards are
removed again at the end.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    from pyinstrument import Profiler
    from sqlalchemy import text

    from app import database
    from app.audit import Actor
    from app.embedded import EmbeddedCluster
    from app.files import imports as field_files
    from bench import generate
    from bench.run import DATA_DIR, Bench
    from bench.statement_timer import time_statements

    path = Path(argv[0])
    cluster = EmbeddedCluster(DATA_DIR, fsync=False)
    cluster.start()
    engine = database.configure(cluster.url)
    spent = time_statements(engine, width=90)

    try:
        with database.session() as session:
            Bench._forget_import(session.connection().connection.driver_connection)
            session.commit()
            profiler = Profiler(interval=0.005)
            t = time.perf_counter()
            profiler.start()
            result = field_files.import_hazards(session, generate.IMPORT_STATE, path,
                                                field_files.ImportOptions(source=path.name), Actor(name="profile"))
            profiler.stop()
            total = time.perf_counter() - t
            print(f"imported {result['created']} hazards in {total:.1f} s")
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            print("SQL statements (seconds):")
            for statement, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:8]:
                print(f"  {seconds:7.2f}  {statement}")
        with database.session() as session:
            Bench._forget_import(session.connection().connection.driver_connection)
            session.execute(text("SELECT 1"))
            session.commit()
    finally:
        database.dispose()
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
