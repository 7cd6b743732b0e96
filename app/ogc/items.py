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

Pages are ordered by id (or by `sortby`, then by id: the order is total) and addressed by `offset`;
the `next` links also carry `after`, the id of the page's last feature, so the next page starts from
the id index there (keyset paging: every page of a 200,000-feature layer costs the same, where an
offset makes PostgreSQL walk past every earlier feature, and a feature added or removed between two
requests does not shift the pages). Under `sortby`, `after` also carries that feature's sort values
(`<id>~<base64 JSON>`), read when its link is made, and the next page starts after them in the sort's
order (missing values last); a feature gone from the layer by then leaves the link to its offset.
`filter` and the queryables' parameters (`app.ogc.filters`) add their bound conditions to the
collection's own; `properties` and `skipGeometry` narrow what each feature carries.
`numberMatched` (optional in OGC API - Features) is on the first page and the last: known without
counting on the last page of offset paging, counted (without geometry) otherwise; the pages in
between leave it out, since counting 200,000 features again for each page cost as much as making the
page.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, text

from app import database
from app.layers import sql_json_properties
from app.ogc import pages
from app.ogc.collections import source_and_conditions
from app.ogc.params import ItemsQuery
from app.problems import Problem


def feature_sql(query: ItemsQuery) -> str:
    """One feature as GeoJSON text: its id, its geometry (JSON null with skipGeometry) and its properties as
    the layer declares them (only those asked for with `properties`)."""
    geometry = "NULL::json" if query.skip_geometry else query.collection.feature_geometry(query)
    return f"""json_build_object(
        'type', 'Feature', 'id', f.id,
        'geometry', {geometry},
        'properties', {sql_json_properties(query.output_properties)})::text"""


def _sort_parts(query: ItemsQuery) -> list[tuple[str, bool]]:
    """The page's order as (expression, descending) parts: each sort key with its missing values last,
    then the id (ties are broken by id, so the order is total and keyset paging exact)."""
    parts: list[tuple[str, bool]] = []
    for key in query.sortby:
        parts += [(f"(({key.prop.sql}) IS NULL)", False), (f"({key.prop.sql})", key.descending)]
    return [*parts, ("f.id", False)]


def _order_by(query: ItemsQuery) -> str:
    return ", ".join(f"{sql} {'DESC' if descending else 'ASC'}" for sql, descending in _sort_parts(query))


def _keyset_condition(query: ItemsQuery, params: dict[str, Any]) -> str:
    """The features after the one `after` names, in the page's order: a lexicographic comparison of the
    sort parts with that feature's values (a missing value equals every missing value)."""
    assert query.after is not None
    params["after"] = query.after
    if not query.sortby:
        return "f.id > :after"
    values: list[tuple[str, bool, str]] = []  # expression, descending, bound value
    for index, (key, value) in enumerate(zip(query.sortby, query.after_key or (), strict=True)):
        values.append((f"(({key.prop.sql}) IS NULL)", False, "true" if value is None else "false"))
        if value is not None:
            params[f"after_{index}"] = _typed_value(key.prop.type, value)
            values.append((f"({key.prop.sql})", key.descending, f":after_{index}"))
    values.append(("f.id", False, ":after"))
    alternatives = []
    for i, (sql, descending, bound) in enumerate(values):
        equal = [f"{s} = {b}" for s, _, b in values[:i]]
        alternatives.append("(" + " AND ".join([*equal, f"{sql} {'<' if descending else '>'} {bound}"]) + ")")
    return "(" + " OR ".join(alternatives) + ")"


def _typed_value(kind: str, value: Any) -> Any:
    """A sort value from a next link, in the property's type (a 400 when it is not of that type)."""
    try:
        if kind == "date":
            return date.fromisoformat(str(value))
        if kind == "date-time":
            return datetime.fromisoformat(str(value))
        if kind == "number":
            return float(value)
        if kind == "integer":
            return int(value)
        if kind == "uuid":
            return uuid.UUID(str(value))
    except (ValueError, TypeError) as exc:
        raise Problem(400, "Parameter 'after': its sort values do not fit sortby: follow the next link",
                      title="Invalid parameter",
                      invalid_params=[{"name": "after", "reason": "sort values that do not fit"}]) from exc
    return value


def _conditions(query: ItemsQuery, params: dict[str, Any]) -> tuple[str, str]:
    source, where = source_and_conditions(query, params)
    params.update(query.condition_params)
    return source, " AND ".join([*where, *query.conditions]) or "true"


def page_sql(query: ItemsQuery) -> tuple[str, str, dict[str, Any]]:
    """The SQL of one page of features (one JSON text per row, one row more than the page) and of the count."""
    params: dict[str, Any] = {"limit": query.limit + 1, "offset": 0 if query.after else query.offset}
    source, condition = _conditions(query, params)
    count = f"SELECT count(*) FROM {source} WHERE {condition}"
    if query.after is not None:
        condition += " AND " + _keyset_condition(query, params)
    order = _order_by(query)
    page = (f"SELECT f.id, {feature_sql(query)} FROM (SELECT * FROM {source} WHERE {condition} "
            f"ORDER BY {order} LIMIT :limit OFFSET :offset) f ORDER BY {order}")
    return page, count, params


def sort_values(query: ItemsQuery, feature_id: uuid.UUID, engine: Engine | None = None) -> tuple[Any, ...] | None:
    """The sort values of one feature of the page (what its next link carries with sortby), or None when it
    has left the layer since the page was made."""
    params: dict[str, Any] = {"id": feature_id}
    source, _ = source_and_conditions(query, params)
    values = ", ".join(f"({key.prop.sql})" for key in query.sortby)
    with (engine or database.get_engine()).connect() as conn:
        row = conn.execute(text(f"SELECT json_build_array({values}) FROM {source} WHERE f.id = :id"), params).first()
    return None if row is None else tuple(row[0])


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


def feature_id_or_404(query: ItemsQuery, feature_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(feature_id)
    except ValueError as exc:
        raise Problem(404, f"No feature '{feature_id}' in {query.collection.id} (ids are UUIDs)") from exc


def feature_select(query: ItemsQuery, feature_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """The SELECT of one feature's GeoJSON text (no row: no such feature), and its parameters."""
    params: dict[str, Any] = {"id": feature_id}
    source, where = source_and_conditions(query, params)
    if query.collection.voided_readable_by_id:
        where = [w for w in where if w != "f.voided_at IS NULL"]  # a voided event is still readable by id
    condition = " AND ".join([*where, "f.id = :id"])
    return f"SELECT {feature_sql(query)} FROM {source} WHERE {condition}", params


def feature_text(query: ItemsQuery, feature_id: str, engine: Engine | None = None) -> str:
    """One feature as GeoJSON text, or a 404 (read through `engine`, default the primary's)."""
    sql, params = feature_select(query, feature_id_or_404(query, feature_id))
    with (engine or database.get_engine()).connect() as conn:
        row = conn.execute(text(sql), params).scalar()
    if row is None:
        raise Problem(404, f"No feature '{feature_id}' in {query.collection.id}"
                           + (f" as of {query.dates.as_of}" if query.dates.as_of else ""))
    return row
