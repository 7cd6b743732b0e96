"""Geometry rules, in one place.

- Input is GeoJSON Polygon/MultiPolygon, in WGS84 longitude/latitude unless another CRS is named;
  anything else is refused with a message that says what and where.
- An edge is a straight line in the CRS the polygon was drawn in: in metres for UTM and other
  projected CRSs, in longitude/latitude for lon/lat input (as RFC 7946 reads GeoJSON). On the way in
  every edge is cut, in that CRS, into equal segments of at most `max_segment_m` on the ground (100
  m, shorter beyond 78 degrees of latitude), and only then transformed: every stored vertex lies on
  an edge as drawn, and every stored segment is short (`densified`).
- Stored geometry is a 2D MultiPolygon in EPSG:4326, snapped to a grid of about 1 mm (`GRID_DEG`);
  differences drop the parts thinner than about 2 cm (`SLIVER_DEG`), so that they leave no slivers.
  An overlay on the grid can collapse an edge to a line or a point (a vertex of a stored polygon
  within a grid cell of another of its edges): only the polygonal part of an overlay is kept, before
  it is overlaid again, measured or stored (`sql_polygonal`). Where GEOS cannot overlay on the grid at
  all (a TopologyException, "side location conflict", seen where an event's corner lies exactly on the
  hazard's edge) the overlay is made without the grid and its polygonal part snapped to it afterwards
  (`sql_grid_intersection`, `sql_grid_difference`): the same land within a grid cell; everywhere else
  the overlay on the grid, unchanged.
- Areas are geodesic on the WGS84 ellipsoid (pyproj `Geod` in Python, `geography` in PostGIS),
  in square metres, stored as whole numbers of `AREA_QUANTUM_M2` (about 1 mm2); anything below
  `MIN_AREA_M2` counts as nothing.
- The SQL fragments at the bottom are the only place the ledger's PostGIS geometry operations
  are spelled out.

Why the edges are cut. PostGIS cuts polygons as flat longitude/latitude geometry (a segment is the
straight chord between its vertices in degrees) and measures them on the ellipsoid (a segment is
the geodesic between its vertices). The two readings of one segment of length L at latitude phi are
apart by a sagitta of at most 1.1 L^2 tan(phi) / 8R (measured with pyproj from 0 to 80 degrees, the
worst direction about 35 degrees from east; R the Earth's radius), and enclose two thirds of L times
that: an error that grows with the square of the segment. A 10 km edge at 60 degrees is 3.7 m
off, some 25,000 m2; a 100 m segment at 70 degrees 0.6 mm off, 0.4 mm2 per metre of edge. Cut into
segments of at most 100 m, every stored segment reads the same to under a millimetre both ways, so
a flat cut and a geodesic measure agree, and a UTM edge stays on its line in lon/lat (a straight
UTM edge is a curve there, up to half a metre off the chord between its ends over 10 km).
Above 78 degrees the segments shorten so that the sagitta stays under `MAX_SAGITTA_M`.

Precision. A vertex moves by at most half a grid cell (0.56 mm) when snapped; an edge whose vertices
share a latitude or a longitude moves as a whole, so an area changes by at most 0.56 mm per metre
of outline from the grid, and by 0.4 mm per metre from the sagitta (at 70 degrees; less further
south): within 0.1 m2 + 2 mm x perimeter of the polygons as drawn, up to 10,000 km2, edges of 100
km and 70 degrees of latitude (tests/test_ledger_fidelity.py measures it against pyproj's Geod on
the polygons as drawn). Two polygons drawn along one line meet within a few millimetres of each
other here, well inside the 2 cm sliver rule.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

GRID_DEG = 1e-8  # about 1.1 mm at the equator
_GRID_SCALE = 1e8  # 1 / GRID_DEG, as GEOS's PrecisionModel holds it
SLIVER_DEG = 1e-7  # parts thinner than twice this (about 2 cm) are slivers
MIN_AREA_M2 = 1.0
AREA_QUANTUM_M2 = 2.0 ** -10  # every area the ledger stores is a whole number of these (about 1 mm2)
_AREAS_PER_M2 = 2 ** 10
WGS84 = CRS.from_epsg(4326)
GEOD = Geod(ellps="WGS84")


class GeometryError(ValueError):
    """A geometry that cannot be accepted; `where` is a JSON-path-like location in the input."""

    def __init__(self, message: str, where: str = "geometry") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class CRSNotKnown(ValueError):
    pass


@dataclass
class PolygonalGeometry:
    """An accepted polygonal geometry in WGS84, with what was done to it on the way in."""

    geometry: MultiPolygon
    warnings: list[str] = field(default_factory=list)
    repair: dict[str, Any] | None = None

    @property
    def area_m2(self) -> float:
        return geodesic_area_m2(self.geometry)


# --- CRS --------------------------------------------------------------------------------------
def parse_crs(value: str | None) -> CRS:
    """Accept `EPSG:32648`, `32648`, OGC URIs/URNs and CRS84; raise `CRSNotKnown` otherwise."""
    if value is None or value == "":
        return WGS84
    text = value.strip()
    lowered = text.lower()
    if lowered in {"ogc:crs84", "crs84", "http://www.opengis.net/def/crs/ogc/1.3/crs84",
                   "urn:ogc:def:crs:ogc:1.3:crs84"}:
        return WGS84
    if lowered.startswith("http://www.opengis.net/def/crs/epsg/0/"):
        text = "EPSG:" + text.rsplit("/", 1)[1]
    elif lowered.startswith("urn:ogc:def:crs:epsg:"):
        text = "EPSG:" + text.rsplit(":", 1)[1]
    elif text.isdigit():
        text = "EPSG:" + text
    if not text.upper().startswith("EPSG:") or not text[5:].isdigit():
        raise CRSNotKnown(f"'{value}' is not a CRS this service understands: use an EPSG code such as EPSG:32648")
    try:
        return CRS.from_user_input(text.upper())
    except CRSError as exc:
        raise CRSNotKnown(f"'{value}' is not a known EPSG code") from exc


def to_wgs84(crs: CRS) -> Transformer | None:
    if crs == WGS84 or crs.equals(WGS84, ignore_axis_order=True):
        return None
    return Transformer.from_crs(crs, WGS84, always_xy=True)


# --- areas --------------------------------------------------------------------------------------
def geodesic_area_m2(geometry: BaseGeometry | None) -> float:
    """Geodesic area on the WGS84 ellipsoid in square metres (of a lon/lat geometry; lines and points
    have none)."""
    if geometry is None or geometry.is_empty:
        return 0.0
    return float(geodesic_areas_m2([geometry])[0])


def quantized_m2(areas: Any) -> np.ndarray:
    """Areas rounded to a whole number of `AREA_QUANTUM_M2`: sums and differences of such numbers below
    2^43 m2 are exact in binary floating point, in any order (so baseline = remaining + released exactly)."""
    return np.round(np.asarray(areas, dtype=float) * _AREAS_PER_M2) / _AREAS_PER_M2


_RINGS_PER_THREAD = 2_000  # fewer rings than this are measured on the calling thread alone


def geodesic_areas_m2(geometries: Any, *, threads: int = 2) -> np.ndarray:
    """The geodesic areas of many lon/lat geometries at once: each polygon ring's geodesic area with
    pyproj (GeographicLib's polygon area, the algorithm PostGIS's `ST_Area(geography)` uses too),
    exteriors minus holes, whatever the rings' orientation. pyproj releases the GIL, so up to
    `threads` threads share the rings of a large batch."""
    values = np.asarray(geometries, dtype=object)
    parts, part_of = shapely.get_parts(values, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    exterior = np.ones(len(rings), dtype=bool)
    exterior[1:] = ring_of[1:] != ring_of[:-1]  # the first ring of each polygon is its exterior
    coordinates, coordinate_of = shapely.get_coordinates(rings, return_index=True)
    lon, lat = np.ascontiguousarray(coordinates[:, 0]), np.ascontiguousarray(coordinates[:, 1])
    del coordinates
    start = np.searchsorted(coordinate_of, np.arange(len(rings) + 1))
    ring_area = np.zeros(len(rings))

    def measure(first: int, last: int) -> None:
        for k in range(first, last):
            if start[k + 1] - start[k] >= 4:
                area, _ = GEOD.polygon_area_perimeter(lon[start[k]:start[k + 1]], lat[start[k]:start[k + 1]])
                ring_area[k] = abs(area)

    threads = max(1, min(threads, len(rings) // _RINGS_PER_THREAD))
    bounds = np.linspace(0, len(rings), threads + 1).astype(int)
    workers = [threading.Thread(target=measure, args=(bounds[i], bounds[i + 1])) for i in range(1, len(bounds) - 1)]
    for worker in workers:
        worker.start()
    measure(bounds[0], bounds[1])
    for worker in workers:
        worker.join()
    signed = np.where(exterior, ring_area, -ring_area)
    return np.bincount(part_of[ring_of], weights=signed, minlength=len(values))[:len(values)]


# --- edges ----------------------------------------------------------------------------------------
MAX_SEGMENT_M = 100.0  # the longest stored segment, on the ground
MAX_SAGITTA_M = 0.001  # the largest offset between a stored segment's lon/lat chord and its geodesic
_SAGITTA_FACTOR = 1.1  # measured worst case over directions (about 35 degrees from east), 0-80 degrees
_MEAN_RADIUS_M = 6_371_008.8
# An upper bound of the length of one degree on the WGS84 ellipsoid, of latitude or of longitude over
# cos(latitude): both radii of curvature are at most the polar one, a / sqrt(1 - e2).
_M_PER_DEG_MAX = math.radians(1) * 6378137.0 / math.sqrt(1 - 0.00669437999014)
_SEGMENT_SLACK = 0.01  # a segment up to 1% over the limit is left whole (a second pass changes nothing)
# `max_vertices` limits what is sent; this, what the cut edges make of it (some 100,000 km of outline)
MAX_DENSIFIED_VERTICES = 1_000_000


def max_segment_m(latitude: Any) -> np.ndarray:
    """The longest stored segment at |latitude| (degrees): `MAX_SEGMENT_M`, shorter beyond ~78 degrees
    so that the chord/geodesic sagitta 1.1 L^2 tan(lat) / 8R stays under `MAX_SAGITTA_M`."""
    tangent = np.tan(np.radians(np.minimum(np.abs(np.asarray(latitude, dtype=float)), 89.9)))
    with np.errstate(divide="ignore"):
        bound = np.sqrt(8 * _MEAN_RADIUS_M * MAX_SAGITTA_M / (_SAGITTA_FACTOR * tangent))
    return np.minimum(MAX_SEGMENT_M, bound)


def densified(geometries: Any, transformer: Transformer | None = None) -> np.ndarray:
    """Polygonal geometries with every edge cut into equal segments of at most `max_segment_m` metres,
    interpolated in the CRS the geometries are in (their edges are straight there), then transformed to
    WGS84 lon/lat with `transformer` (None: they are lon/lat already).

    The geometries must be non-empty Polygons or MultiPolygons of one coordinate dimension; mixed
    Polygons and MultiPolygons all come back as MultiPolygons. Vertices are kept as they are (each
    one transformed once); a ring's segments are measured on their lon/lat ends. A part that is not
    within lon/lat range, or wider than 180 degrees, is only transformed (the rules refuse it, and say
    why), except a part in a projected CRS that crosses the antimeridian: it is cut there into parts
    on each side of it (the way RFC 7946 wants it, and the way a straight UTM edge is read).
    """
    values = np.asarray(geometries, dtype=object)
    if len(values) == 0:
        return values.copy()
    kind, xy, offsets = shapely.to_ragged_array(values)
    lonlat = xy.copy()
    if transformer is not None:
        lonlat[:, 0], lonlat[:, 1] = transformer.transform(xy[:, 0], xy[:, 1])
    count = len(xy)
    ring_end = offsets[0]
    if len(offsets) == 2:  # Polygons: rings, then geometries
        ring_of_geometry = np.repeat(np.arange(len(values)), np.diff(offsets[1]))
    else:  # MultiPolygons: rings, parts, then geometries
        ring_of_geometry = np.repeat(np.arange(len(values)), np.diff(offsets[2]))[
            np.repeat(np.arange(len(offsets[1]) - 1), np.diff(offsets[1]))]
    vertices_only = shapely.from_ragged_array(kind, lonlat, offsets)
    refused, across = _out_of_lon_lat(vertices_only, projected=transformer is not None)
    following = np.minimum(np.arange(1, count + 1), count - 1)
    starts_segment = ~np.repeat(refused[ring_of_geometry], np.diff(ring_end))
    starts_segment[ring_end[1:] - 1] = False  # the closing vertex of each ring
    lat0, lat1 = lonlat[:, 1], lonlat[following, 1]
    with np.errstate(invalid="ignore"):
        length = _M_PER_DEG_MAX * np.hypot(lat1 - lat0, _east_of(lonlat[:, 0], lonlat[following, 0])
                                          * np.cos(np.radians((lat0 + lat1) / 2)))
        pieces = np.ceil(length / max_segment_m(np.maximum(np.abs(lat0), np.abs(lat1))) - _SEGMENT_SLACK)
    pieces = np.where(starts_segment & np.isfinite(pieces) & (pieces > 1), pieces, 1).astype(np.int64)
    owner = np.repeat(np.arange(count), pieces)
    step = np.arange(len(owner)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    points = xy[owner] + (step / pieces[owner])[:, None] * (xy[following[owner]] - xy[owner])
    points[step == 0] = lonlat[owner[step == 0]]
    if transformer is not None:
        new = step > 0
        points[new, 0], points[new, 1] = transformer.transform(points[new, 0], points[new, 1])
    new_ring_end = np.concatenate([[0], np.cumsum(pieces)])[ring_end]
    result = shapely.from_ragged_array(kind, points, (new_ring_end, *offsets[1:]))
    for i in np.flatnonzero(across):
        result[i] = _split_at_antimeridian(result[i])
    return result


def _east_of(lon0: np.ndarray, lon1: np.ndarray) -> np.ndarray:
    """The longitude difference lon1 - lon0, the short way round (across 180 degrees where that is shorter)."""
    return (lon1 - lon0 + 180) % 360 - 180


def _out_of_lon_lat(geometries: np.ndarray, projected: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per lon/lat geometry: whether a part is out of range or wider than 180 degrees (`refused`), and,
    for projected input, whether its only such parts cross the antimeridian (`across`)."""
    parts, part_of = shapely.get_parts(geometries, return_index=True)
    x1, y1, x2, y2 = shapely.bounds(parts).T
    with np.errstate(invalid="ignore"):
        in_range = (x1 >= -180) & (x2 <= 180) & (y1 >= -90) & (y2 <= 90)
        wide = in_range & (x2 - x1 > 180)
    crossing = np.zeros(len(parts), dtype=bool)
    if projected and wide.any():
        longitudes, longitude_of = shapely.get_coordinates(parts[wide], return_index=True)
        unwrapped = np.where(longitudes[:, 0] < 0, longitudes[:, 0] + 360, longitudes[:, 0])
        width = _reduce_by(unwrapped, longitude_of, np.maximum) - _reduce_by(unwrapped, longitude_of, np.minimum)
        crossing[np.flatnonzero(wide)[width <= 180]] = True
    refused_part = ~in_range | (wide & ~crossing)
    refused = np.bincount(part_of[refused_part], minlength=len(geometries)) > 0
    across = ~refused & (np.bincount(part_of[crossing], minlength=len(geometries)) > 0)
    return refused, across


