"""Mapbox vector tiles of the OGC collections, made by PostGIS with ST_AsMVT, in the tile matrix sets of
`app.ogc.tilesets` (WebMercatorQuad, WorldCRS84Quad).

A tile honours the same filters as the items of its collection (state, classification, status,
kind, datetime, bbox, geometry=baseline, include_voided). The layer in the tile is named after the
collection; its attributes are the feature's properties in types MVT can carry (ids and dates as
text, contamination as a comma-separated list). Geometry is clipped to the tile with a buffer of 64
units of a 4096 extent. A polygon that would be drawn smaller than POINT_BELOW units across (under
a pixel or two at the zoom) is drawn as a point inside it (app/places: no tile over contaminated land
is empty at the world's zoom levels).

The items' CQL2 `filter` (with `filter-lang`, `filter-crs`) and the queryables' parameters apply to a tile
too, with the same meaning; they are in the tile's URL and so in its ETag (app/http_cache.py).
"""
from __future__ import annotations

from sqlalchemy import Engine, text

from app import database
from app.layers import sql_tile_attributes
from app.ogc.collections import source_and_conditions
from app.ogc.params import ItemsQuery, bad_parameter
from app.ogc.tilesets import MAX_ZOOM, TileMatrixSet

EXTENT = 4096
BUFFER = 64
POINT_BELOW = 16  # tile units (of EXTENT): 1 px of a 256 px tile


def read_tile_address(z: str, x: str, y: str, tms: TileMatrixSet) -> tuple[int, int, int]:
    """z/x/y (level, column, row) of a tile of `tms`, or a 400 saying which is wrong."""
    values = {}
    for name, value in (("z", z), ("x", x), ("y", y)):
        try:
            values[name] = int(value)
        except ValueError as exc:
            raise bad_parameter(name, f"'{value}' is not an integer") from exc
    zoom = values["z"]
    if not 0 <= zoom <= MAX_ZOOM:
        raise bad_parameter("z", f"zoom {zoom} is outside {tms.id}'s 0..{MAX_ZOOM}")
    for name, size in (("x", tms.columns(zoom)), ("y", tms.rows(zoom))):
        if not 0 <= values[name] < size:
            raise bad_parameter(name, f"{values[name]} is outside 0..{size - 1} at zoom {zoom}")
    return zoom, values["x"], values["y"]


def tile_sql(query: ItemsQuery, tms: TileMatrixSet) -> tuple[str, dict]:
    """The tile's SQL; its envelope is bound as :x1, :y1, :x2, :y2 and its margin as :margin (CRS units)."""
    params: dict = {}
    source, where = source_and_conditions(query, params)
    params.update(query.condition_params)  # the filter and the queryables' parameters (app.ogc.filters)
    geom = query.collection.tile_geometry(query)
    conditions = [*where, *query.conditions, f"{geom} && t.env4326", f"NOT ST_IsEmpty({geom})"]
    srid = int(tms.srid)
    world = ", ".join(repr(float(v)) for v in tms.bounds)
    sql = f"""
        WITH t AS (SELECT ST_MakeEnvelope(:x1, :y1, :x2, :y2, {srid}) AS env,
                          -- the margin kept within the world: past its bounds it would wrap round
                          ST_Transform(ST_ClipByBox2D(ST_MakeEnvelope(:x1 - :margin, :y1 - :margin, :x2 + :margin,
                                                                      :y2 + :margin, {srid}),
                                                      Box2D(ST_MakeEnvelope({world}, {srid}))), 4326) AS env4326,
                          (:x2 - :x1) * {POINT_BELOW / EXTENT} AS point_below),
        layer AS (
            SELECT ST_AsMVTGeom(CASE WHEN ST_XMax(m.g) - ST_XMin(m.g) < t.point_below
                                      AND ST_YMax(m.g) - ST_YMin(m.g) < t.point_below
                                     THEN ST_PointOnSurface(m.g) ELSE m.g END,
                                t.env, {EXTENT}, {BUFFER}, true) AS geom,
                   {sql_tile_attributes(query.collection.properties)}
            FROM {source} CROSS JOIN t CROSS JOIN LATERAL (SELECT ST_Transform({geom}, {srid}) AS g) m
            WHERE {' AND '.join(conditions)}
        )
        SELECT ST_AsMVT(layer, :layer, {EXTENT}, 'geom') FROM layer WHERE layer.geom IS NOT NULL
    """
    params["layer"] = query.collection.id
    return sql, params


def tile(query: ItemsQuery, tms: TileMatrixSet, z: int, x: int, y: int, engine: Engine | None = None) -> bytes:
    """The tile's bytes; empty when no feature falls in it (read through `engine`, default the primary's)."""
    sql, params = tile_sql(query, tms)
    x1, y1, x2, y2 = tms.envelope(z, x, y)
    margin = tms.tile_span(z) * BUFFER / EXTENT
    with (engine or database.get_engine()).connect() as conn:
        data = conn.execute(text(sql), {**params, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "margin": margin}).scalar()
    return bytes(data) if data else b""
