"""The OGC collections, each an object: its source SQL, its properties (declared in `app.layers`), the
geometry of its features and its tiles, and where its extent is read from; and the metadata documents
(landing page, conformance, collection) made from them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.geometry import sql_extent
from app.layers import (
    EVENT_PROPERTIES,
    HAZARD_PROPERTIES,
    PENDING_STATUSES,
    SUBMISSION_PROPERTIES,
    Property,
    sql_releases_land,
)
from app.ledger.as_of import hazards_sql, reclassified_land_sql, whole_reclassification_sql
from app.ogc.crs import CRS84_URI, LISTED_CRS, sql_geojson, sql_geojson_geometry
from app.ogc.tilesets import TILESETS_VECTOR, TILING_SCHEMES
from app.places.layers import COUNTRY_PROPERTIES, PROVINCE_PROPERTIES
from app.problems import Problem
from app.submissions import sql_claimed_m2

if TYPE_CHECKING:
    from app.access import ApiKey
    from app.ogc.params import ItemsQuery

GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    # Part 3 (Filtering) and CQL2: each class tested in tests/test_ogc_filter.py
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
]


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
    # False: not public; read with a key only, each key its own part (app.access.scope_filters: its State, an
    # operator its organisation's), and no other reader learns it is there (404)
    public: bool = True


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


def _pending_submissions_source(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, list[str]]:
    """The submissions not approved yet, each with its geometry (a whole-hazard reclassification, which has none,
    the land of its hazard that remains) and the land a land-release report would release now; as of a date, the
    ones submitted by then (an interval: submitted within it)."""
    event_kind = "s.content -> 'event' ->> 'kind'"
    released = sql_claimed_m2("s", "h")  # stored with the report while its hazard does not change
    statuses = ", ".join(f"'{s}'" for s in PENDING_STATUSES)
    source = f"""(SELECT s.id, s.state_iso3, s.kind, s.status, {event_kind} AS event_kind, s.organisation_id,
                         s.hazard_id, s.revision, s.feature_count, s.area_m2, s.date_of_information, s.submitted_by,
                         s.submitted_at, s.comment, COALESCE(s.geom, h.remaining_geom) AS geom,
                         CASE WHEN s.kind = 'release' THEN
                             CASE WHEN {sql_releases_land(event_kind)} AND s.geom IS NOT NULL THEN {released} ELSE 0 END
                         END AS would_release_m2
                  FROM submissions s LEFT JOIN hazardous_areas h ON h.id = s.hazard_id
                  WHERE s.status IN ({statuses})) f"""
    where = []
    dates = query.dates
    for name, bound, condition in (("as_of", dates.as_of, "< CAST(:as_of AS date) + 1"),
                                   ("date_start", dates.start, ">= CAST(:date_start AS date)"),
                                   ("date_end", dates.end, "< CAST(:date_end AS date) + 1")):
        if bound is not None:
            where.append(f"f.submitted_at {condition}")
            params[name] = bound
    for name, column in (("state", "state_iso3"), ("organisation_of_key", "organisation_id")):
        if name in query.filters:
            where.append(f"f.{column} = :{name}")
            params[name] = query.filters[name]
    bbox = _bbox_condition(query, "f.geom", params)
    return source, where + ([bbox] if bbox else [])


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
        return sql_geojson_geometry(expr, query.crs)

    return f"""CASE WHEN {whole_reclassification_sql('f')} THEN {geojson(reclassified_land_sql('f'))}
                         WHEN f.released_geom IS NULL OR ST_IsEmpty(f.released_geom) THEN {geojson('f.submitted_geom')}
                         ELSE {geojson('f.released_geom')} END"""


Source = Callable[["ItemsQuery", dict[str, Any]], tuple[str, list[str]]]


def _boundaries_source(table: str, key: str, by_state: bool) -> Source:
    """The rows of a boundary table (app/places), with a feature id made from their code (a name-based UUID)."""
    def source(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, list[str]]:
        where = []
        if by_state and "state" in query.filters:
            where.append("f.iso3 = :state")
            params["state"] = query.filters["state"]
        bbox = _bbox_condition(query, "f.geom", params)
        return (f"(SELECT md5('{table}:' || b.{key})::uuid AS id, b.* FROM {table} b) f",
                where + ([bbox] if bbox else []))
    return source


def _boundaries_extent(table: str) -> str:
    """A boundary table as the extent reads a layer: no dates, nothing voided."""
    return (f"(SELECT geom, NULL::date AS no_date, NULL::timestamptz AS voided_at, iso3 AS state_iso3 "
            f"FROM {table}) b")


_BOUNDARIES = ("Natural Earth 1:10m (public domain), as Debian's qgis-common ships it (geodata/boundaries); "
               "borders are approximate (about 1-2 km)")

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
    "countries": Collection(
        id="countries",
        title="Countries (admin 0)",
        description=f"Country boundaries by ISO 3166-1 alpha-3 code: {_BOUNDARIES}.",
        filters=(),
        properties=COUNTRY_PROPERTIES,
        source=_boundaries_source("countries", "iso3", by_state=False),
        feature_geometry=lambda query: sql_geojson("f.geom", query.crs),
        tile_geometry=lambda query: "f.geom",
        extent_table=_boundaries_extent("countries"), extent_geometry="geom", extent_date="no_date",
    ),
    "provinces": Collection(
        id="provinces",
        title="Provinces (admin 1)",
        description=f"Province boundaries, the places a hazard's region refers to (`state=` for one State's): "
                    f"{_BOUNDARIES}.",
        filters=("state",),
        properties=PROVINCE_PROPERTIES,
        source=_boundaries_source("provinces", "code", by_state=True),
        feature_geometry=lambda query: sql_geojson("f.geom", query.crs),
        tile_geometry=lambda query: "f.geom",
        extent_table=_boundaries_extent("provinces"), extent_geometry="geom", extent_date="no_date",
    ),
    "pending_submissions": Collection(
        id="pending_submissions",
        title="Submissions awaiting review (not public)",
        description="What operators reported and the national centre has not approved yet (submitted, or returned "
                    "for correction): new hazards, batches and land-release reports with the polygons submitted, "
                    "and the land a report would release now. Nothing here counts in the other collections until "
                    "it is approved. Read with a key only: the State's (an operator: its organisation's). "
                    "`datetime` selects by the day submitted.",
        filters=("state",),
        properties=SUBMISSION_PROPERTIES,
        source=_pending_submissions_source,
        feature_geometry=lambda query: sql_geojson("f.geom", query.crs),
        tile_geometry=lambda query: "f.geom",
        # the extent of the States it may hold (the boundaries): where the submissions lie is not told to anyone
        extent_table=_boundaries_extent("countries"), extent_geometry="geom", extent_date="no_date",
        date_intervals=True,
        public=False,
    ),
}


def collection_or_404(collection_id: str, key: ApiKey | None = None) -> Collection:
    """The collection, when the reader (`key`; None: anonymous) may know of it; else a 404 naming those it may."""
    readable = {c.id: c for c in readable_collections(key)}
    if collection_id not in readable:
        raise Problem(404, f"No collection '{collection_id}': the collections are {', '.join(readable)} "
                           "(GET /collections).")
    return readable[collection_id]


def readable_collections(key: ApiKey | None) -> list[Collection]:
    """The collections the reader (`key`; None: anonymous) may know of."""
    return [c for c in COLLECTIONS.values() if c.public or key is not None]


def source_and_conditions(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, list[str]]:
    return query.collection.source(query, params)


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
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": "application/schema+json",
             "title": "The queryables (filter, and a query parameter each)", "href": f"{href}/queryables"},
            {"rel": TILESETS_VECTOR, "type": "application/json", "title": "The vector tilesets (OGC API - Tiles)",
             "href": f"{href}/tiles"},
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
            {"rel": TILING_SCHEMES, "type": "application/json", "title": "The tile matrix sets",
             "href": f"{base}/tileMatrixSets"},
        ],
    }
