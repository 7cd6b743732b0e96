"""CRS as the OGC API names them (OGC API - Features Part 2), the one place that says which CRS the
collections offer, and the SQL that puts a 4326 geometry into an output CRS and its axis order.

The rules:
- Every collection lists exactly the CRS it accepts (`COLLECTION_CRS`): CRS84 (the default and the
  storage CRS), EPSG:4326 (lat/lon), EPSG:3857 (web maps), and for each State of the reference
  (`STATE_CRS`) the WGS 84 UTM zones its territory spans and the national grids its surveys use.
  A `crs`, `bbox-crs` or `filter-crs` that is not in the list is a 400 naming the list; the same list
  is what GDAL and QGIS offer their users.
- Projected output is plain GeoJSON geometry (no `crs` member: RFC 7946 dropped it); the output CRS is
  told by the `Content-Crs` header.
- An EPSG CRS is in its own axis order (EPSG:4326 is lat/lon); CRS84 is lon/lat.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
CRS84_SPELLINGS = {"ogc:crs84", "crs84", CRS84_URI.lower(), "urn:ogc:def:crs:ogc:1.3:crs84",
                   "https://www.opengis.net/def/crs/ogc/1.3/crs84"}

# The WGS 84 UTM zones (326zz north, 327zz south) each Article 5 State's territory spans, and the
# national grids its mine action surveys use.
STATE_CRS: dict[str, tuple[int, ...]] = {
    "AFG": (32641, 32642, 32643),
    "AGO": (32732, 32733, 32734, 32735),
    "ARG": (32720, 32721),  # the Malvinas/Falkland Islands
    "BIH": (32633, 32634, 3908, 3909),  # MGI 1901 / Balkans zones 6 and 7
    "COD": (32633, 32634, 32635, 32636, 32733, 32734, 32735, 32736),
    "COL": (32617, 32618, 32619, 32717, 32718, 32719, 3116),  # MAGNA-SIRGAS / Colombia Bogota zone
    "CYP": (32636,),
    "ECU": (32617, 32717, 32718),
    "ERI": (32637, 32638),
    "ETH": (32636, 32637, 32638),
    "HRV": (32633, 32634, 3765),  # HTRS96 / Croatia TM
    "IRQ": (32637, 32638, 32639),
    "KHM": (32647, 32648, 3148),  # Indian 1960 / UTM zone 48N
    "LKA": (32644, 5235),  # SLD99 / Sri Lanka Grid 1999
    "NER": (32631, 32632, 32633),
    "OMN": (32639, 32640),
    "PER": (32717, 32718, 32719),
    "PSE": (32636, 28191, 2039),  # Palestine Grid, Israeli TM Grid
    "SDN": (32634, 32635, 32636, 32637),
    "SEN": (32628,),
    "SOM": (32638, 32639, 32738),
    "SRB": (32634,),
    "SSD": (32634, 32635, 32636),
    "TCD": (32633, 32634, 32635),
    "THA": (32647, 32648, 24047, 24048),  # Indian 1975 / UTM zones 47N and 48N
    "TJK": (32642, 32643),
    "TUR": (32635, 32636, 32637, 32638),
    "UKR": (32634, 32635, 32636, 32637),
    "YEM": (32638, 32639),
    "ZWE": (32735, 32736),
}
WORLD_CRS = (4326, 3857)  # besides CRS84: lat/lon and web maps


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


def _epsg(code: int) -> OutputCrs:
    axes = CRS.from_epsg(code).axis_info
    return OutputCrs(code, EPSG_URI.format(code=code),
                     bool(axes) and axes[0].direction.lower() in ("north", "south"))


def _collection_crs() -> dict[int, OutputCrs]:
    national = sorted({code for codes in STATE_CRS.values() for code in codes} - set(WORLD_CRS))
    return {code: _epsg(code) for code in (*WORLD_CRS, *national)}


# The EPSG CRS every collection accepts (CRS84 besides), by EPSG code.
COLLECTION_CRS: dict[int, OutputCrs] = _collection_crs()
LISTED_CRS = [CRS84_URI, *(crs.uri for crs in COLLECTION_CRS.values())]  # a collection's `crs` list


def listed_crs(code: int) -> OutputCrs | None:
    """The listed CRS of an EPSG code, or None when the collections do not offer it."""
    return COLLECTION_CRS.get(code)


def defined_at(xs: Sequence[float], ys: Sequence[float], srid: int) -> bool:
    """Whether every point (x/y as PostGIS orders them: easting or longitude first) lies where the CRS
    is defined, so that PostGIS can transform it to 4326 (outside, its transform fails)."""
    try:
        if srid == 4326:
            lons, lats = list(xs), list(ys)
        else:
            lons, lats = Transformer.from_crs(srid, 4326, always_xy=True).transform(list(xs), list(ys), errcheck=True)
    except ProjError:
        return False
    return all(math.isfinite(v) and -180 <= v <= 180 for v in lons) and \
        all(math.isfinite(v) and -90 <= v <= 90 for v in lats)


def sql_output_geometry(expr: str, crs: OutputCrs) -> str:
    """A 4326 geometry expression in the output CRS and its axis order."""
    out = expr if crs.srid == 4326 else f"ST_Transform({expr}, {int(crs.srid)})"
    return f"ST_FlipCoordinates({out})" if crs.north_first else out


def sql_geojson_geometry(expr: str, crs: OutputCrs) -> str:
    """GeoJSON of a 4326 geometry in the output CRS: coordinates only, no `crs` member (options 0)."""
    return f"ST_AsGeoJSON({sql_output_geometry(expr, crs)}, {crs.digits}, 0)::json"


def sql_geojson(expr: str, crs: OutputCrs) -> str:
    """GeoJSON of a geometry, or JSON null when it is missing or empty."""
    return f"CASE WHEN {expr} IS NULL OR ST_IsEmpty({expr}) THEN NULL ELSE {sql_geojson_geometry(expr, crs)} END"


def sql_input_geometry(expr: str, crs: OutputCrs) -> str:
    """A geometry expression given in `crs` (its axis order, SRID unset or set) as 4326 lon/lat."""
    flipped = f"ST_FlipCoordinates({expr})" if crs.north_first else expr
    placed = f"ST_SetSRID({flipped}, {int(crs.srid)})"
    return placed if crs.srid == 4326 else f"ST_Transform({placed}, 4326)"
