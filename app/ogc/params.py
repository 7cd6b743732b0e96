"""The parameters of the OGC items and tiles requests, read and checked: a 400 names the first bad one."""
from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.geometry import CRSNotKnown, parse_crs
from app.layers import EVENT_KINDS, Property
from app.models import CLASSIFICATIONS, HAZARD_STATUSES
from app.ogc import filters
from app.ogc.collections import COLLECTIONS, Collection
from app.ogc.crs import COLLECTION_CRS, CRS84, CRS84_SPELLINGS, CRS84_URI, EPSG_URI, OutputCrs, defined_at, listed_crs
from app.params import ISO3_PATTERN
from app.problems import Problem
from app.settings import get_settings

DEFAULT_LIMIT = 100
# `lang`: the language of a problem, as on every endpoint (app.problems; the dashboard's pages send it)
COMMON_ITEM_PARAMS = ("limit", "offset", "after", "bbox", "bbox-crs", "datetime", "crs", "f", "filter", "filter-lang",
                      "filter-crs", "sortby", "properties", "skipGeometry", "lang")
# a tile (and its TileJSON) takes the items' filters, with the same meaning: bbox, datetime, filter, the queryables
TILE_PARAMS = ("bbox", "bbox-crs", "datetime", "f", "filter", "filter-lang", "filter-crs", "lang")
FILTER_VALUES: dict[str, tuple[str, ...]] = {
    "classification": CLASSIFICATIONS, "status": HAZARD_STATUSES, "kind": EVENT_KINDS,
}


def max_limit() -> int:
    return get_settings().max_page_size


def bad_parameter(name: str, reason: str) -> Problem:
    return Problem(400, f"Parameter '{name}': {reason}", title="Invalid parameter",
                   invalid_params=[{"name": name, "reason": reason}])


def read_crs(name: str, value: str | None, conn: Connection) -> OutputCrs:
    """CRS84 (lon/lat) by default; a listed EPSG CRS in its own axis order (EPSG:4326 is lat/lon). A CRS
    the collections do not list is a 400 (OGC API - Features Part 2), even one PROJ knows."""
    if value is None or value.strip() == "":
        return CRS84
    if value.strip().lower() in CRS84_SPELLINGS:
        return CRS84
    offered = f"the collections offer {CRS84_URI} and EPSG codes as {EPSG_URI.format(code='<code>')} (their `crs` list)"
    try:
        crs = parse_crs(value)
    except CRSNotKnown as exc:
        raise bad_parameter(name, f"{exc}; {offered}") from exc
    code = crs.to_epsg()
    listed = listed_crs(code) if code is not None else None
    if listed is None:
        raise bad_parameter(name, f"'{value}' is not a CRS of these collections; {offered}: "
                                  f"{', '.join(f'EPSG:{c}' for c in COLLECTION_CRS)}")
    known = conn.execute(text("SELECT EXISTS (SELECT 1 FROM spatial_ref_sys WHERE srid = :srid)"),
                         {"srid": listed.srid}).scalar_one()
    if not known:
        raise bad_parameter(name, f"EPSG:{listed.srid} is not a CRS the database can transform to")
    return listed


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
    # Part 3: the filter and the queryables' query parameters, compiled (SQL over `f`, bind parameters)
    conditions: list[str] = field(default_factory=list)
    condition_params: dict[str, Any] = field(default_factory=dict)
    sortby: tuple[SortKey, ...] = ()  # then by id
    after_key: tuple[Any, ...] | None = None  # with sortby: the sort values of the feature `after` names
    properties: tuple[Property, ...] | None = None  # None: every declared property
    skip_geometry: bool = False

    @property
    def output_properties(self) -> tuple[Property, ...]:
        return self.collection.properties if self.properties is None else self.properties


@dataclass(frozen=True)
class SortKey:
    prop: Property
    descending: bool = False


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
    else:
        _check_projected_bbox(x1, y1, x2, y2, crs)
    return x1, y1, x2, y2


def _check_projected_bbox(x1: float, y1: float, x2: float, y2: float, crs: OutputCrs) -> None:
    """A projected bbox must lie where its CRS is defined (PostGIS' transform fails outside it): a 400.
    Its edges are checked at the points where the SQL densifies them."""
    steps = [i / 32 for i in range(33)]
    xs = [x1 + (x2 - x1) * t for t in steps] * 2 + [x1] * 33 + [x2] * 33
    ys = [y1] * 33 + [y2] * 33 + [y1 + (y2 - y1) * t for t in steps] * 2
    if not defined_at(xs, ys, crs.srid):
        raise bad_parameter("bbox", f"{x1},{y1},{x2},{y2} lies (in part) outside where EPSG:{crs.srid} is defined")