def _reduce_by(values: np.ndarray, group: np.ndarray, operation: Any) -> np.ndarray:
    """`operation` (np.maximum, np.minimum) over each run of equal, sorted `group` numbers."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return operation.reduceat(values, starts)


def _split_at_antimeridian(geometry: BaseGeometry) -> MultiPolygon:
    """A lon/lat geometry with parts across 180 degrees (their edges jump from 180 to -180), as parts on
    each side of it; the parts within 180 degrees of longitude are kept as they are."""
    kept: list[Polygon] = []
    for part in polygonal_part(geometry).geoms:
        x1, _, x2, _ = part.bounds
        if x2 - x1 <= 180:
            kept.append(part)
            continue
        unwrapped = shapely.transform(part, lambda c: np.column_stack([np.where(c[:, 0] < 0, c[:, 0] + 360, c[:, 0]),
                                                                       c[:, 1]]))
        east = unwrapped.intersection(shapely.box(0, -90, 180, 90))
        west = translate(unwrapped.intersection(shapely.box(180, -90, 360, 90)), -360)
        kept.extend(polygonal_part(east).geoms)
        kept.extend(polygonal_part(west).geoms)
    return MultiPolygon(kept)


def to_wgs84_densified(geometries: Any, crs: CRS, max_vertices: int | None = None) -> np.ndarray:
    """Many geometries of a file in `crs`, in WGS84: the polygonal ones within `max_vertices` `densified`
    in `crs` (M values dropped, as the rules drop them), the others (which the rules refuse, with
    messages about their WGS84 coordinates) transformed vertex by vertex."""
    values = np.asarray(geometries, dtype=object).copy()
    transformer = to_wgs84(crs)
    present = ~shapely.is_missing(values)
    polygonal = present & np.isin(shapely.get_type_id(values), (3, 6)) & ~shapely.is_empty(values)
    if max_vertices is not None:
        polygonal &= shapely.get_num_coordinates(values) <= max_vertices
    three_d = shapely.has_z(values)
    if hasattr(shapely, "has_m"):  # shapely >= 2.1
        measured = polygonal & shapely.has_m(values)
        values[measured & three_d] = shapely.force_3d(values[measured & three_d])
        values[measured & ~three_d] = shapely.force_2d(values[measured & ~three_d])
    for z in (False, True):
        rows = np.flatnonzero(polygonal & (three_d == z))
        if len(rows):
            values[rows] = densified(values[rows], transformer)
    others = np.flatnonzero(present & ~polygonal)
    if transformer is not None and len(others):
        def transform(coordinates: np.ndarray) -> np.ndarray:
            out = coordinates.copy()
            out[:, 0], out[:, 1] = transformer.transform(coordinates[:, 0], coordinates[:, 1])
            return out

        values[others] = shapely.transform(values[others], transform, include_z=None)
    return values


# --- the grid --------------------------------------------------------------------------------------
def _round_half_up(values: np.ndarray) -> np.ndarray:
    """Round to integers as GEOS does (Java's Math.round: halves go towards +infinity)."""
    whole = np.trunc(values)
    fraction = values - whole
    return np.where(values >= 0, whole + (fraction >= 0.5), whole - (fraction < -0.5))


def snap_to_grid(geometries: Any) -> np.ndarray:
    """Valid polygonal geometries with their coordinates on the `GRID_DEG` grid, shells clockwise and
    holes anticlockwise, as `shapely.set_precision(g, GRID_DEG)` gives them.

    Each coordinate is rounded to the grid exactly as GEOS's precision model rounds it, in one numpy
    operation; only where that leaves a geometry invalid or with a repeated vertex (vertices or rings
    closer than ~1 mm) is the geometry snap-rounded by GEOS itself, which repairs the collapse. For
    every other geometry this is GEOS's answer up to the ring's starting vertex, at a fraction of its
    cost, with one difference: where a vertex lands within half a grid cell of another ring's edge,
    GEOS also puts a node on that edge; here the edge is left as it is (the result is valid, on the
    grid and covers the same land to well under a square centimetre).
    """
    values = np.asarray(geometries, dtype=object)
    if len(values) == 0:
        return values.copy()
    coordinates, coordinate_of = shapely.get_coordinates(values, return_index=True)
    rounded = _round_half_up(coordinates * _GRID_SCALE) / _GRID_SCALE
    del coordinates
    repeated = np.all(rounded[1:] == rounded[:-1], axis=1) & (coordinate_of[1:] == coordinate_of[:-1])
    suspect = np.zeros(len(values), dtype=bool)
    suspect[coordinate_of[1:][repeated]] = True
    snapped = shapely.set_coordinates(values.copy(), rounded)
    del rounded, coordinate_of
    fine = ~suspect
    fine[fine] = shapely.is_valid(snapped[fine])
    snapped[fine] = shapely.orient_polygons(snapped[fine], exterior_cw=True)
    if (~fine).any():
        snapped[~fine] = shapely.set_precision(values[~fine], GRID_DEG)
    return snapped


# --- reading GeoJSON ----------------------------------------------------------------------------
def _position(value: Any, where: str, warnings: set[str]) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise GeometryError("a position must be an array of 2 numbers [x, y]", where)
    if len(value) > 3:
        raise GeometryError(f"a position has at most 3 numbers; this one has {len(value)}", where)
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise GeometryError(f"coordinates must be numbers, got {number!r}", where)
        if not math.isfinite(number):
            raise GeometryError("coordinates must be finite numbers (NaN or infinity found)", where)
    if len(value) == 3:
        warnings.add("3D coordinates: the Z values were dropped; hazards are stored in 2D")
    return float(value[0]), float(value[1])


def _ring(value: Any, where: str, warnings: set[str]) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise GeometryError("a linear ring must be an array of positions", where)
    points = [_position(p, f"{where}[{i}]", warnings) for i, p in enumerate(value)]
    if len(points) < 4:
        raise GeometryError("a linear ring needs at least 4 positions (first repeated last); this one has "
                            f"{len(points)}", where)
    if points[0] != points[-1]:
        raise GeometryError(
            f"the ring is not closed: it starts at {list(points[0])} and ends at {list(points[-1])}; "
            "repeat the first position at the end", where)
    return points


def _polygon_rings(value: Any, where: str, warnings: set[str]) -> list[list[tuple[float, float]]]:
    if not isinstance(value, list) or not value:
        raise GeometryError("the polygon is empty: it needs at least an exterior ring", where)
    return [_ring(r, f"{where}[{i}]", warnings) for i, r in enumerate(value)]


def _transform_rings(rings: list[list[tuple[float, float]]], transformer: Transformer | None,
                     where: str) -> list[list[tuple[float, float]]]:
    if transformer is None:
        return rings
    out = []
    for ring in rings:
        xs, ys = transformer.transform([p[0] for p in ring], [p[1] for p in ring])
        if not all(math.isfinite(v) for v in (*xs, *ys)):
            raise GeometryError("coordinates cannot be transformed to WGS84: they lie outside the named CRS's domain",
                                where)
        out.append(list(zip(xs, ys, strict=True)))
    return out


def _check_lon_lat(rings: list[list[tuple[float, float]]], where: str, projected_input: bool) -> None:
    xs = [p[0] for r in rings for p in r]
    ys = [p[1] for r in rings for p in r]
    if all(-180 <= x <= 180 for x in xs) and all(-90 <= y <= 90 for y in ys):
        # a part in a projected CRS across the antimeridian is cut there (`densified`)
        unwrapped = [x + 360 if x < 0 else x for x in xs]
        if max(xs) - min(xs) > 180 and not (projected_input and max(unwrapped) - min(unwrapped) <= 180):
            raise GeometryError(
                "the polygon spans more than 180 degrees of longitude, so it most likely crosses the antimeridian; "
                "split it at 180 degrees into a MultiPolygon with one part on each side", where)
        return
    if projected_input:
        raise GeometryError("after transformation to WGS84 the coordinates are out of range; check the CRS", where)
    if all(-90 <= x <= 90 for x in xs) and all(-180 <= y <= 180 for y in ys):
        raise GeometryError(
            "latitude out of range [-90, 90]: the coordinates look like latitude, longitude; GeoJSON wants "
            "longitude first ([lon, lat])", where)
    if any(abs(v) > 1000 for v in (*xs, *ys)):
        raise GeometryError(
            "coordinates out of longitude/latitude range: they look projected (metres); name their CRS with "
            "?crs=EPSG:<code>", where)
    raise GeometryError("coordinates out of range: longitude must be within [-180, 180] and latitude within [-90, 90]",
                        where)


def read_polygonal(geojson: Any, crs: CRS = WGS84, *, repair: bool = False, max_vertices: int | None = None,
                   where: str = "geometry") -> PolygonalGeometry:
    """Turn a GeoJSON geometry into an accepted WGS84 MultiPolygon, or raise `GeometryError`."""
    if not isinstance(geojson, dict):
        raise GeometryError("a GeoJSON geometry object is required", where)
    kind = geojson.get("type")
    if kind == "GeometryCollection":
        raise GeometryError("a GeometryCollection is not accepted: send a Polygon or MultiPolygon", where)
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"a hazardous area must be a Polygon or MultiPolygon, not {kind!r}", f"{where}.type")
    coordinates = geojson.get("coordinates")
    cwhere = f"{where}.coordinates"
    if not isinstance(coordinates, list) or not coordinates:
        raise GeometryError("the geometry is empty: it has no coordinates", cwhere)
    warnings: set[str] = set()
    parts = [coordinates] if kind == "Polygon" else coordinates
    if kind == "Polygon":
        polygons = [(_polygon_rings(coordinates, cwhere, warnings), cwhere)]
    else:
        polygons = [(_polygon_rings(p, f"{cwhere}[{i}]", warnings), f"{cwhere}[{i}]") for i, p in enumerate(parts)]
    vertices = sum(len(r) for rings, _ in polygons for r in rings)
    if max_vertices is not None and vertices > max_vertices:
        raise GeometryError(f"the geometry has {vertices} vertices; the limit is {max_vertices} per geometry "
                            "(simplify it or split it into several hazards)", cwhere)
    transformer = to_wgs84(crs)
    for rings, pwhere in polygons:  # the vertices, part by part, for messages that say where
        _check_lon_lat(_transform_rings(rings, transformer, pwhere), pwhere, projected_input=transformer is not None)
    geometry = densified([MultiPolygon([Polygon(rings[0], rings[1:]) for rings, _ in polygons])], transformer)[0]
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        raise GeometryError("coordinates cannot be transformed to WGS84: the edges leave the named CRS's domain",
                            cwhere)
    if (densified_vertices := shapely.get_num_coordinates(geometry)) > MAX_DENSIFIED_VERTICES:
        raise GeometryError(f"with its edges cut into segments of at most {MAX_SEGMENT_M:g} m the geometry has "
                            f"{densified_vertices} vertices; the limit is {MAX_DENSIFIED_VERTICES} "
                            "(split it into several hazards)", cwhere)
    repair_report = None
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        if not repair:
            raise GeometryError(f"invalid geometry: {reason}. Fix it, or send ?repair=true to have it repaired "
                                "(the area change is reported)", where)
        before = geodesic_area_m2(geometry)
        geometry = polygonal_part(shapely.make_valid(geometry))
        after = geodesic_area_m2(geometry)
        repair_report = {"reason": reason, "area_before_m2": round(before, 3), "area_after_m2": round(after, 3),
                         "area_change_m2": round(after - before, 3)}
    geometry = polygonal_part(snap_to_grid([geometry])[0])
    if geometry.is_empty or geodesic_area_m2(geometry) < MIN_AREA_M2:
        raise GeometryError(f"the polygon has no area (less than {MIN_AREA_M2:g} m2 after snapping to ~1 mm)", where)
    return PolygonalGeometry(geometry=geometry, warnings=sorted(warnings), repair=repair_report)


