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

from typing import Any

from sqlalchemy import Connection, text

from app.layers import sql_tile_attributes, tile_attribute_names
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


def tile_sql(query: ItemsQuery, tms: TileMatrixSet, beside: str = "") -> tuple[str, dict]:
    """The tile's SQL; its envelope is bound as :x1, :y1, :x2, :y2 and its margin as :margin (CRS units).
    `beside`: more columns for the statement to read after the tile (in the same snapshot).

    The point rule reads the feature's 4326 box transformed to the tile's CRS (both tile matrix sets map
    longitude and latitude to x and y separately and monotonically, so it is the box of the transformed
    geometry), and only a feature drawn whole is transformed whole; one drawn as a point is the
    ST_PointOnSurface of its 4326 geometry, transformed (at zooms 0-5 most features are points, and
    ST_Transform of every vertex was most of a tile's time). Each is computed once: the two sub-queries
    end in `OFFSET 0`, else PostgreSQL inlines them into every use (the point rule reads the box four
    times) and ST_AsMVTGeom into the outer `IS NOT NULL` filter; unlike MATERIALIZED CTEs they stream,
    where a low zoom's rows (every geometry with its attributes) spilled to temporary files.
    """
    params: dict = {}
    source, where = source_and_conditions(query, params)
    params.update(query.condition_params)  # the filter and the queryables' parameters (app.ogc.filters)
    geom = query.collection.tile_geometry(query)
    conditions = [*where, *query.conditions, f"{geom} && t.env4326", f"NOT ST_IsEmpty({geom})"]
    srid = int(tms.srid)
    world = ", ".join(repr(float(v)) for v in tms.bounds)
    attributes = tile_attribute_names(query.collection.properties)
    sql = f"""
        WITH t AS (SELECT ST_MakeEnvelope(:x1, :y1, :x2, :y2, {srid}) AS env,
                          -- the margin kept within the world: past its bounds it would wrap round
                          ST_Transform(ST_ClipByBox2D(ST_MakeEnvelope(:x1 - :margin, :y1 - :margin, :x2 + :margin,
                                                                      :y2 + :margin, {srid}),
                                                      Box2D(ST_MakeEnvelope({world}, {srid}))), 4326) AS env4326,
                          (:x2 - :x1) * {POINT_BELOW / EXTENT} AS point_below)
        SELECT ST_AsMVT(layer, :layer, {EXTENT}, 'geom'){f", {beside}" if beside else ""} FROM (
            SELECT ST_AsMVTGeom(CASE WHEN ST_XMax(r.box) - ST_XMin(r.box) < t.point_below
                                      AND ST_YMax(r.box) - ST_YMin(r.box) < t.point_below
                                     THEN ST_Transform(ST_PointOnSurface(r.g), {srid})
                                     ELSE ST_Transform(r.g, {srid}) END,
                                t.env, {EXTENT}, {BUFFER}, true) AS geom,
                   {', '.join(f'r.{a}' for a in attributes)}
            FROM (SELECT {geom} AS g, Box2D(ST_Transform(ST_SetSRID(Box2D({geom})::geometry, 4326), {srid})) AS box,
                         {sql_tile_attributes(query.collection.properties)}
                  FROM {source} CROSS JOIN t
                  WHERE {' AND '.join(conditions)}
                  OFFSET 0) r CROSS JOIN t
            OFFSET 0
        ) layer WHERE layer.geom IS NOT NULL
    """
    params["layer"] = query.collection.id
    return sql, params


def tile(query: ItemsQuery, tms: TileMatrixSet, z: int, x: int, y: int, conn: Connection) -> bytes:
    """The tile's bytes; empty when no feature falls in it."""
    return tile_beside("", query, tms, z, x, y, conn)[0]


def tile_beside(columns: str, query: ItemsQuery, tms: TileMatrixSet, z: int, x: int, y: int,
                conn: Connection) -> tuple[bytes, tuple[Any, ...]]:
    """The tile's bytes (empty when no feature falls in it) and `columns`, read by the tile's statement."""
    sql, params = tile_sql(query, tms, columns)
    x1, y1, x2, y2 = tms.envelope(z, x, y)
    margin = tms.tile_span(z) * BUFFER / EXTENT
    data, *others = conn.execute(text(sql), {**params, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                                             "margin": margin}).one()
    return (bytes(data) if data else b""), tuple(others)
