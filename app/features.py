"""The ledger as OGC API - Features layers (Part 1 Core, GeoJSON; Part 2 CRS), built and streamed by PostGIS.

Two collections:
- `hazardous_areas`: every hazard that is not voided, with its remaining geometry (or, with
  `geometry=baseline`, the polygon it was recorded with); a hazard released in full (status
  `released`, remaining area 0) has the polygon it was recorded with, the land that was released;
  `datetime=D` shows the ledger as it stood at the end of day D (`app.as_of.hazards_sql`).
- `land_release_events`: the valid land-release events with the geometry they released. Voided
  events are left out (they never count); `include_voided=true` adds them, flagged `voided: true`
  with their void reason, for auditing. A whole-hazard reclassification has the land it
  reclassified (what remained of the hazard just before it) as its geometry, an event that released
  nothing (an earlier-dated event had released its land) the polygon it was recorded with.
  `datetime=D` means "as of D": the events dated on or before D; an interval `A/B` (either end may
  be `..`) selects the events dated within it.

Every Feature is built by PostGIS (`ST_AsGeoJSON` + `json_build_object`) and comes out of
`COPY (SELECT ...) TO STDOUT`, taken as fast as PostgreSQL makes it (no fetch round trips, no
decoding of the text into Python strings) into a spool: memory up to 8 MB, then an unnamed temporary
file. A 200 is only ever a whole document: the page is made in full before its status line goes out,
then sent in 64 KB chunks with its Content-Length. So the statement never waits for the client (nor
runs into the statement timeout because the client is slow), a page never holds more than 8 MB of
memory, and a failure while making it (a statement timeout, a lost database connection, a full disk)
is a problem+json answer (503); a failure after the status line (the spool read back) cuts the
connection short of the Content-Length, which HTTP clients report as a transfer error.

Pages are ordered by id and addressed by `offset`; the `next` links also carry `after`, the id of
the page's last feature, so the next page starts from the id index there (keyset paging: every page
of a 200,000-feature layer costs the same, where an offset makes PostgreSQL walk past every earlier
feature, and a feature added or removed between two requests does not shift the pages).
`numberMatched` (optional in OGC API - Features) is on the first page and the last: known without
counting on the last page of offset paging, counted (without geometry) otherwise; the pages in
between leave it out, since counting 200,000 features again for each page cost as much as making the
page.
"""
from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from pyproj import CRS
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from app import database
from app.as_of import hazards_sql, reclassified_land_sql, whole_reclassification_sql
from app.geometry import CRSNotKnown, parse_crs, sql_extent
from app.layers import EVENT_KINDS, EVENT_PROPERTIES, HAZARD_PROPERTIES, Property, sql_json_properties
from app.models import CLASSIFICATIONS, HAZARD_STATUSES
from app.problems import Problem
from app.settings import get_settings

GEOJSON = "application/geo+json"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
CRS84_SPELLINGS = {"ogc:crs84", "crs84", CRS84_URI.lower(), "urn:ogc:def:crs:ogc:1.3:crs84",
                   "https://www.opengis.net/def/crs/ogc/1.3/crs84"}
DEFAULT_LIMIT = 100
# CSV with a delimiter and a quote character that never occur in JSON text (PostgreSQL's JSON escapes
# every control character): each row arrives as `<id>\x01<feature>\n`, with nothing escaped or quoted
_COPY_OPTIONS = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
_ID_LENGTH = 36  # a uuid as text
CHUNK_BYTES = 64 * 1024  # bytes written to the client at a time
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024  # what a page may hold in memory, not yet sent, before it spills to disk

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]

# CRS listed in each collection; any other EPSG code known to PostGIS is accepted as well.
LISTED_CRS = [CRS84_URI, EPSG_URI.format(code=4326), EPSG_URI.format(code=3857)]


def max_limit() -> int:
    return get_settings().max_page_size