def polygonal_part(geometry: BaseGeometry) -> MultiPolygon:
    """The polygons of any geometry, as one MultiPolygon (lines and points dropped)."""
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry]) if not geometry.is_empty else MultiPolygon()
    polygons: list[Polygon] = []
    for part in getattr(geometry, "geoms", []):
        if isinstance(part, Polygon) and not part.is_empty:
            polygons.append(part)
        elif isinstance(part, MultiPolygon):
            polygons.extend(part.geoms)
        elif hasattr(part, "geoms"):
            polygons.extend(polygonal_part(part).geoms)
    return MultiPolygon(polygons)


def to_geojson(geometry: BaseGeometry) -> dict[str, Any]:
    return mapping(geometry)


# --- the same rules, in PostGIS ----------------------------------------------------------------
def sql_polygonal(expr: str) -> str:
    """Any PostGIS geometry expression as a 2D MultiPolygon (possibly empty)."""
    return f"ST_Multi(ST_CollectionExtract(({expr}), 3))"


def sql_snap(expr: str) -> str:
    return sql_polygonal(f"ST_ReducePrecision(({expr}), {GRID_DEG})")


def sql_without_slivers(expr: str) -> str:
    """Drop the parts thinner than 2 x `SLIVER_DEG`, about 2 cm (a morphological opening, sharp corners kept).

    Two polygons that share an edge in the field (drawn along the same line, with their own vertices)
    differ here by a millimetre or two along it; their difference leaves long hair-thin slivers that
    must not count as remaining land. The opening (eroded by `SLIVER_DEG`, grown back by one and a
    half times that) is only a mask: the result is the geometry within it, so every vertex it keeps is one of
    its own (GEOS's buffer drops vertices that lie within a hundredth of the distance of the line
    through their neighbours, which would undo the densification of the edges). A geometry that lies
    within its mask (it has no sliver: nearly always) is the result as it is; the overlay with the mask,
    on the grid, is made only for one that does not, or where GEOS cannot tell (`covered_by_or_false`,
    migration 0020). The geometry and its mask are each computed once (`OFFSET 0` keeps PostgreSQL from
    copying `expr` into every place that names it).
    """
    kept = f"CASE WHEN covered_by_or_false(g, mask) THEN g ELSE {sql_grid_intersection('g', 'mask')} END"
    return sql_polygonal(f"(SELECT {kept} FROM (SELECT g, {sql_sliver_mask('g')} AS mask FROM "
                         f"(SELECT {sql_polygonal(expr)} AS g OFFSET 0) AS difference OFFSET 0) AS opened)")


