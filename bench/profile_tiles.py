"""Tile latency of one or more versions of the service beside tipg and the tile's bare SQL, in one run.

    python -m bench.profile_tiles --data-dir bench/work/data [--code old=/path/to/checkout] [--rounds 5] [--zooms 0-14]

On a cluster loaded by `python -m bench.generate` (bench/work/data by default): starts `landrelease serve`
from each `--code` checkout (default: this one) on the same database with an admin key, tipg when
bench/work/tipg-venv exists (the view `bench.tipg_hazards` of bench/run.py), then GETs the tiles
bench/run.py measures (the tile under five hazard centres at every zoom 0-14, or `--zooms`) round after round, the
versions taking turns, so every figure is taken on the same loaded machine. The floor is the
service's own tile SQL (`app.ogc.tiles.tile_sql`) and a bare `ST_AsMVT` of the remaining geometry
with the same attributes, run over one open psycopg connection. Prints p50 and p95 per version (ms,
medians over the rounds) and their ratios.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.embedded import EmbeddedCluster  # noqa: E402
from app.layers import HAZARD_PROPERTIES, sql_tile_attributes  # noqa: E402
from app.ogc import tilesets  # noqa: E402
from app.ogc.collections import COLLECTIONS  # noqa: E402
from app.ogc.params import read_items_query  # noqa: E402
from app.ogc.tiles import BUFFER, EXTENT, tile_sql  # noqa: E402
from bench import generate  # noqa: E402
from bench.peers import VIEW as TIPG_LAYER  # noqa: E402
from bench.run import percentile, stop, wait_http  # noqa: E402

WORK = ROOT / "bench" / "work"
BARE = f"""
    SELECT ST_AsMVT(t, 'hazardous_areas', {EXTENT}, 'geom') FROM (
        SELECT ST_AsMVTGeom(ST_Transform(f.remaining_geom, 3857), ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s, 3857),
                            {EXTENT}, {BUFFER}, true) AS geom, {sql_tile_attributes(HAZARD_PROPERTIES)}
        FROM hazardous_areas f
        WHERE f.voided_at IS NULL AND f.remaining_geom && ST_Transform(ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s,
                                                                                       3857), 4326)) t
    WHERE t.geom IS NOT NULL"""


def addresses(conninfo: str, zooms: range) -> list[tuple[int, int, int]]:
    """bench/run.py's tiles: under five hazard centres, at each of `zooms`."""
    with psycopg.connect(conninfo) as conn:
        centres = conn.execute("SELECT cx, cy FROM bench.hazard_plan ORDER BY md5(external_id) LIMIT 5").fetchall()
    out = []
    for z in zooms:
        for lon, lat in centres:
            n = 2 ** z
            out.append((z, int((lon + 180) / 360 * n),
                        int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)))
    return out


