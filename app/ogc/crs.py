"""CRS as the OGC API names them (OGC API - Features Part 2): CRS84, EPSG URIs, and the SQL that
puts a 4326 geometry into an output CRS and its axis order."""
from __future__ import annotations

from dataclasses import dataclass

from pyproj import CRS

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
CRS84_SPELLINGS = {"ogc:crs84", "crs84", CRS84_URI.lower(), "urn:ogc:def:crs:ogc:1.3:crs84",
                   "https://www.opengis.net/def/crs/ogc/1.3/crs84"}
# CRS listed in each collection; any other EPSG code known to PostGIS is accepted as well.
LISTED_CRS = [CRS84_URI, EPSG_URI.format(code=4326), EPSG_URI.format(code=3857)]


@dataclass(frozen=True)
class OutputCrs:
    """A CRS as the API names it: its PostGIS SRID, its URI and whether its first axis is north (lat)."""

    srid: int
    uri: str
    north_first: bool = False

    @property
    def geographic(self) -> bool:
        return self.srid == 4326

    @property
    def digits(self) -> int:
        return 8 if CRS.from_epsg(self.srid).is_geographic else 3


CRS84 = OutputCrs(4326, CRS84_URI, False)


def sql_output_geometry(expr: str, crs: OutputCrs) -> str:
    """A 4326 geometry expression in the output CRS and its axis order."""
    out = expr if crs.srid == 4326 else f"ST_Transform({expr}, {int(crs.srid)})"
    return f"ST_FlipCoordinates({out})" if crs.north_first else out


def sql_geojson(expr: str, crs: OutputCrs) -> str:
    """GeoJSON of a geometry, or JSON null when it is missing or empty."""
    return (f"CASE WHEN {expr} IS NULL OR ST_IsEmpty({expr}) THEN NULL "
            f"ELSE ST_AsGeoJSON({sql_output_geometry(expr, crs)}, {crs.digits})::json END")