def sql_sliver_mask(expr: str) -> str:
    """The mask of `sql_without_slivers`: the geometry eroded by `SLIVER_DEG` and grown back by 1.5 times that."""
    return f"ST_Buffer(ST_Buffer(({expr}), -{SLIVER_DEG}, 'join=mitre'), {1.5 * SLIVER_DEG!r}, 'join=mitre')"


def sql_grid_intersection(a: str, b: str) -> str:
    """`ST_Intersection(a, b, GRID_DEG)`, or where GEOS raises on it, the intersection snapped to the grid
    afterwards (`grid_intersection`, migration 0015)."""
    return f"grid_intersection(({a}), ({b}), {GRID_DEG})"


def sql_grid_difference(a: str, b: str) -> str:
    """`ST_Difference(a, b, GRID_DEG)`, or where GEOS raises on it, the difference snapped to the grid
    afterwards (`grid_difference`, migration 0015)."""
    return f"grid_difference(({a}), ({b}), {GRID_DEG})"


def sql_difference(a: str, b: str) -> str:
    return sql_without_slivers(sql_grid_difference(a, b))


def sql_intersection(a: str, b: str) -> str:
    return sql_polygonal(sql_grid_intersection(a, b))


def sql_area(expr: str) -> str:
    """Geodesic area in m2 (WGS84 spheroid) of a 4326 geometry expression, a multiple of `AREA_QUANTUM_M2`;
    0 for empty or NULL."""
    return f"round(COALESCE(ST_Area(({expr})::geography, true), 0) * {_AREAS_PER_M2}) / {_AREAS_PER_M2}"


