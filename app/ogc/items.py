"""The ledger as OGC API - Features layers (Part 1 Core, GeoJSON; Part 2 CRS), built and streamed by PostGIS.

Two collections:
- `hazardous_areas`: every hazard that is not voided, with its remaining geometry (or, with
  `geometry=baseline`, the polygon it was recorded with); a hazard released in full (status
  `released`, remaining area 0) has the polygon it was recorded with, the land that was released;
  `datetime=D` shows the ledger as it stood at the end of day D (`app.ledger.as_of.hazards_sql`).
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

import uuid
from typing import Any

from sqlalchemy import Engine, text

from app import database
from app.layers import sql_json_properties
from app.ogc import pages
from app.ogc.collections import source_and_conditions
from app.ogc.params import ItemsQuery
from app.problems import Problem


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


def make_page(query: ItemsQuery, links: pages.Links, engine: Engine | None = None) -> pages.Page:
    """The FeatureCollection as PostGIS produces it (header, features, then counts and links), complete.

    `links(number_returned, has_next, last_id)` gives the links for the end of the document. The page's
    statements have finished (and their connection is back in the pool) when this returns, so any
    database error, a statement timeout included, is raised here, before a status line is sent; the
    client's pace never holds a statement or a connection. The page is read through `engine` (default
    the primary's).
    """
    page, count, params = page_sql(query)
    return pages.make_page(pages.PageRequest(page, count, params, limit=query.limit, offset=query.offset,
                                             after=query.after), links, engine)


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