# --- collections ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Collection:
    """One OGC collection: what it is, where its rows come from and how a row becomes a feature or a tile row.

    The source is an SQL FROM item aliased `f` whose rows the properties (`app.layers`) are read from.
    """

    id: str
    title: str
    description: str
    filters: tuple[str, ...]  # property filters accepted on items and tiles
    properties: tuple[Property, ...]
    source: Callable[[ItemsQuery, dict[str, Any]], tuple[str, list[str]]]  # FROM item, conditions
    feature_geometry: Callable[[ItemsQuery], str]  # the SQL of the feature's GeoJSON geometry
    tile_geometry: Callable[[ItemsQuery], str]  # the 4326 geometry the tile draws
    extent_table: str  # where the extent is read from: its table, geometry column and date column
    extent_geometry: str
    extent_date: str
    extra_params: tuple[str, ...] = ()
    date_intervals: bool = False  # `datetime` may be an interval start/end (else only an instant)
    voided_readable_by_id: bool = False  # a voided row is still readable as a single item


COMMON_ITEM_PARAMS = ("limit", "offset", "after", "bbox", "bbox-crs", "datetime", "crs", "f")
FILTER_VALUES: dict[str, tuple[str, ...]] = {
    "classification": CLASSIFICATIONS, "status": HAZARD_STATUSES, "kind": EVENT_KINDS,
}


def collection_or_404(collection_id: str) -> Collection:
    collection = COLLECTIONS.get(collection_id)
    if collection is None:
        raise Problem(404, f"No collection '{collection_id}': the collections are "
                           f"{', '.join(COLLECTIONS)} (GET /collections).")
    return collection


def bad_parameter(name: str, reason: str) -> Problem:
    return Problem(400, f"Parameter '{name}': {reason}", title="Invalid parameter",
                   invalid_params=[{"name": name, "reason": reason}])


# --- CRS --------------------------------------------------------------------------------------------
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


def read_crs(name: str, value: str | None, conn: Connection) -> OutputCrs:
    """CRS84 (lon/lat) by default; an EPSG code in its own axis order (EPSG:4326 is lat/lon)."""
    if value is None or value.strip() == "":
        return CRS84
    if value.strip().lower() in CRS84_SPELLINGS:
        return CRS84
    try:
        crs = parse_crs(value)
    except CRSNotKnown as exc:
        raise bad_parameter(name, f"{exc}; use {CRS84_URI} or {EPSG_URI.format(code='<code>')}") from exc
    code = crs.to_epsg()
    if code is None:
        raise bad_parameter(name, f"'{value}' has no EPSG code")
    known = conn.execute(text("SELECT EXISTS (SELECT 1 FROM spatial_ref_sys WHERE srid = :srid)"),
                         {"srid": code}).scalar_one()
    if not known:
        raise bad_parameter(name, f"EPSG:{code} is not a CRS the database can transform to")
    north_first = bool(crs.axis_info) and crs.axis_info[0].direction.lower() in ("north", "south")
    return OutputCrs(code, EPSG_URI.format(code=code), north_first)


def sql_output_geometry(expr: str, crs: OutputCrs) -> str:
    """A 4326 geometry expression in the output CRS and its axis order."""
    out = expr if crs.srid == 4326 else f"ST_Transform({expr}, {int(crs.srid)})"
    return f"ST_FlipCoordinates({out})" if crs.north_first else out


def sql_geojson(expr: str, crs: OutputCrs) -> str:
    """GeoJSON of a geometry, or JSON null when it is missing or empty."""
    return (f"CASE WHEN {expr} IS NULL OR ST_IsEmpty({expr}) THEN NULL "
            f"ELSE ST_AsGeoJSON({sql_output_geometry(expr, crs)}, {crs.digits})::json END")


# --- parameters ---------------------------------------------------------------------------------------
@dataclass
class DateFilter:
    as_of: date | None = None  # an instant
    start: date | None = None  # an interval (open ends allowed)
    end: date | None = None

    @property
    def interval(self) -> bool:
        return self.as_of is None and (self.start is not None or self.end is not None)


@dataclass
class ItemsQuery:
    collection: Collection
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    after: uuid.UUID | None = None  # keyset paging: only features with a greater id
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OutputCrs = CRS84
    dates: DateFilter = field(default_factory=DateFilter)
    crs: OutputCrs = CRS84
    filters: dict[str, str] = field(default_factory=dict)
    baseline: bool = False
    include_voided: bool = False