def read_filters(collection: Collection, params: Mapping[str, str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for name in collection.filters:
        value = params.get(name)
        if value is None or value == "":
            continue
        if name == "state":
            if not re.fullmatch(ISO3_PATTERN, value):
                raise bad_parameter("state", f"'{value}' is not an ISO 3166 alpha-3 code such as KHM")
            filters[name] = value.upper()
            continue
        allowed = FILTER_VALUES[name]
        if value not in allowed:
            raise bad_parameter(name, f"'{value}' is not one of {', '.join(allowed)}")
        filters[name] = value
    return filters


def check_known_params(collection: Collection, params: Mapping[str, str], allowed: tuple[str, ...],
                       queryables: bool = False) -> None:
    known = set(allowed) | set(collection.filters) | set(collection.extra_params)
    if queryables:
        known |= set(filters.queryable_parameter_names(collection.properties))
    for name in params:
        if name not in known:
            other = [c.id for c in COLLECTIONS.values() if name in c.filters or name in c.extra_params
                     or name in filters.queryable_parameter_names(c.properties)]
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
    check_known_params(collection, params, COMMON_ITEM_PARAMS if paging else TILE_PARAMS, queryables=True)
    read_format(params)
    query = ItemsQuery(collection=collection)
    if paging:
        if params.get("limit"):
            # The maximum is declared in the OpenAPI document (clients such as GDAL page with it): above
            # it is a 400 that says so, not a smaller page than asked for.
            query.limit = _read_int("limit", params["limit"], 1)
            if query.limit > max_limit():
                raise bad_parameter("limit", f"at most {max_limit()} features a page (the declared maximum), "
                                             f"got {query.limit}: follow the next links for more")
        if params.get("offset"):
            query.offset = _read_int("offset", params["offset"], 0)
        if params.get("after"):
            try:
                query.after = uuid.UUID(params["after"].partition("~")[0])
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
    read_filter(query, params, conn)
    if paging:
        query.sortby = read_sortby(collection, params.get("sortby"))
        if query.after is not None and query.sortby:
            query.after_key = read_after_key(query, params["after"])
        query.properties = read_properties(collection, params.get("properties"))
        query.skip_geometry = read_boolean("skipGeometry", params.get("skipGeometry"))
    return query


def read_filter(query: ItemsQuery, params: Mapping[str, str], conn: Connection) -> None:
    """`filter` (with `filter-lang`, `filter-crs`) and the queryables' query parameters, compiled into the query."""
    collection = query.collection
    geometry = collection.tile_geometry(query)  # the geometry bbox and the tiles test
    text_value = params.get("filter")
    if params.get("filter-lang") and not text_value:
        raise bad_parameter("filter-lang", "given without filter")
    if params.get("filter-crs") and not text_value:
        raise bad_parameter("filter-crs", "given without filter")
    if text_value:
        tree = filters.parse_filter(text_value, params.get("filter-lang"))
        crs = read_crs("filter-crs", params.get("filter-crs"), conn)
        query.conditions.append(filters.compile_filter(tree, collection.properties, geometry,
                                                       query.condition_params, crs, params.get("filter-lang")))
    equalities = filters.read_queryable_parameters(collection.properties, params, skip=collection.filters)
    query.conditions += filters.compile_parameters(equalities, collection.properties, query.condition_params)


def read_sortby(collection: Collection, value: str | None) -> tuple[SortKey, ...]:
    """`sortby=-remaining_area_m2,recorded_on`: sortable properties, each + (ascending, the default) or -."""
    if value is None or value.strip() == "":
        return ()
    sortable = {p.name: p for p in collection.properties if p.sortable}
    keys: list[SortKey] = []
    for item in value.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-").strip()
        if name not in sortable:
            raise bad_parameter("sortby", f"'{name}' is not a sortable property of {collection.id}; sortable: "
                                          f"{', '.join(sortable)} (each may start with - for descending)")
        if any(k.prop.name == name for k in keys):
            raise bad_parameter("sortby", f"'{name}' is given twice")
        keys.append(SortKey(sortable[name], descending))
    return tuple(keys)


def read_after_key(query: ItemsQuery, token: str) -> tuple[Any, ...]:
    """The sort values carried by a next link's `after` (with sortby): `<id>~<json list of the values>`."""
    _, _, values_text = token.partition("~")
    try:
        values = json.loads(base64.urlsafe_b64decode(values_text.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_parameter("after", "with sortby, follow the next link (it carries the sort values)") from exc
    if not isinstance(values, list) or len(values) != len(query.sortby):
        raise bad_parameter("after", "its sort values do not match sortby: follow the next link")
    return tuple(values)


def after_token(last_id: uuid.UUID, values: tuple[Any, ...]) -> str:
    """What a next link carries as `after` under sortby: the last feature's id and its sort values."""
    encoded = base64.urlsafe_b64encode(json.dumps(list(values), default=str).encode()).decode().rstrip("=")
    return f"{last_id}~{encoded}"


def read_properties(collection: Collection, value: str | None) -> tuple[Property, ...] | None:
    """`properties=name,status`: only these declared properties, in the declared order."""
    if value is None or value.strip() == "":
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    declared = [p.name for p in collection.properties]
    for name in names:
        if name not in declared:
            raise bad_parameter("properties", f"'{name}' is not a property of {collection.id}; properties: "
                                              f"{', '.join(declared)}")
    return tuple(p for p in collection.properties if p.name in names)


def read_boolean(name: str, value: str | None) -> bool:
    text_value = (value or "false").strip().lower()
    if text_value not in ("true", "false"):
        raise bad_parameter(name, f"'{value}' is not true or false")
    return text_value == "true"


def read_feature_params(collection: Collection, params: Mapping[str, str], conn: Connection) -> ItemsQuery:
    check_known_params(collection, params, ("crs", "f", "datetime"))
    read_format(params)
    query = ItemsQuery(collection=collection)
    query.crs = read_crs("crs", params.get("crs"), conn)
    query.dates = read_datetime(params.get("datetime"), collection)
    if "geometry" in collection.extra_params:
        query.baseline = read_geometry_choice(collection, params)
    return query
