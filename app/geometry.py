"""Geometry rules, in one place.

- Input is GeoJSON Polygon/MultiPolygon, in WGS84 longitude/latitude unless another CRS is named;
  anything else is refused with a message that says what and where.
- Stored geometry is a 2D MultiPolygon in EPSG:4326, snapped to a grid of about 1 cm
  (`GRID_DEG`) so that differences leave no slivers behind.
- Areas are geodesic on the WGS84 ellipsoid (pyproj `Geod` in Python, `geography` in PostGIS),
  in square metres; anything below `MIN_AREA_M2` counts as nothing.
- The SQL fragments at the bottom are the only place the ledger's PostGIS geometry operations
  are spelled out.
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
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

GRID_DEG = 1e-7  # about 1.1 cm at the equator
_GRID_SCALE = 1e7  # 1 / GRID_DEG, as GEOS's PrecisionModel holds it
MIN_AREA_M2 = 1.0
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


def from_wgs84(crs: CRS) -> Transformer | None:
    if crs == WGS84 or crs.equals(WGS84, ignore_axis_order=True):
        return None
    return Transformer.from_crs(WGS84, crs, always_xy=True)


# --- areas --------------------------------------------------------------------------------------
def geodesic_area_m2(geometry: BaseGeometry | None) -> float:
    """Geodesic area on the WGS84 ellipsoid in square metres (of a lon/lat geometry; lines and points
    have none)."""
    if geometry is None or geometry.is_empty:
        return 0.0
    return float(geodesic_areas_m2([geometry])[0])


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
    closer than ~1 cm) is the geometry snap-rounded by GEOS itself, which repairs the collapse. For
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
        raise GeometryError(f"a linear ring needs at least 4 positions (first repeated last); this one has {len(points)}",
                            where)
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
        if max(xs) - min(xs) > 180:
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
    shapes = []
    for rings, pwhere in polygons:
        rings = _transform_rings(rings, transformer, pwhere)
        _check_lon_lat(rings, pwhere, projected_input=transformer is not None)
        shapes.append(Polygon(rings[0], rings[1:]))
    geometry = MultiPolygon(shapes)
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
        raise GeometryError(f"the polygon has no area (less than {MIN_AREA_M2:g} m2 after snapping to ~1 cm)", where)
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
    """Drop the parts thinner than about two grid cells (a morphological opening, sharp corners kept).

    Polygons given in a projected CRS have edges that are straight in metres but become chords in
    longitude/latitude, so two polygons that share an edge in the field differ by millimetres here;
    their difference leaves long hair-thin slivers that must not count as remaining land.
    """
    opened = f"ST_Buffer(ST_Buffer(({expr}), -{GRID_DEG}, 'join=mitre'), {GRID_DEG}, 'join=mitre')"
    return sql_polygonal(f"ST_ReducePrecision({opened}, {GRID_DEG})")


def sql_difference(a: str, b: str) -> str:
    return sql_without_slivers(f"ST_Difference(({a}), ({b}), {GRID_DEG})")


def sql_intersection(a: str, b: str) -> str:
    return sql_polygonal(f"ST_Intersection(({a}), ({b}), {GRID_DEG})")


def sql_area(expr: str) -> str:
    """Geodesic area in m2 (WGS84 spheroid) of a 4326 geometry expression; 0 for empty or NULL."""
    return f"COALESCE(ST_Area(({expr})::geography, true), 0)"


SQL_EMPTY = "ST_GeomFromText('MULTIPOLYGON EMPTY', 4326)"


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


def screen_polygonal(geometries: Any, *, max_vertices: int | None = None) -> PolygonalScreen:
    """`read_polygonal`'s rules, vectorised, for many shapely geometries already in WGS84.

    For the geometries that certainly pass (valid Polygon/MultiPolygon, finite lon/lat in range, not
    across the antimeridian, within `max_vertices`, with an area of at least `MIN_AREA_M2` after
    snapping) the answer is the same snapped MultiPolygon `read_polygonal` gives, computed in C for
    the whole array. A geometry that is not accepted here is not necessarily wrong (an invalid one may
    be repaired, for instance): pass it to `read_polygonal`, which accepts it or says exactly why not.
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