def _read_date(name: str, value: str) -> date:
    text_value = value.strip()
    try:
        if "T" in text_value or "t" in text_value:
            return datetime.fromisoformat(text_value.replace("z", "Z").replace("Z", "+00:00")).date()
        return date.fromisoformat(text_value)
    except ValueError as exc:
        raise bad_parameter(name, f"'{value}' is not an RFC 3339 date or date-time (e.g. 2023-12-31)") from exc


def read_datetime(value: str | None, collection: Collection) -> DateFilter:
    if value is None or value.strip() == "":
        return DateFilter()
    if "/" not in value:
        return DateFilter(as_of=_read_date("datetime", value))
    start_text, _, end_text = value.partition("/")
    if "/" in end_text:
        raise bad_parameter("datetime", "an interval has exactly one '/': start/end, either may be '..'")
    start = None if start_text in ("", "..") else _read_date("datetime", start_text)
    end = None if end_text in ("", "..") else _read_date("datetime", end_text)
    if start is None and end is None:
        return DateFilter()
    if start and end and start > end:
        raise bad_parameter("datetime", f"the interval starts ({start}) after it ends ({end})")
    if not collection.date_intervals:
        raise bad_parameter("datetime", f"{collection.id} shows the ledger at one date: give an instant such as "
                                        "2023-12-31 (the state at the end of that day), not an interval")
    return DateFilter(start=start, end=end)


