"""OGC API - Tiles metadata: the tile matrix sets the vector tiles are cut in, each collection's tileset
list and tileset documents, and TileJSON.

- Two tile matrix sets (OGC Two Dimensional Tile Matrix Set 2.0, their registered definitions):
  `WebMercatorQuad` (EPSG:3857, one tile at level 0; what web maps and QGIS use) and `WorldCRS84Quad`
  (CRS84 degrees, two tiles at level 0; GDAL's OGCAPI driver prefers it, and places the collection's
  CRS84 extent in its tile grid without reprojection). Levels 0..MAX_ZOOM in both.
- A collection links its tileset list with `rel=http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector`;
  each tileset document links its tile matrix set (`.../tiling-scheme`) and its tiles as a URI template
  (`rel=item`, `{tileMatrix}/{tileCol}/{tileRow}`: the column before the row, as the tile path has them),
  and gives `tileMatrixSetLimits`: at each level the columns and rows the collection's extent (for the
  caller's key) covers, so clients ask only for tiles that may hold features.
- TileJSON 3.0 for WebMercatorQuad (`.../tiles/WebMercatorQuad/tilejson.json`): the XYZ template, the
  zooms, the bounds and the layer with its fields (the declared tile properties, `app.layers`).
- A tile's envelope (in the set's CRS) is computed here; `app.ogc.tiles` makes the tile in it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.layers import POINT_COUNT, Property
from app.ogc.crs import CRS84_URI, EPSG_URI
from app.problems import Problem

if TYPE_CHECKING:
    from app.ogc.collections import Collection

MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 24
TILE_SIZE = 256  # the pixels a tile matrix's cell size and scale denominator refer to
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
]
_MERCATOR_HALF = 20037508.3427892  # half the width of the Web Mercator world, metres
_MAX_MERCATOR_LAT = 85.0511287798066
_MVT_FIELD_TYPES = {"number": "Number", "integer": "Number", "boolean": "Boolean"}  # else String
_JSON_TYPES = {"number": "number", "integer": "integer", "boolean": "boolean"}  # else string


@dataclass(frozen=True)
class TileMatrixSet:
    """A quadtree tile matrix set: level 0 has `level0_columns` x 1 tiles covering `bounds` (its CRS)."""

    id: str
    title: str
    crs: str
    srid: int
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in the CRS, x east and y north
    level0_columns: int
    level0_scale_denominator: float

    @property
    def uri(self) -> str:
        return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{self.id}"

    def columns(self, level: int) -> int:
        return self.level0_columns * 2 ** level

    def rows(self, level: int) -> int:
        return 2 ** level

    def tile_span(self, level: int) -> float:
        """The width (and height) of one tile at `level`, in CRS units."""
        return (self.bounds[3] - self.bounds[1]) / self.rows(level)

    def envelope(self, level: int, column: int, row: int) -> tuple[float, float, float, float]:
        span = self.tile_span(level)
        x0, y1 = self.bounds[0], self.bounds[3]
        return x0 + column * span, y1 - (row + 1) * span, x0 + (column + 1) * span, y1 - row * span

    def project(self, lon: float, lat: float) -> tuple[float, float]:
        """A CRS84 position in this set's CRS (x east, y north)."""
        if self.srid == 4326:
            return lon, lat
        lat = max(-_MAX_MERCATOR_LAT, min(_MAX_MERCATOR_LAT, lat))
        return (_MERCATOR_HALF * lon / 180.0,
                _MERCATOR_HALF / math.pi * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))

    def sql_project(self, lon: str, lat: str) -> tuple[str, str]:
        """`project` in SQL: x and y of the CRS84 position (SQL expressions `lon`, `lat`) in this set's CRS."""
        if self.srid == 4326:
            return lon, lat
        lat = f"radians(LEAST(GREATEST({lat}, {-_MAX_MERCATOR_LAT}), {_MAX_MERCATOR_LAT}))"
        return (f"({_MERCATOR_HALF / 180.0!r} * ({lon}))",
                f"({_MERCATOR_HALF / math.pi!r} * ln(tan(pi() / 4 + {lat} / 2)))")

    def definition(self, base: str) -> dict[str, Any]:
        """The set as OGC Two Dimensional Tile Matrix Set 2.0 JSON."""
        x0, y1 = self.bounds[0], self.bounds[3]
        return {
            "id": self.id, "title": self.title, "uri": self.uri, "crs": self.crs,
            "orderedAxes": ["Lon", "Lat"] if self.srid == 4326 else ["E", "N"],
            "wellKnownScaleSet": f"http://www.opengis.net/def/wkss/OGC/1.0/"
                                 f"{'GoogleCRS84Quad' if self.srid == 4326 else 'GoogleMapsCompatible'}",
            "tileMatrices": [{
                "id": str(level),
                "scaleDenominator": self.level0_scale_denominator / 2 ** level,
                "cellSize": self.tile_span(level) / TILE_SIZE,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [x0, y1],
                "tileWidth": TILE_SIZE, "tileHeight": TILE_SIZE,
                "matrixWidth": self.columns(level), "matrixHeight": self.rows(level),
            } for level in range(MAX_ZOOM + 1)],
            "links": [{"rel": "self", "type": "application/json", "title": self.title,
                       "href": f"{base}/tileMatrixSets/{self.id}"}],
        }

    def limits(self, bbox: list[float]) -> list[dict[str, Any]]:
        """At each level, the columns and rows a CRS84 bbox covers (across the antimeridian: every column)."""
        lon1, lat1, lon2, lat2 = bbox
        (x1, y1), (x2, y2) = self.project(lon1, lat1), self.project(lon2, lat2)
        out = []
        for level in range(MAX_ZOOM + 1):
            span, columns, rows = self.tile_span(level), self.columns(level), self.rows(level)

            def cell(value: float, origin: float, count: int, *, span: float = span) -> int:
                return min(max(int(math.floor((value - origin) / span)), 0), count - 1)

            first_column, last_column = (cell(x1, self.bounds[0], columns), cell(x2, self.bounds[0], columns))
            if lon1 > lon2:
                first_column, last_column = 0, columns - 1
            out.append({"tileMatrix": str(level),
                        "minTileRow": cell(-y2, -self.bounds[3], rows), "maxTileRow": cell(-y1, -self.bounds[3], rows),
                        "minTileCol": first_column, "maxTileCol": last_column})
        return out


