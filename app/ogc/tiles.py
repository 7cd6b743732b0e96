"""Mapbox vector tiles of the OGC collections (WebMercatorQuad), made by PostGIS with ST_AsMVT.

A tile honours the same filters as the items of its collection (state, classification, status,
kind, datetime, bbox, geometry=baseline, include_voided). The layer in the tile is named after the
collection; its attributes are the feature's properties in types MVT can carry (ids and dates as
text, contamination as a comma-separated list). Geometry is clipped to the tile with a buffer of 64
units of a 4096 extent.
"""
from __future__ import annotations

from sqlalchemy import Engine, text

from app import database
from app.layers import sql_tile_attributes
from app.ogc.collections import source_and_conditions
from app.ogc.params import ItemsQuery, bad_parameter

MVT = "application/vnd.mapbox-vector-tile"
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 24


def read_tile_address(z: str, x: str, y: str) -> tuple[int, int, int]:
    """z/x/y of a WebMercatorQuad tile, or a 400 saying which is wrong."""
    values = {}
    for name, value in (("z", z), ("x", x), ("y", y)):
        try:
            values[name] = int(value)
        except ValueError as exc:
            raise bad_parameter(name, f"'{value}' is not an integer") from exc
    zoom = values["z"]
    if not 0 <= zoom <= MAX_ZOOM:
        raise bad_parameter("z", f"zoom {zoom} is outside WebMercatorQuad's 0..{MAX_ZOOM}")
    size = 2 ** zoom
    for name in ("x", "y"):
        if not 0 <= values[name] < size:
            raise bad_parameter(name, f"{values[name]} is outside 0..{size - 1} at zoom {zoom}")
    return zoom, values["x"], values["y"]


def tile_sql(query: ItemsQuery) -> tuple[str, dict]:
    params: dict = {}
    source, where = source_and_conditions(query, params)
    geom = query.collection.tile_geometry(query)
    conditions = [*where, f"{geom} && t.env4326", f"NOT ST_IsEmpty({geom})"]
    sql = f"""
        WITH t AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                          ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326) AS env4326),
        layer AS (
            SELECT ST_AsMVTGeom(ST_Transform({geom}, 3857), t.env, {EXTENT}, {BUFFER}, true) AS geom,
                   {sql_tile_attributes(query.collection.properties)}
            FROM {source}, t
            WHERE {' AND '.join(conditions)}
        )
        SELECT ST_AsMVT(layer, :layer, {EXTENT}, 'geom') FROM layer WHERE layer.geom IS NOT NULL
    """
    params["layer"] = query.collection.id
    return sql, params


def tile(query: ItemsQuery, z: int, x: int, y: int, engine: Engine | None = None) -> bytes:
    """The tile's bytes; empty when no feature falls in it (read through `engine`, default the primary's)."""
    sql, params = tile_sql(query)
    with (engine or database.get_engine()).connect() as conn:
        data = conn.execute(text(sql), {**params, "z": z, "x": x, "y": y}).scalar()
    return bytes(data) if data else b""
