"""Mapbox vector tiles of the OGC collections (WebMercatorQuad), made by PostGIS with ST_AsMVT.

A tile honours the same filters as the items of its collection (state, classification, status,
kind, datetime, bbox, geometry=baseline, include_voided). The layer in the tile is named after the
collection; its attributes are the feature's properties in types MVT can carry (ids and dates as
text, contamination as a comma-separated list). Geometry is clipped to the tile with a buffer of 64
units of a 4096 extent. A polygon that would be drawn smaller than POINT_BELOW units across (under
a pixel or two at the zoom) is drawn as a point inside it (app/places: no tile over contaminated land
is empty at the world's zoom levels).
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
POINT_BELOW = 16  # tile units (of EXTENT): 1 px of a 256 px tile


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
                          -- the margin kept within the world: past 180 degrees it would wrap round to -180
                          ST_Transform(ST_ClipByBox2D(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}),
                                                      Box2D(ST_TileEnvelope(0, 0, 0))), 4326) AS env4326,
                          (ST_XMax(ST_TileEnvelope(:z, :x, :y)) - ST_XMin(ST_TileEnvelope(:z, :x, :y)))
                          * {POINT_BELOW / EXTENT} AS point_below),
        layer AS (
            SELECT ST_AsMVTGeom(CASE WHEN ST_XMax(m.g) - ST_XMin(m.g) < t.point_below
                                      AND ST_YMax(m.g) - ST_YMin(m.g) < t.point_below
                                     THEN ST_PointOnSurface(m.g) ELSE m.g END,
                                t.env, {EXTENT}, {BUFFER}, true) AS geom,
                   {sql_tile_attributes(query.collection.properties)}
            FROM {source} CROSS JOIN t CROSS JOIN LATERAL (SELECT ST_Transform({geom}, 3857) AS g) m
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