SQL_EMPTY = "ST_GeomFromText('MULTIPOLYGON EMPTY', 4326)"


# --- across the antimeridian, in PostGIS -------------------------------------------------------------
def sql_spans_antimeridian(expr: str) -> str:
    """Whether a stored geometry lies on both sides of 180 degrees: stored split there (each part within
    180 degrees of longitude), it is then wider than 180 degrees."""
    return f"(ST_XMax({expr}) - ST_XMin({expr}) > 180)"


def sql_unwrapped(expr: str, spans: str) -> str:
    """The geometry with longitudes in [0, 360) where `spans` (so that a centroid is taken across 180
    degrees, not across the globe), as it is otherwise."""
    return f"(CASE WHEN {spans} THEN ST_ShiftLongitude({expr}) ELSE {expr} END)"


def sql_wrapped_longitude(expr: str) -> str:
    """A longitude of [0, 360) back in (-180, 180]."""
    return f"(CASE WHEN ({expr}) > 180 THEN ({expr}) - 360 ELSE ({expr}) END)"


def sql_extent(geom: str, rows: str) -> str:
    """SELECT of the extent (xmin, ymin, xmax, ymax; NULLs when no row) of the geometries `geom` of
    `rows` (a FROM clause body). The longitudes are those of the narrower of the two readings, within
    [-180, 180] or across 180 degrees; in the latter xmin > xmax, as OGC API bounding boxes say it.

    Across 180 degrees a geometry's extent is taken from its box alone (a geometry west of 0 moves by
    360 degrees, one across 0 spans [0, 360]); only a geometry that itself lies on both sides of 180
    degrees is shifted vertex by vertex.
    """
    spans = sql_spans_antimeridian("b")
    return f"""
        SELECT CASE WHEN across THEN {sql_wrapped_longitude('sx1')} ELSE x1 END AS xmin, y1 AS ymin,
               CASE WHEN across THEN {sql_wrapped_longitude('sx2')} ELSE x2 END AS xmax, y2 AS ymax
        FROM (
            SELECT min(ST_XMin(b)) AS x1, min(ST_YMin(b)) AS y1, max(ST_XMax(b)) AS x2, max(ST_YMax(b)) AS y2,
                   min(CASE WHEN {spans} THEN ST_XMin(ST_ShiftLongitude(g)) WHEN ST_XMax(b) < 0 THEN ST_XMin(b) + 360
                            WHEN ST_XMin(b) >= 0 THEN ST_XMin(b) ELSE 0 END) AS sx1,
                   max(CASE WHEN {spans} THEN ST_XMax(ST_ShiftLongitude(g)) WHEN ST_XMax(b) < 0 THEN ST_XMax(b) + 360
                            WHEN ST_XMin(b) >= 0 THEN ST_XMax(b) ELSE 360 END) AS sx2
            FROM (SELECT {geom} AS g, Box2D({geom}) AS b FROM {rows}) boxes
            WHERE NOT ST_IsEmpty(g)
        ) extents
        CROSS JOIN LATERAL (SELECT sx2 - sx1 < x2 - x1 AS across) narrower
    """