TILE_MATRIX_SETS: dict[str, TileMatrixSet] = {
    "WebMercatorQuad": TileMatrixSet(
        id="WebMercatorQuad", title="Google Maps Compatible for the World", crs=EPSG_URI.format(code=3857),
        srid=3857, bounds=(-_MERCATOR_HALF, -_MERCATOR_HALF, _MERCATOR_HALF, _MERCATOR_HALF), level0_columns=1,
        level0_scale_denominator=559082264.028717),
    "WorldCRS84Quad": TileMatrixSet(
        id="WorldCRS84Quad", title="CRS84 for the World", crs=CRS84_URI, srid=4326,
        bounds=(-180.0, -90.0, 180.0, 90.0), level0_columns=2, level0_scale_denominator=279541132.0143589),
}


def tile_matrix_set_or_404(tms_id: str) -> TileMatrixSet:
    found = TILE_MATRIX_SETS.get(tms_id)
    if found is None:
        raise Problem(404, f"No tile matrix set '{tms_id}': the sets are {', '.join(TILE_MATRIX_SETS)} "
                           "(GET /tileMatrixSets).")
    return found


def tile_matrix_sets(base: str) -> dict[str, Any]:
    return {
        "links": [{"rel": "self", "type": "application/json", "title": "The tile matrix sets",
                   "href": f"{base}/tileMatrixSets"}],
        "tileMatrixSets": [{"id": t.id, "title": t.title, "uri": t.uri, "crs": t.crs,
                            "links": [{"rel": "self", "type": "application/json", "title": t.title,
                                       "href": f"{base}/tileMatrixSets/{t.id}"}]}
                           for t in TILE_MATRIX_SETS.values()],
    }


