"""Time the file import against `ogr2ogr -f PostgreSQL` of the same file, on the benchmark's database.

    .venv/bin/python -m bench.measure_import bench/work/import-20000.gpkg [repeats] [data-dir]

Starts the bench cluster (bench/work/data, or a cluster of its own in `data-dir`, created and
migrated if new, so that it can run beside `bench.run`), then per repeat: ogr2ogr into `bench.ogr_import`, and
`app.files.imports.import_hazards` in-process with the time of each step (read, check, each SQL
statement); the imported hazards are removed again after each repeat. Prints medians and this
process's peak RSS (which includes the interpreter and libraries, about 200 MB before the import).
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:


    from app import database
    from app.audit import Actor
    from app.embedded import EmbeddedCluster
    from app.files import imports as field_files
    from bench import generate
    from bench.run import DATA_DIR, Bench
    from bench.statement_timer import time_statements

    path = Path(argv[0])
    repeats = int(argv[1]) if len(argv) > 1 else 1
    data_dir = Path(argv[2]) if len(argv) > 2 else DATA_DIR
    cluster = EmbeddedCluster(data_dir, fsync=False)
    cluster.start()
    if data_dir != DATA_DIR:
        from app import migrate

        migrate.upgrade(cluster.url)
    engine = database.configure(cluster.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench")
    spent = time_statements(engine, width=70)

    steps: dict[str, list[float]] = defaultdict(list)
    original = {name: getattr(field_files, name) for name in ("read_file", "check_rows", "record_hazards_bulk")}

    def timed(name):  # noqa: ANN001, ANN202
        def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return original[name](*args, **kwargs)
            finally:
                steps[name].append(time.perf_counter() - t)
        return run

    for name in original:
        setattr(field_files, name, timed(name))
    ogr, ours = [], []
    try:
        for _ in range(repeats):
            pg = f"PG:host={cluster.socket_dir} port=5432 user=postgres dbname=landrelease"
            t = time.perf_counter()
            subprocess.run(["ogr2ogr", "-f", "PostgreSQL", pg, str(path), "-nln", "bench.ogr_import", "-overwrite",
                            "-lco", "GEOMETRY_NAME=geom", "-nlt", "MULTIPOLYGON"], check=True, capture_output=True)
            ogr.append(time.perf_counter() - t)
            with database.session() as session:
                Bench._forget_import(session.connection().connection.driver_connection)
                session.commit()
                t = time.perf_counter()
                result = field_files.import_hazards(session, generate.IMPORT_STATE, path,
                                                    field_files.ImportOptions(source=path.name), Actor(name="measure"))
                ours.append(time.perf_counter() - t)
                assert result["created"] > 0, result
            with database.session() as session:
                Bench._forget_import(session.connection().connection.driver_connection)
                session.commit()
    finally:
        database.dispose()
        cluster.stop()
    med = statistics.median
    print(f"{path.name}: import {med(ours):.2f} s (runs {', '.join(f'{v:.2f}' for v in ours)}), "
          f"ogr2ogr {med(ogr):.2f} s (runs {', '.join(f'{v:.2f}' for v in ogr)}), "
          f"ratio {med(ours) / med(ogr):.2f}x")
    for name, values in steps.items():
        print(f"  {med(values):7.2f}  {name}")
    print("  SQL statements (seconds, summed over the runs):")
    for statement, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {seconds:7.2f}  {statement}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