# --- the same rules for many geometries at once --------------------------------------------------
THREE_D_WARNING = "3D coordinates: the Z values were dropped; hazards are stored in 2D"  # as `_position` says
# Lower bounds of the length of one degree on the WGS84 ellipsoid: of latitude (the meridian radius is
# smallest at the equator) and of longitude at latitude phi (times cos(phi); the prime vertical radius
# is at least the equatorial radius).
_M_PER_DEG_LAT_MIN = math.radians(1) * 6378137.0 * (1 - 0.00669437999014)
_M_PER_DEG_LON_MIN = math.radians(1) * 6378137.0
_SURELY_ENOUGH_AREA_M2 = 1000 * MIN_AREA_M2  # an estimate this far above the floor needs no exact area


@dataclass
class PolygonalScreen:
    """What `screen_polygonal` found: `accepted[i]` says row i passed every rule of `read_polygonal`
    and `geometry[i]` is then exactly what `read_polygonal(...).geometry` would be; `three_d[i]` says
    the row had Z values (dropped, with `THREE_D_WARNING`)."""

    accepted: Any  # numpy bool array
    geometry: Any  # numpy object array of MultiPolygon (None where not accepted)
    three_d: Any  # numpy bool array


def screen_polygonal(geometries: Any, *, max_vertices: int | None = None, densify: bool = True) -> PolygonalScreen:
    """`read_polygonal`'s rules, vectorised, for many shapely geometries already in WGS84.

    For the geometries that certainly pass (valid Polygon/MultiPolygon, finite lon/lat in range, not
    across the antimeridian, within `max_vertices`, with an area of at least `MIN_AREA_M2` after
    snapping) the answer is the same snapped MultiPolygon `read_polygonal` gives, computed in C for
    the whole array. A geometry that is not accepted here is not necessarily wrong (an invalid one may
    be repaired, for instance): pass it to `read_polygonal`, which accepts it or says exactly why not.
    `densify=False` skips cutting the edges, for geometries from `to_wgs84_densified` (cut already: a
    second cut changes nothing).
    """
    values = np.asarray(geometries, dtype=object)
    n = len(values)
    accepted = np.zeros(n, dtype=bool)
    snapped = np.full(n, None, dtype=object)
    three_d = np.zeros(n, dtype=bool)
    if n == 0:
        return PolygonalScreen(accepted, snapped, three_d)
    kind = shapely.get_type_id(values)
    rows = np.flatnonzero(np.isin(kind, (3, 6)) & ~shapely.is_empty(values))
    if len(rows) == 0:
        return PolygonalScreen(accepted, snapped, three_d)
    candidates = values[rows]
    ok = np.ones(len(rows), dtype=bool)
    has_z = shapely.has_z(candidates)
    flatten = has_z.copy()
    if hasattr(shapely, "has_m"):  # shapely >= 2.1 keeps M values; GeoJSON, which `read_polygonal` reads, has none
        flatten |= shapely.has_m(candidates)
    if flatten.any():
        # every Z must be finite too, as `_position` checks every number of a position
        if has_z.any():
            zs, z_index = shapely.get_coordinates(candidates[has_z], include_z=True, return_index=True)
            bad_z = np.bincount(z_index[~np.isfinite(zs[:, 2])], minlength=int(has_z.sum())) > 0
            ok[np.flatnonzero(has_z)[bad_z]] = False
        candidates = candidates.copy()
        candidates[flatten] = shapely.force_2d(candidates[flatten])
    if max_vertices is not None:
        ok &= shapely.get_num_coordinates(candidates) <= max_vertices
    # Per part (the polygons of a MultiPolygon; a Polygon is its own part), as `_polygon_rings` and
    # `_check_lon_lat`: not empty, longitude and latitude in range, less than 180 degrees wide. GEOS
    # keeps every non-empty ring closed with at least 4 positions; an empty hole is looked for below.
    # NaN or infinite x/y make the geometry invalid ("Invalid Coordinate"), so `is_valid` rules them out.
    multi = shapely.get_type_id(candidates) == 6
    parts, part_of = shapely.get_parts(candidates[multi], return_index=True)
    part_of = np.flatnonzero(multi)[part_of]
    bad_part = (shapely.get_type_id(parts) != 3) | shapely.is_empty(parts)
    ok[part_of[bad_part]] = False
    for polygons, owner in ((candidates[~multi], np.flatnonzero(~multi)), (parts, part_of)):
        xmin, ymin, xmax, ymax = shapely.bounds(polygons).T
        with np.errstate(invalid="ignore"):
            in_range = (xmin >= -180) & (xmax <= 180) & (ymin >= -90) & (ymax <= 90) & (xmax - xmin <= 180)
        holed = np.flatnonzero(shapely.get_num_interior_rings(polygons) > 0)
        rings, ring_of = shapely.get_rings(polygons[holed], return_index=True)
        empty_ring = holed[ring_of[shapely.is_empty(rings)]]
        ok[owner[~in_range]] = False
        ok[owner[empty_ring]] = False
    del parts, part_of
    # edges cut as `read_polygonal` cuts them, straight in lon/lat (a Polygon comes back a MultiPolygon)
    if densify:
        plain = np.flatnonzero(ok)
        candidates = candidates.copy()
        candidates[plain] = densified(candidates[plain])
        ok[plain] &= shapely.get_num_coordinates(candidates[plain]) <= MAX_DENSIFIED_VERTICES
    ok &= shapely.is_valid(candidates)  # a Polygon is valid exactly when the MultiPolygon of it is
    good = np.flatnonzero(ok)
    if len(good) == 0:
        return PolygonalScreen(accepted, snapped, three_d)
    # snapped as `read_polygonal` does, a Polygon on its own (the same result as snapping the MultiPolygon of it)
    reduced = snap_to_grid(candidates[good])
    del candidates
    reduced_kind = shapely.get_type_id(reduced)
    single = np.flatnonzero(reduced_kind == 3)
    if len(single):
        reduced[single] = shapely.multipolygons(reduced[single][:, None])
    fine = ((reduced_kind == 3) | (reduced_kind == 6)) & ~shapely.is_empty(reduced)
    # area: a lower bound from the planar area in degrees; the exact geodesic area where it is not clear
    lo_x, lo_y, hi_x, hi_y = shapely.bounds(reduced).T
    with np.errstate(invalid="ignore"):
        widest_latitude = np.radians(np.maximum(np.abs(lo_y), np.abs(hi_y)))
        estimate = (shapely.area(reduced) * _M_PER_DEG_LAT_MIN * _M_PER_DEG_LON_MIN * np.cos(widest_latitude))
        clear = fine & (estimate >= _SURELY_ENOUGH_AREA_M2) & (hi_x - lo_x <= 10) & (hi_y - lo_y <= 10)
    unclear = np.flatnonzero(fine & ~clear)
    if len(unclear):
        fine[unclear] = geodesic_areas_m2(reduced[unclear]) >= MIN_AREA_M2
    chosen = rows[good[fine]]
    accepted[chosen] = True
    snapped[chosen] = reduced[fine]
    three_d[chosen] = has_z[good[fine]]
    return PolygonalScreen(accepted, snapped, three_d)