def serve(code: Path, port: int, url: str, log: Path) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(code),
           "DATABASE_URL": url, "LANDRELEASE_LOG_LEVEL": "warning", "LANDRELEASE_PUBLIC_READ": "false"}
    return subprocess.Popen([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", "serve",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=code, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def admin_key(code: Path, url: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(code), "DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", "keys",
                          "create", "--role", "admin", "--name", "profile-tiles"], cwd=code, env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(WORK / "data"))
    parser.add_argument("--code", action="append", default=[], help="name=checkout (repeatable; default: this one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--zooms", default="0-14", help="first-last zoom (bench/run.py's figure 3: 0-14)")
    args = parser.parse_args(argv)
    codes = [tuple(c.split("=", 1)) for c in args.code] or [("this", str(ROOT))]
    cluster = EmbeddedCluster(Path(args.data_dir), fsync=False)
    cluster.start()
    conninfo = generate.conninfo_of(cluster.url)
    first, _, last = args.zooms.partition("-")
    tiles = addresses(conninfo, range(int(first), int(last or first) + 1))
    processes: list[subprocess.Popen] = []
    try:
        clients: dict[str, tuple[httpx.Client, str]] = {}
        for i, (name, code) in enumerate(codes):
            port = 18800 + i
            processes.append(serve(Path(code), port, cluster.url, WORK / f"profile-tiles-{name}.log"))
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/health", processes[-1])
            key = admin_key(Path(code), cluster.url)
            clients[name] = (httpx.Client(headers={"Authorization": f"Bearer {key}", "Accept-Encoding": "identity"},
                                          timeout=120),
                             f"{base}/collections/hazardous_areas/tiles/WebMercatorQuad")
        tipg = WORK / "tipg-venv" / "bin" / "python"
        if tipg.exists():
            with psycopg.connect(conninfo, autocommit=True) as conn:  # bench/run.py's view
                conn.execute(f"""
                    CREATE OR REPLACE VIEW {TIPG_LAYER} AS
                    SELECT h.id, h.state_iso3 AS state, h.external_id, h.name,
                           CASE WHEN h.reclassified_on IS NOT NULL THEN 'CHA' ELSE h.classification END
                               AS classification,
                           h.contamination, h.region, h.recorded_on, h.parent_id, h.baseline_area_m2,
                           h.remaining_area_m2, h.status, h.released_on, h.remaining_geom AS geom
                    FROM hazardous_areas h WHERE h.voided_at IS NULL""")
            socket_dir = str(cluster.socket_dir).replace("/", "%2F")
            env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@{socket_dir}:5432/landrelease",
                   "TIPG_DB_SCHEMAS": '["bench"]'}
            processes.append(subprocess.Popen([str(tipg), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
                                               "--port", "18799", "--log-level", "warning"], env=env, cwd=WORK,
                                              stdout=(WORK / "profile-tiles-tipg.log").open("w"),
                                              stderr=subprocess.STDOUT))
            wait_http("http://127.0.0.1:18799/healthz", processes[-1])
            clients["tipg"] = (httpx.Client(timeout=120),
                               f"http://127.0.0.1:18799/collections/{TIPG_LAYER}/tiles/WebMercatorQuad")

        tms = tilesets.TILE_MATRIX_SETS["WebMercatorQuad"]
        with psycopg.connect(conninfo) as conn:  # the floor: the same SQL over an open connection, no HTTP
            from sqlalchemy import create_engine
            engine = create_engine(cluster.url)
            with engine.connect() as sa:
                query = read_items_query(COLLECTIONS["hazardous_areas"], {}, sa, paging=False)
            sql, params = tile_sql(query, tms)
            ours_sql = sql.replace(":x1", "%(x1)s").replace(":y1", "%(y1)s").replace(":x2", "%(x2)s") \
                .replace(":y2", "%(y2)s").replace(":margin", "%(margin)s").replace(":layer", "%(layer)s")

            def floor(statement: str, z: int, x: int, y: int) -> float:
                x1, y1, x2, y2 = tms.envelope(z, x, y)
                values = {**params, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                          "margin": tms.tile_span(z) * BUFFER / EXTENT}
                t = time.perf_counter()
                conn.execute(statement, values).fetchone()
                return (time.perf_counter() - t) * 1000

            figures: dict[str, tuple[list[float], list[float]]] = {}
            for name in [*clients, "sql: the service's tile SQL", "sql: bare ST_AsMVT"]:
                figures[name] = ([], [])
            for (client, base) in clients.values():  # warm up
                for z, x, y in tiles:
                    client.get(f"{base}/{z}/{x}/{y}").raise_for_status()
            for _ in range(args.rounds):
                for name, (client, base) in clients.items():
                    times = []
                    for z, x, y in tiles:
                        t = time.perf_counter()
                        r = client.get(f"{base}/{z}/{x}/{y}")
                        r.read()
                        times.append((time.perf_counter() - t) * 1000)
                        r.raise_for_status()
                    figures[name][0].append(percentile(times, 50))
                    figures[name][1].append(percentile(times, 95))
                for name, statement in (("sql: the service's tile SQL", ours_sql), ("sql: bare ST_AsMVT", BARE)):
                    times = [floor(statement, z, x, y) for z, x, y in tiles]
                    figures[name][0].append(percentile(times, 50))
                    figures[name][1].append(percentile(times, 95))
        anchor = "tipg" if "tipg" in figures else None
        print(f"{len(tiles)} tiles, {args.rounds} rounds; ms, median of the rounds' p50 / p95 (min-max)")
        for name, (p50, p95) in figures.items():
            line = (f"{name:32s} p50 {statistics.median(p50):6.1f} ({min(p50):.1f}-{max(p50):.1f})  "
                    f"p95 {statistics.median(p95):6.1f} ({min(p95):.1f}-{max(p95):.1f})")
            for other in (anchor, "sql: bare ST_AsMVT"):
                if other and other != name:
                    line += (f"  {statistics.median(p50) / statistics.median(figures[other][0]):.2f}x / "
                             f"{statistics.median(p95) / statistics.median(figures[other][1]):.2f}x {other}")
            print(line)
    finally:
        for process in processes:
            stop(process)
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