def _read_int(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise bad_parameter(name, f"'{value}' is not an integer") from exc
    if number < minimum:
        raise bad_parameter(name, f"must be at least {minimum}, got {number}")
    if number > 2**62:
        raise bad_parameter(name, f"{number} is far beyond any layer's size")
    return number


def read_bbox(value: str, crs: OutputCrs) -> tuple[float, float, float, float]:
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise bad_parameter("bbox", "give 4 numbers minx,miny,maxx,maxy (or 6 with heights)")
    try:
        numbers = [float(p) for p in parts]
    except ValueError as exc:
        raise bad_parameter("bbox", f"'{value}' holds something that is not a number") from exc
    if any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
        raise bad_parameter("bbox", "the numbers must be finite")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    x1, y1, x2, y2 = numbers
    if crs.north_first:  # EPSG:4326 and friends: the bbox is lat,lon
        x1, y1, x2, y2 = y1, x1, y2, x2
    if y1 > y2:
        raise bad_parameter("bbox", f"the lower {'latitude' if crs.geographic else 'y'} ({y1}) is above the upper "
                                    f"one ({y2})")
    if crs.geographic:
        if not all(-180 <= x <= 180 for x in (x1, x2)) or not all(-90 <= y <= 90 for y in (y1, y2)):
            raise bad_parameter("bbox", "longitudes must be within [-180, 180] and latitudes within [-90, 90]")
    elif x1 > x2:
        raise bad_parameter("bbox", f"the lower x ({x1}) is greater than the upper one ({x2})")
    return x1, y1, x2, y2


def read_filters(collection: Collection, params: Mapping[str, str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for name in collection.filters:
        value = params.get(name)
        if value is None or value == "":
            continue
        if name == "state":
            if not re.fullmatch(r"[A-Za-z]{3}", value):
                raise bad_parameter("state", f"'{value}' is not an ISO 3166 alpha-3 code such as KHM")
            filters[name] = value.upper()
            continue
        allowed = FILTER_VALUES[name]
        if value not in allowed:
            raise bad_parameter(name, f"'{value}' is not one of {', '.join(allowed)}")
        filters[name] = value
    return filters


def check_known_params(collection: Collection, params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    known = set(allowed) | set(collection.filters) | set(collection.extra_params)
    for name in params:
        if name not in known:
            other = [c.id for c in COLLECTIONS.values() if name in c.filters or name in c.extra_params]
            hint = f" (it applies to {', '.join(other)})" if other else ""
            raise bad_parameter(name, f"not a parameter of {collection.id}{hint}; known: {', '.join(sorted(known))}")


def read_format(params: Mapping[str, str]) -> None:
    value = params.get("f")
    if value not in (None, "", "json", "geojson"):
        raise bad_parameter("f", f"'{value}' is not offered: only json (GeoJSON)")


def read_geometry_choice(collection: Collection, params: Mapping[str, str]) -> bool:
    value = params.get("geometry")
    if value in (None, "", "remaining"):
        return False
    if value == "baseline":
        return True
    raise bad_parameter("geometry", f"'{value}' is not one of remaining, baseline")


def read_include_voided(params: Mapping[str, str]) -> bool:
    value = (params.get("include_voided") or "false").lower()
    if value not in ("true", "false"):
        raise bad_parameter("include_voided", f"'{value}' is not true or false")
    return value == "true"


def read_items_query(collection: Collection, params: Mapping[str, str], conn: Connection, *,
                     paging: bool = True) -> ItemsQuery:
    """Every parameter of an items (or tiles) request, checked; a 400 names the first bad one."""
    check_known_params(collection, params, COMMON_ITEM_PARAMS if paging
                       else ("bbox", "bbox-crs", "datetime", "f"))
    read_format(params)
    query = ItemsQuery(collection=collection)
    if paging:
        if params.get("limit"):
            # Above the maximum is not an error (OGC API - Features): the maximum is used.
            query.limit = min(_read_int("limit", params["limit"], 1), max_limit())
        if params.get("offset"):
            query.offset = _read_int("offset", params["offset"], 0)
        if params.get("after"):
            try:
                query.after = uuid.UUID(params["after"])
            except ValueError as exc:
                raise bad_parameter("after", f"'{params['after'][:60]}' is not a feature id (follow the next "
                                             "link, which carries it)") from exc
        query.crs = read_crs("crs", params.get("crs"), conn)
    query.bbox_crs = read_crs("bbox-crs", params.get("bbox-crs"), conn)
    if params.get("bbox-crs") and not params.get("bbox"):
        raise bad_parameter("bbox-crs", "given without bbox")
    if params.get("bbox"):
        query.bbox = read_bbox(params["bbox"], query.bbox_crs)
    query.dates = read_datetime(params.get("datetime"), collection)
    query.filters = read_filters(collection, params)
    if "geometry" in collection.extra_params:
        query.baseline = read_geometry_choice(collection, params)
    if "include_voided" in collection.extra_params:
        query.include_voided = read_include_voided(params)
    return query


def read_feature_params(collection: Collection, params: Mapping[str, str], conn: Connection) -> ItemsQuery:
    check_known_params(collection, params, ("crs", "f", "datetime"))
    read_format(params)
    query = ItemsQuery(collection=collection)
    query.crs = read_crs("crs", params.get("crs"), conn)
    query.dates = read_datetime(params.get("datetime"), collection)
    if "geometry" in collection.extra_params:
        query.baseline = read_geometry_choice(collection, params)
    return query


# --- SQL ----------------------------------------------------------------------------------------------
def _bbox_condition(query: ItemsQuery, geom: str, params: dict[str, Any]) -> str | None:
    if query.bbox is None:
        return None
    x1, y1, x2, y2 = query.bbox
    params.update(bx1=x1, by1=y1, bx2=x2, by2=y2)
    if query.bbox_crs.srid == 4326:
        if x1 > x2:  # crosses the antimeridian
            return (f"({geom} && ST_MakeEnvelope(:bx1, :by1, 180, :by2, 4326) "
                    f"OR {geom} && ST_MakeEnvelope(-180, :by1, :bx2, :by2, 4326)) AND "
                    f"(ST_Intersects({geom}, ST_MakeEnvelope(:bx1, :by1, 180, :by2, 4326)) "
                    f"OR ST_Intersects({geom}, ST_MakeEnvelope(-180, :by1, :bx2, :by2, 4326)))")
        return f"{geom} && ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, 4326) AND " \
               f"ST_Intersects({geom}, ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, 4326))"
    srid = int(query.bbox_crs.srid)
    area = (f"ST_Transform(ST_Segmentize(ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, {srid}), "
            f"(:bx2 - :bx1) / 32.0 + 1e-9), 4326)")
    return f"{geom} && {area} AND ST_Intersects({geom}, {area})"


def _hazards_source(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, list[str]]:
    as_of = query.dates.as_of
    if as_of is not None:
        params["as_of"] = as_of
    source = f"({hazards_sql(as_of is not None)}) f"
    geom = "f.baseline_geom" if query.baseline else "f.remaining_geom"
    where = []
    for name in ("state", "classification", "status"):
        if name in query.filters:
            column = "state_iso3" if name == "state" else name
            where.append(f"f.{column} = :{name}")
            params[name] = query.filters[name]
    return source, where + [c for c in [_bbox_condition(query, geom, params)] if c]


def _events_source(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, list[str]]:
    source = "land_release_events f"
    where = [] if query.include_voided else ["f.voided_at IS NULL"]
    dates = query.dates
    if dates.as_of is not None:
        where.append("f.date <= :as_of")
        params["as_of"] = dates.as_of
    if dates.start is not None:
        where.append("f.date >= :date_start")
        params["date_start"] = dates.start
    if dates.end is not None:
        where.append("f.date <= :date_end")
        params["date_end"] = dates.end
    for name in ("state", "kind"):
        if name in query.filters:
            column = "state_iso3" if name == "state" else name
            where.append(f"f.{column} = :{name}")
            params[name] = query.filters[name]
    bbox = _bbox_condition(query, "f.released_geom", params)
    if bbox:
        where.append(bbox)
    return source, where


def _hazard_feature_geometry(query: ItemsQuery) -> str:
    # a hazard released in full shows the land it covered (its baseline): GeoJSON Features of OGC API -
    # Features always have a geometry
    geom = "f.baseline_geom" if query.baseline else \
        "(CASE WHEN f.status = 'released' THEN f.baseline_geom ELSE f.remaining_geom END)"
    return sql_geojson(geom, query.crs)


def _event_feature_geometry(query: ItemsQuery) -> str:
    # Always a geometry (OGC API - Features): the land released; for a whole-hazard reclassification the
    # land it reclassified (what remained of the hazard then); for an event that released nothing (an
    # earlier-dated event had released its land) the polygon it was recorded with.
    def geojson(expr: str) -> str:
        return f"ST_AsGeoJSON({sql_output_geometry(expr, query.crs)}, {query.crs.digits})::json"

    return f"""CASE WHEN {whole_reclassification_sql('f')} THEN {geojson(reclassified_land_sql('f'))}
                         WHEN f.released_geom IS NULL OR ST_IsEmpty(f.released_geom) THEN {geojson('f.submitted_geom')}
                         ELSE {geojson('f.released_geom')} END"""


COLLECTIONS: dict[str, Collection] = {
    "hazardous_areas": Collection(
        id="hazardous_areas",
        title="Hazardous areas (what remains)",
        description="Suspected (SHA) and confirmed (CHA) hazardous areas with the land that remains to be "
                    "released; `geometry=baseline` gives the polygon as recorded; `datetime=YYYY-MM-DD` gives "
                    "the ledger as it stood at the end of that day. Areas are geodesic square metres.",
        filters=("state", "classification", "status"),
        properties=HAZARD_PROPERTIES,
        source=_hazards_source,
        feature_geometry=_hazard_feature_geometry,
        tile_geometry=lambda query: "f.baseline_geom" if query.baseline else "f.remaining_geom",
        extent_table="hazardous_areas", extent_geometry="baseline_geom", extent_date="recorded_on",
        extra_params=("geometry",),
    ),
    "land_release_events": Collection(
        id="land_release_events",
        title="Land-release events (what was released)",
        description="Cancellation, reduction, clearance and reclassification events with the land each released "
                    "(reclassification moves land from SHA to CHA and is not released land: releases_land=false), "
                    "items destroyed, and areas in geodesic square metres. Voided events are left out unless "
                    "include_voided=true.",
        filters=("state", "kind"),
        properties=EVENT_PROPERTIES,
        source=_events_source,
        feature_geometry=_event_feature_geometry,
        tile_geometry=lambda query: "f.released_geom",
        extent_table="land_release_events", extent_geometry="released_geom", extent_date="date",
        extra_params=("include_voided",),
        date_intervals=True,
        voided_readable_by_id=True,
    ),
}


def source_and_conditions(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, list[str]]:
    return query.collection.source(query, params)


def feature_sql(query: ItemsQuery) -> str:
    """One feature as GeoJSON text: its id, its geometry and its properties as the layer declares them."""
    return f"""json_build_object(
        'type', 'Feature', 'id', f.id,
        'geometry', {query.collection.feature_geometry(query)},
        'properties', {sql_json_properties(query.collection.properties)})::text"""


def page_sql(query: ItemsQuery) -> tuple[str, str, dict[str, Any]]:
    """The SQL of one page of features (one JSON text per row, one row more than the page) and of the count."""
    params: dict[str, Any] = {"limit": query.limit + 1, "offset": 0 if query.after else query.offset}
    source, where = source_and_conditions(query, params)
    condition = " AND ".join(where) if where else "true"
    count = f"SELECT count(*) FROM {source} WHERE {condition}"
    if query.after is not None:
        params["after"] = query.after
        condition += " AND f.id > :after"
    page = (f"SELECT f.id, {feature_sql(query)} FROM (SELECT * FROM {source} WHERE {condition} "
            f"ORDER BY f.id LIMIT :limit OFFSET :offset) f ORDER BY f.id")
    return page, count, params


def _copy_statement(conn: Connection, sql: str) -> str:
    """`COPY (sql) TO STDOUT` with the bind parameters in psycopg's form (it binds them client-side)."""
    compiled = text(sql).compile(dialect=conn.dialect)
    return f"COPY ({compiled}) TO STDOUT {_COPY_OPTIONS}"


# --- pages ------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PageNotSpooled(Problem):
    """The page could not be held until sent (temporary storage full or failing): nothing was sent."""

    def __init__(self, error: OSError) -> None:
        super().__init__(503, f"The service could not hold the page until sending it ({error.strerror or error}); "
                              "try again shortly, or ask for a smaller page (limit).", headers={"Retry-After": "30"})


@dataclass
class Page:
    """A FeatureCollection made in full before anything is sent: `size` bytes in `spool` (memory up to
    `SPOOL_MEMORY_BYTES`, beyond that an unnamed temporary file)."""

    spool: tempfile.SpooledTemporaryFile[bytes]
    size: int

    def chunks(self) -> Iterator[bytes]:
        """The document in `CHUNK_BYTES` pieces, then the spool is closed (also when the client goes away).

        A spool that gives fewer than `size` bytes raises: after the status line the only honest answer
        left is a cut connection, which the client sees as short of the Content-Length.
        """
        try:
            self.spool.seek(0)
            sent = 0
            while sent < self.size:
                data = self.spool.read(min(CHUNK_BYTES, self.size - sent))
                if not data:
                    raise OSError(f"the page spool ended after {sent} of {self.size} bytes")
                sent += len(data)
                yield data
        finally:
            self.spool.close()


def _copy_page(query: ItemsQuery, links: Callable[[int, bool, uuid.UUID | None], list[dict[str, Any]]],
               spool: tempfile.SpooledTemporaryFile[bytes], engine: Engine) -> None:
    """The whole page into the spool, as PostgreSQL COPYs it (through `engine`)."""
    page, count, params = page_sql(query)
    pending = bytearray(f'{{"type":"FeatureCollection","timeStamp":"{_now()}","features":['.encode())
    returned, has_next, last_id = 0, False, None
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")  # the page and its count see the same data
        conn.execute(text("SELECT 1"))  # the transaction starts here, in that isolation level
        conn.exec_driver_sql("SET LOCAL client_encoding = 'UTF8'")  # the bytes go out as they come
        statement = _copy_statement(conn, page)
        try:
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement, params) as copy:
                for row in copy:  # one row per message: b"<id>\x01<feature>\n"
                    if returned == query.limit:  # the one row more than the page: there is a next page
                        has_next = True
                        continue
                    if returned:
                        pending += b","
                    pending += row[_ID_LENGTH + 1:-1]
                    last_id = bytes(row[:_ID_LENGTH])  # the row's memory is reused for the next one
                    returned += 1
                    if len(pending) >= CHUNK_BYTES:
                        spool.write(pending)
                        pending = bytearray()
        except psycopg.Error as exc:  # raised by the driver itself: to the service's handlers
            raise DBAPIError.instance(statement, params, exc, psycopg.Error) from exc
        first_page = query.offset == 0 and query.after is None
        matched: int | None = None  # left out of the pages in the middle (counting is the cost of a page)
        if not has_next and query.after is None and (returned > 0 or query.offset == 0):
            matched = query.offset + returned
        elif first_page or not has_next:
            matched = conn.execute(text(count), params).scalar_one()
        conn.rollback()
    last = uuid.UUID(last_id.decode()) if last_id is not None else None
    tail = {"numberMatched": matched, "numberReturned": returned, "links": links(returned, has_next, last)}
    if matched is None:
        del tail["numberMatched"]
    spool.write(pending + ("]," + json.dumps(tail)[1:]).encode())


def make_page(query: ItemsQuery, links: Callable[[int, bool, uuid.UUID | None], list[dict[str, Any]]],
              engine: Engine | None = None) -> Page:
    """The FeatureCollection as PostGIS produces it (header, features, then counts and links), complete.

    `links(number_returned, has_next, last_id)` gives the links for the end of the document. The page's
    statements have finished (and their connection is back in the pool) when this returns, so any
    database error, a statement timeout included, is raised here, before a status line is sent; the
    client's pace never holds a statement or a connection. The page is read through `engine` (default
    the primary's).
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed by Page.chunks
    try:
        _copy_page(query, links, spool, engine or database.get_engine())
        return Page(spool, spool.tell())
    except OSError as exc:  # the temporary file: disk full, or failing
        spool.close()
        raise PageNotSpooled(exc) from exc
    except BaseException:
        spool.close()
        raise


def feature_text(query: ItemsQuery, feature_id: str, engine: Engine | None = None) -> str:
    """One feature as GeoJSON text, or a 404 (read through `engine`, default the primary's)."""
    try:
        key = uuid.UUID(feature_id)
    except ValueError as exc:
        raise Problem(404, f"No feature '{feature_id}' in {query.collection.id} (ids are UUIDs)") from exc
    params: dict[str, Any] = {"id": key}
    source, where = source_and_conditions(query, params)
    if query.collection.voided_readable_by_id:
        where = [w for w in where if w != "f.voided_at IS NULL"]  # a voided event is still readable by id
    condition = " AND ".join([*where, "f.id = :id"])
    with (engine or database.get_engine()).connect() as conn:
        row = conn.execute(text(f"SELECT {feature_sql(query)} FROM {source} WHERE {condition}"), params).scalar()
    if row is None:
        raise Problem(404, f"No feature '{feature_id}' in {query.collection.id}"
                           + (f" as of {query.dates.as_of}" if query.dates.as_of else ""))
    return row


# --- metadata ---------------------------------------------------------------------------------------
def collection_extent(conn: Connection, collection: Collection, states: list[str] | None = None) -> dict[str, Any]:
    """Where and since when the collection has features; over `states` only when given (a key's scope)."""
    in_states = "" if states is None else " AND state_iso3 = ANY(:states)"
    geom, day, table = collection.extent_geometry, collection.extent_date, collection.extent_table
    rows = f"{table} WHERE voided_at IS NULL{in_states}"
    sql = f"SELECT x.*, (SELECT min({day}) FROM {rows}) AS t0 FROM ({sql_extent(geom, rows)}) x"
    # across the antimeridian x1 > x2 (OGC API - Features, the bbox of an extent)
    x1, y1, x2, y2, t0 = conn.execute(text(sql), {"states": states}).one()
    bbox = [[x1, y1, x2, y2]] if x1 is not None else [[-180.0, -90.0, 180.0, 90.0]]
    return {
        "spatial": {"bbox": bbox, "crs": CRS84_URI},
        "temporal": {"interval": [[f"{t0.isoformat()}T00:00:00Z" if t0 else None, None]],
                     "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
    }


def collection_document(conn: Connection, collection: Collection, base: str,
                        states: list[str] | None = None) -> dict[str, Any]:
    href = f"{base}/collections/{collection.id}"
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "links": [
            {"rel": "self", "type": "application/json", "title": "This collection", "href": href},
            {"rel": "items", "type": GEOJSON, "title": "The features", "href": f"{href}/items"},
            {"rel": "item", "type": "application/vnd.mapbox-vector-tile", "templated": True,
             "title": "Mapbox vector tiles (WebMercatorQuad)",
             "href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"},
        ],
        "extent": collection_extent(conn, collection, states),
        "crs": LISTED_CRS,
        "storageCrs": CRS84_URI,
    }


def landing_page(base: str) -> dict[str, Any]:
    return {
        "title": "landrelease: hazardous areas and land release",
        "description": "Mine action hazardous areas (SHA/CHA) and land-release events (IMAS 07.11) as "
                       "OGC API - Features layers and vector tiles.",
        "links": [
            {"rel": "self", "type": "application/json", "title": "This document", "href": f"{base}/"},
            {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "The API definition (OpenAPI 3.0)", "href": f"{base}/api"},
            {"rel": "service-doc", "type": "text/html", "title": "The API documentation", "href": f"{base}/docs"},
            {"rel": "conformance", "type": "application/json", "title": "Conformance classes",
             "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "title": "The collections", "href": f"{base}/collections"},
        ],
    }


# --- the OpenAPI document, as 3.0 -------------------------------------------------------------------
def _as_openapi_30(node: Any) -> Any:
    """Rewrite the few OpenAPI 3.1 spellings FastAPI uses (null in anyOf, examples lists) as 3.0."""
    if isinstance(node, list):
        return [_as_openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_openapi_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            out["nullable"] = True
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        out["type"] = types[0] if types else "string"
        if len(types) < len(node.get("type", [])):
            out["nullable"] = True
    if "examples" in out and isinstance(out["examples"], list) and "in" not in out and "content" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(out.get(key), int | float) and not isinstance(out.get(key), bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = out.pop(key)
            out[key] = True
    return out


def openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    converted = _as_openapi_30(document)
    converted["openapi"] = "3.0.3"
    converted.pop("jsonSchemaDialect", None)
    converted.pop("webhooks", None)
    return converted


def items_parameters(collection_ids: list[str]) -> list[dict[str, Any]]:
    """The items parameters as OpenAPI 3.0, with the limit maximum declared for clients (GDAL's PAGE_SIZE)."""
    def q(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
                **extra}

    return [
        q("limit", f"Features per page (default {DEFAULT_LIMIT}; a larger value than the maximum is served as "
                   "the maximum)", {"type": "integer", "minimum": 1, "maximum": max_limit(),
                                    "default": DEFAULT_LIMIT}, style="form", explode=False),
        q("offset", "Features to skip (the next/prev links carry it)", {"type": "integer", "minimum": 0,
                                                                          "default": 0}),
        q("after", "Only features whose id comes after this one, in id order (the next links carry it, with the "
                   "offset of the page for the counts)", {"type": "string", "format": "uuid"}),
        q("bbox", "minx,miny,maxx,maxy in bbox-crs (CRS84 by default)",
          {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}, style="form", explode=False),
        q("bbox-crs", "CRS of bbox (CRS84 by default; EPSG URIs accepted)", {"type": "string", "format": "uri"}),
        q("datetime", "An instant (the ledger as of the end of that day) or, for land_release_events, an "
                      "interval start/end (either may be ..)", {"type": "string"}, style="form", explode=False),
        q("crs", "Output CRS: CRS84 (default), EPSG:4326 (lat/lon) or any EPSG code as "
                 "http://www.opengis.net/def/crs/EPSG/0/<code>", {"type": "string", "format": "uri"}),
        q("state", "ISO 3166 alpha-3 code of the State", {"type": "string", "pattern": "^[A-Za-z]{3}$"}),
        q("classification", "hazardous_areas only", {"type": "string", "enum": list(CLASSIFICATIONS)}),
        q("status", "hazardous_areas only", {"type": "string", "enum": list(HAZARD_STATUSES)}),
        q("geometry", "hazardous_areas only: remaining (default) or baseline",
          {"type": "string", "enum": ["remaining", "baseline"]}),
        q("kind", "land_release_events only", {"type": "string", "enum": list(EVENT_KINDS)}),
        q("include_voided", "land_release_events only: include voided events (flagged voided=true)",
          {"type": "boolean", "default": False}),
        q("f", "Output format", {"type": "string", "enum": ["json", "geojson"]}),
    ]
