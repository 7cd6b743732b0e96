"""Mapbox vector tiles of the OGC collections, made by PostGIS with ST_AsMVT, in the tile matrix sets of
`app.ogc.tilesets` (WebMercatorQuad, WorldCRS84Quad).

A tile honours the same filters as the items of its collection (state, classification, status,
kind, datetime, bbox, geometry=baseline, include_voided). The layer in the tile is named after the
collection; its attributes are the feature's properties in types MVT can carry (ids and dates as
text, contamination as a comma-separated list). Geometry is clipped to the tile with a buffer of 64
units of a 4096 extent. A polygon that would be drawn smaller than POINT_BELOW units across (under
a pixel at the zoom) is drawn as a point inside it (app/places: no tile over contaminated land is
empty at the world's zoom levels), and the features under one pixel are one point: the largest's,
with its attributes and `point_count`, how many features it stands for (1 for a polygon; every
feature has it). A world tile of 200,000 hazards is a few hundred points, not 200,000.

The items' CQL2 `filter` (with `filter-lang`, `filter-crs`) and the queryables' parameters apply to a tile
too, with the same meaning; they are in the tile's URL and so in its ETag (app/http_cache.py).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from app.layers import POINT_COUNT, sql_tile_attributes
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

    Two passes over the collection's source, in one statement (one snapshot). The first reads, for every
    feature in the tile, its id and the box PostGIS keeps in the geometry's header (`postgis_getbbox`: the
    geometry itself is not read), projected to the tile's CRS (`TileMatrixSet.sql_project`: both sets map
    longitude and latitude to x and y separately and monotonically, so it is the box of the projected
    geometry). A feature whose box is under POINT_BELOW units both ways is a point, keyed by the pixel its
    box's centre falls in; the largest box of each pixel (then the smallest id) stands for the pixel, with
    the pixel's count. The second reads the drawn features again by id: their geometry (a point is the
    ST_PointOnSurface of the 4326 geometry, transformed) and their attributes, for those features only (at
    zoom 0, a few hundred of 200,000 hazards). Each sub-query ends in `OFFSET 0`, else PostgreSQL inlines
    its expressions into every use. The envelope's condition is written with the bound values (not read
    from the CTE) so that the planner estimates how much of the layer the tile covers: a sequential scan
    for the world, the spatial index for a street.
    """
    params: dict = {}
    source, where = source_and_conditions(query, params)
    params.update(query.condition_params)  # the filter and the queryables' parameters (app.ogc.filters)
    geom = query.collection.tile_geometry(query)
    srid = int(tms.srid)
    world = ", ".join(repr(float(v)) for v in tms.bounds)
    # the margin kept within the world: past its bounds it would wrap round
    env4326 = (f"ST_Transform(ST_ClipByBox2D(ST_MakeEnvelope(:x1 - :margin, :y1 - :margin, :x2 + :margin, "
               f":y2 + :margin, {srid}), Box2D(ST_MakeEnvelope({world}, {srid}))), 4326)")
    # (an empty geometry is in no box: && is false for it, so it is never drawn)
    conditions = [*where, *query.conditions, f"{geom} && {env4326}"]
    x1, y1 = tms.sql_project("ST_XMin(b.box)", "ST_YMin(b.box)")
    x2, y2 = tms.sql_project("ST_XMax(b.box)", "ST_YMax(b.box)")
    point = "p.x2 - p.x1 < t.pixel AND p.y2 - p.y1 < t.pixel"
    # a pixel's column and row in one number (at zoom 14 the world is 2^22 pixels across)
    cell = f"floor((p.x1 + p.x2) / 2 / t.pixel)::bigint * {1 << 32} + floor((p.y1 + p.y2) / 2 / t.pixel)::bigint"
    key = "c.cell, c.whole"
    sql = f"""
        WITH t AS (SELECT ST_MakeEnvelope(:x1, :y1, :x2, :y2, {srid}) AS env,
                          (:x2 - :x1) * {POINT_BELOW / EXTENT} AS pixel)
        SELECT ST_AsMVT(layer, :layer, {EXTENT}, 'geom'){f", {beside}" if beside else ""} FROM (
            SELECT ST_AsMVTGeom(CASE WHEN d.point THEN ST_Transform(ST_PointOnSurface({geom}), {srid})
                                     ELSE ST_Transform({geom}, {srid}) END,
                                t.env, {EXTENT}, {BUFFER}, true) AS geom,
                   {sql_tile_attributes(query.collection.properties)}, d.{POINT_COUNT}
            FROM (
                SELECT DISTINCT ON ({key}) c.id, c.point,
                       count(*) OVER (PARTITION BY {key} ORDER BY c.size DESC, c.id
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS {POINT_COUNT}
                FROM (SELECT p.id, {point} AS point, CASE WHEN {point} THEN {cell} END AS cell,
                             CASE WHEN {point} THEN NULL ELSE p.id END AS whole, (p.x2 - p.x1) * (p.y2 - p.y1) AS size
                      FROM (SELECT b.id, {x1} AS x1, {y1} AS y1, {x2} AS x2, {y2} AS y2
                            FROM (SELECT f.id, postgis_getbbox({geom}) AS box FROM {source}
                                  WHERE {' AND '.join(conditions)} OFFSET 0) b
                            OFFSET 0) p CROSS JOIN t) c
                ORDER BY {key}, c.size DESC, c.id
            ) d CROSS JOIN LATERAL (SELECT f.* FROM {source} WHERE f.id = d.id LIMIT 1) f CROSS JOIN t
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