def _tiles_href(base: str, collection: Collection) -> str:
    return f"{base}/collections/{collection.id}/tiles"


def _tileset_summary(base: str, collection: Collection, tms: TileMatrixSet) -> dict[str, Any]:
    href = f"{_tiles_href(base, collection)}/{tms.id}"
    return {
        "title": f"{collection.title}, {tms.id}",
        "dataType": "vector",
        "crs": tms.crs,
        "tileMatrixSetURI": tms.uri,
        "links": [
            {"rel": "self", "type": "application/json", "title": f"The tileset in {tms.id}", "href": href},
            {"rel": TILING_SCHEME, "type": "application/json", "title": tms.title,
             "href": f"{base}/tileMatrixSets/{tms.id}"},
        ],
    }


def tileset_list(base: str, collection: Collection) -> dict[str, Any]:
    return {
        "links": [
            {"rel": "self", "type": "application/json", "title": "The tilesets of this collection",
             "href": _tiles_href(base, collection)},
            {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{collection.id}"},
        ],
        "tilesets": [_tileset_summary(base, collection, tms) for tms in TILE_MATRIX_SETS.values()],
    }


def _properties_schema(properties: tuple[Property, ...]) -> dict[str, Any]:
    tile_properties = [p for p in properties if p.tile]
    return {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"},
        **{p.name: {"type": _JSON_TYPES.get(p.type, "string")} for p in tile_properties},
        POINT_COUNT: {"type": "integer", "minimum": 1},
    }}


def tileset(base: str, collection: Collection, tms: TileMatrixSet, bbox: list[float]) -> dict[str, Any]:
    """The tileset document; `bbox` (CRS84) is the collection's extent for the caller."""
    summary = _tileset_summary(base, collection, tms)
    href = f"{_tiles_href(base, collection)}/{tms.id}"
    links = [
        *summary["links"],
        {"rel": "item", "type": MVT, "templated": True, "title": "The tiles (Mapbox vector tiles)",
         "href": f"{href}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}"},
        {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{collection.id}"},
    ]
    if tms.id == "WebMercatorQuad":
        links.append({"rel": "alternate", "type": "application/json", "title": "TileJSON",
                      "href": f"{href}/tilejson.json"})
    return {
        **summary,
        "description": collection.description,
        "links": links,
        "boundingBox": {"lowerLeft": bbox[:2], "upperRight": bbox[2:], "crs": CRS84_URI},
        "tileMatrixSetLimits": tms.limits(bbox),
        "layers": [{
            "id": collection.id, "title": collection.title, "dataType": "vector", "featureType": collection.id,
            "geometryDimension": 2, "minTileMatrix": "0", "maxTileMatrix": str(MAX_ZOOM),
            "propertiesSchema": _properties_schema(collection.properties),
        }],
    }


def tilejson(base: str, collection: Collection, bbox: list[float], query: str = "") -> dict[str, Any]:
    """TileJSON 3.0 of the collection's WebMercatorQuad tiles; `query` (the filters) goes on the template."""
    template = f"{_tiles_href(base, collection)}/WebMercatorQuad/{{z}}/{{x}}/{{y}}" + (f"?{query}" if query else "")
    return {
        "tilejson": "3.0.0",
        "name": collection.id,
        "description": collection.title,
        "scheme": "xyz",
        "tiles": [template],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bbox,
        "vector_layers": [{
            "id": collection.id, "description": collection.title, "minzoom": 0, "maxzoom": MAX_ZOOM,
            "fields": {"id": "String", **{p.name: _MVT_FIELD_TYPES.get(p.type, "String")
                                          for p in collection.properties if p.tile}, POINT_COUNT: "Number"},
        }],
    }
