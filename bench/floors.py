"""The floors the service is measured against, beside the peers: what PostgreSQL (or GDAL) alone takes.

- The tile floor: the service's own tile statement (`app.ogc.tiles.tile`, the `ST_AsMVT` query of a
  tile with no filter) run in a plain loop on one connection, with no HTTP in between.
- The import anchor: what a GIS officer would do by hand to get the same table: `ogr2ogr` of the file
  into PostGIS, then in SQL the rows into a table with the hazards' columns and indexes
  (`CREATE TABLE ... (LIKE hazardous_areas INCLUDING ...)`) and, by UPDATE, `ST_MakeValid`, the
  service's snap to the grid (`app.geometry.sql_snap`) and the geodesic areas (`app.geometry.sql_area`).
  Plain ogr2ogr stays beside it for reference.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable

import psycopg
from sqlalchemy import create_engine, make_url

from app.geometry import sql_area, sql_snap
from app.ogc import params, tiles
from app.ogc.collections import collection_or_404
from app.ogc.tilesets import tile_matrix_set_or_404

OGR_TABLE = "bench.ogr_import"
ANCHOR_TABLE = "bench.anchor_hazards"


def timed_tiles(url: str, collection: str, addresses: Iterable[tuple[int, int, int]],
                tms_id: str = "WebMercatorQuad") -> list[tuple[float, bytes]]:
    """(milliseconds, bytes) of each tile's statement as the service runs it, without HTTP, on one connection."""
    engine = create_engine(url, pool_size=1)
    try:
        found, tms = collection_or_404(collection), tile_matrix_set_or_404(tms_id)
        with engine.connect() as conn:
            query = params.read_items_query(found, {}, conn, paging=False)
            out = []
            for z, x, y in addresses:
                t = time.perf_counter()
                data = tiles.tile(query, tms, z, x, y, conn)
                out.append(((time.perf_counter() - t) * 1000, data))
        return out
    finally:
        engine.dispose()


def tile_floor(url: str, collection: str, addresses: Iterable[tuple[int, int, int]]) -> list[float]:
    return [ms for ms, _ in timed_tiles(url, collection, addresses)]


def gdal_pg(url: str) -> str:
    """The GDAL `PG:` connection string of the service's database URL (a unix socket given as ?host=)."""
    u = make_url(url)
    host = u.host or str(u.query.get("host", ""))
    return f"PG:host={host} port={u.port or u.query.get('port', 5432)} user={u.username} dbname={u.database}"


def ogr2ogr(pg: str, path: str) -> float:
    """Seconds of plain `ogr2ogr -f PostgreSQL` of the file into `OGR_TABLE`."""
    t = time.perf_counter()
    proc = subprocess.run(["ogr2ogr", "-f", "PostgreSQL", pg, path, "-nln", OGR_TABLE, "-overwrite",
                           "-lco", "GEOMETRY_NAME=geom", "-nlt", "MULTIPOLYGON"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ogr2ogr failed: {proc.stderr[-400:]}")
    return time.perf_counter() - t


def prepare_anchor_table(conninfo: str) -> None:
    """The hand-made table: the hazards' columns, defaults, checks and indexes (not its foreign keys)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute(f"DROP TABLE IF EXISTS {ANCHOR_TABLE}")
        conn.execute(f"CREATE TABLE {ANCHOR_TABLE} (LIKE hazardous_areas INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                     "INCLUDING INDEXES)")


ANCHOR_SQL = [
    f"TRUNCATE {ANCHOR_TABLE}",
    f"""INSERT INTO {ANCHOR_TABLE} (state_iso3, external_id, classification, contamination, name, region,
            recorded_on, baseline_geom, baseline_area_m2, remaining_geom, remaining_area_m2)
        SELECT %(state)s, o.external_id, o.classification, string_to_array(o.contamination, ','), o.name, o.region,
               CAST(o.recorded_on AS date), ST_Multi(o.geom), 0, ST_Multi(o.geom), 0
        FROM {OGR_TABLE} o""",
    f"UPDATE {ANCHOR_TABLE} SET baseline_geom = {sql_snap('ST_MakeValid(baseline_geom)')}",
    f"UPDATE {ANCHOR_TABLE} SET (remaining_geom, baseline_area_m2, remaining_area_m2) = "
    f"(SELECT baseline_geom, a.m2, a.m2 FROM (SELECT {sql_area('baseline_geom')} AS m2) a)",
]


def import_anchor(conninfo: str, pg: str, path: str, state: str) -> tuple[float, float]:
    """(seconds of ogr2ogr, seconds of the SQL after it): the hand-made import into `ANCHOR_TABLE`."""
    loading = ogr2ogr(pg, path)
    t = time.perf_counter()
    with psycopg.connect(conninfo) as conn:  # one transaction, as the service's import is
        conn.execute("SET statement_timeout = 0")
        for statement in ANCHOR_SQL:
            conn.execute(statement, {"state": state} if "%(state)s" in statement else None)
        conn.commit()
    return loading, time.perf_counter() - t
