"""A State's land-release history applied in bulk: many events onto many hazards, set-based, ledger-exact.

The outcome is the ledger's (`app.ledger.book`), as if each event had been recorded with
`record_event` in the ledger's order (by date, then the kind order of one day): every hazard touched
is replayed from its baseline through all its valid events, those already stored and the new ones, and
each event releases what its polygon covers of what remained just before it, with the same SQL
(`book.sql_release_step`, over `app.geometry`'s grid overlays and sliver rule). The order of sending
cannot change an accepted outcome (the ledger's own guarantee); it can only change which event a
refusal names, and the history import takes the ledger's order.

How: the new events are COPYed into a temporary table, checked there and inserted in one statement;
the valid events of the touched hazards are ranked by `LEDGER_ORDER` within each hazard, and step
k = 1 .. the largest rank is ONE statement over the k-th events of all hazards at once (what remains
of each hazard is kept in a temporary table between steps); the events' released geometries and the
hazards' remaining geometries, areas, status and dates are then written back in two statements.
The steps use both cores: the touched hazards are shared out over `history_workers` database connections
(settings), each stepping its share with the same statement on a thread of its own. The others cannot see
the import's uncommitted hazards and events, so each gets its share's inputs by binary COPY into temporary
tables, and its results are COPYed back into the import's transaction, which alone writes the ledger.
The new events' areas outside their hazards are measured so too, shared out over the same connections.

A hazard with a reclassification that splits part of it off as a CHA (stored, or in the file) takes the
ledger's own per-hazard path instead (`book.replay`, which keeps the split-off CHA equal to what the
event takes, and `overlaps.WriteCheck`): splits are rare, and their child hazards and overlap rules are
not worth a second, set-based copy.

Refusals are the ledger's, and refuse the whole history (the caller's transaction is rolled back):
an unknown hazard, a date in the future, before the hazard was recorded or before the work began, an
event without geometry that is not a reclassification, a reclassification of a CHA, an event that
releases nothing or comes after the hazard is fully released, an event beyond the State's boundary,
an external_id twice in the file or already stored (a 409). Every problem is listed with its row.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np
import shapely
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app import audit, organisations
from app.geometry import MIN_AREA_M2, sql_area, sql_difference
from app.layers import EVENT_INPUTS
from app.ledger import overlaps
from app.ledger.book import EVENT_INPUT_COLUMNS, LEDGER_ORDER, NewEvent, copy_type, replay, sql_release_step
from app.models import ITEM_KINDS
from app.places import boundaries
from app.problems import Problem
from app.settings import get_settings

Progress = Callable[[str, int, int], None]  # (phase, done, total)
MAX_LISTED_PROBLEMS = 1000  # problems listed in a refusal (`problem_count` counts them all)
STORE_CHUNK = 50_000  # new events inserted (and measured outside their hazard) per statement


def _quiet(phase: str, done: int, total: int) -> None:
    """No progress report."""


@dataclass
class HistoryEvent:
    """One event of a history file: its 1-based row, the external_id of its hazard, and the event."""

    row: int
    hazard_external_id: str
    event: NewEvent


_INPUT_TYPES = tuple(copy_type(p.input.sql_type) for p in EVENT_INPUTS if p.input is not None)
_NEW_COLUMNS = ("ord", "id", "hazard_id", *EVENT_INPUT_COLUMNS, *ITEM_KINDS, "organisation_id", "wkb")
_NEW_TYPES = ("int4", "uuid", "uuid", *_INPUT_TYPES, *("int4",) * len(ITEM_KINDS), "uuid", "bytea")
_NEW_TABLE = f"""
    CREATE TEMPORARY TABLE history_new (
        ord integer PRIMARY KEY, id uuid NOT NULL, hazard_id uuid NOT NULL,
        {", ".join(f"{c} {p.input.sql_type}" for c, p in zip(EVENT_INPUT_COLUMNS, EVENT_INPUTS, strict=True)
                   if p.input is not None)},
        {", ".join(f"{item} integer NOT NULL" for item in ITEM_KINDS)},
        organisation_id uuid, wkb bytea
    ) ON COMMIT DROP
"""
_KIND_RANK = {"clearance": 0, "reduction": 1, "cancellation": 2}  # as LEDGER_ORDER ranks the kinds of one day


@dataclass
class _Hazard:
    id: uuid.UUID
    external_id: str
    classification: str
    recorded_on: date
    reclassified_on: date | None
    border_flag: bool


class _Problems:
    """The problems of a history, row by row; `raise_any` refuses it when there is one."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.rows: list[dict[str, Any]] = []
        self.conflict_only = True

    def add(self, item: HistoryEvent, message: str, conflict: bool = False) -> None:
        self.conflict_only &= conflict
        self.rows.append({"row": item.row, "external_id": item.event.external_id,
                          "hazard_external_id": item.hazard_external_id, "message": message})

    def raise_any(self, session: Session) -> None:
        if not self.rows:
            return
        session.rollback()
        self.rows.sort(key=lambda r: r["row"])
        listed = "; ".join(f"row {r['row']}" + (f" ({r['external_id']})" if r["external_id"] else "")
                           + f": {r['message']}" for r in self.rows[:10])
        raise Problem(409 if self.conflict_only else 422,
                      f"{len(self.rows)} of {self.total} events cannot be recorded; nothing was stored. {listed}",
                      title="Events refused", rejected=self.rows[:MAX_LISTED_PROBLEMS], problem_count=len(self.rows))


def apply_history(session: Session, iso3: str, items: list[HistoryEvent], actor: audit.Actor, *, import_id: str,
                  source: str | None, today: date | None = None, progress: Progress = _quiet) -> dict[str, Any]:
    """Record many events onto hazards of `iso3` (stored, or recorded earlier in this transaction), as the
    ledger would, all or nothing; does not commit (a refusal rolls the transaction back and raises).

    Takes the State's overlap lock, then a row lock on every hazard touched, in the ledger's lock order.
    """
    today = today or date.today()
    progress("checking events", 0, len(items))
    problems = _Problems(len(items))
    overlaps.lock_state(session, iso3)
    hazards = _hazards(session, iso3, sorted({i.hazard_external_id for i in items}))
    _check_rows(session, iso3, items, hazards, today, problems)
    problems.raise_any(session)
    progress("organisations", 0, 1)
    _organisations(session, iso3, items, actor)
    touched = sorted({hazards[i.hazard_external_id].id for i in items})
    split_hazards = _split_hazards(session, touched, items, hazards)
    checks = [overlaps.WriteCheck(session, iso3, h) for h in split_hazards]  # a split can give land back
    ids = [uuid.uuid4() for _ in items]
    progress("storing events", 0, len(items))
    _store(session, iso3, items, ids, hazards, progress)
    progress("checking boundaries", 0, len(items))
    outside = boundaries.find_outside(session, _OUTSIDE, {})
    row_of = {ids[k]: item for k, item in enumerate(items)}
    for o in outside:
        problems.add(row_of[o.id], o.message(iso3) + " (outside its hazard too)")
    problems.raise_any(session)
    plain = sorted(set(touched) - set(split_hazards))
    steps, connections = _replay_set_based(session, plain, progress)
    for item, step in _refused_steps(session):
        problems.add(row_of[item], step)
    for hazard_id, check in zip(split_hazards, checks, strict=True):
        first = next(i for i in items if hazards[i.hazard_external_id].id == hazard_id)
        _replay_split_hazard(session, hazard_id, row_of, first, problems)
        if not problems.rows:
            try:
                check.verify("This history")
            except Problem as exc:
                problems.add(first, exc.detail, conflict=True)
    problems.raise_any(session)
    progress("audit log", 0, len(items))
    _audit(session, iso3, items, ids, hazards, actor, import_id, source)
    progress("audit log", len(items), len(items))
    released = session.execute(text("SELECT count(*) AS n, COALESCE(sum(released_area_m2), 0) AS m2 "
                                    "FROM land_release_events WHERE id IN (SELECT id FROM history_new)")).one()
    session.execute(text("DROP TABLE history_new"))
    return {"events": len(items), "hazards_replayed": len(touched), "steps": steps,
            "replay_connections": connections, "split_hazards": len(split_hazards),
            "released_area_m2": float(released.m2)}


def _hazards(session: Session, iso3: str, external_ids: list[str]) -> dict[str, _Hazard]:
    """The State's valid hazards with these external_ids, each locked as the ledger locks a hazard it writes."""
    rows = session.execute(
        text("SELECT id, external_id, classification, recorded_on, reclassified_on, border_flag "
             "FROM hazardous_areas WHERE state_iso3 = :iso3 AND voided_at IS NULL AND external_id = ANY(:ids) "
             "ORDER BY parent_id IS NOT NULL, id FOR UPDATE"),  # the ledger's lock order: an SHA before its CHAs
        {"iso3": iso3, "ids": external_ids})
    return {r.external_id: _Hazard(r.id, r.external_id, r.classification, r.recorded_on, r.reclassified_on,
                                   r.border_flag) for r in rows}


def _reclassification_order(item: HistoryEvent) -> tuple[date, int, int]:
    """The ledger's order among one hazard's reclassifications: by date, a split before a whole one of its day."""
    return item.event.date, 0 if item.event.geometry is not None else 1, item.row


def _check_rows(session: Session, iso3: str, items: list[HistoryEvent], hazards: dict[str, _Hazard], today: date,
                problems: _Problems) -> None:
    """The ledger's refusals that need no geometry work, row by row (`record_event`'s messages)."""
    seen: dict[str, int] = {}
    named = [i.event.external_id for i in items if i.event.external_id]
    stored = {r.external_id: r.id for r in session.execute(
        text("SELECT id, external_id FROM land_release_events WHERE state_iso3 = :iso3 AND external_id = ANY(:ids)"),
        {"iso3": iso3, "ids": named})}
    reclassifications: dict[str, list[HistoryEvent]] = {}
    for item in items:
        new = item.event
        hazard = hazards.get(item.hazard_external_id)
        if new.external_id:
            if new.external_id in stored:
                problems.add(item, f"An event with external_id '{new.external_id}' already exists in {iso3} "
                                   f"(id {stored[new.external_id]}).", conflict=True)
            elif new.external_id in seen:
                problems.add(item, f"external_id '{new.external_id}' is also the event of row {seen[new.external_id]}")
            seen.setdefault(new.external_id, item.row)
        if hazard is None:
            problems.add(item, f"No hazard with external_id '{item.hazard_external_id}' in {iso3} or in the file.")
            continue
        if new.date > today:
            problems.add(item, f"The event date {new.date} is in the future.")
        if new.start_date is not None and new.start_date > new.date:
            problems.add(item, f"The work began on {new.start_date}, after the event's date {new.date} (the day it "
                               "ended): check start_date and date.")
        if new.date < hazard.recorded_on:
            problems.add(item, f"The event date {new.date} is before the hazard was recorded ({hazard.recorded_on}).")
        if new.geometry is None and new.kind != "reclassification":
            problems.add(item, f"A {new.kind} needs the geometry of the land it released.")
        if new.kind == "reclassification":
            reclassifications.setdefault(item.hazard_external_id, []).append(item)
    if not reclassifications:
        return
    stored_splits: dict[uuid.UUID, list[date]] = {}
    for r in session.execute(
            text("SELECT hazard_id, date FROM land_release_events WHERE hazard_id = ANY(:ids) AND voided_at IS NULL "
                 "AND kind = 'reclassification' AND submitted_geom IS NOT NULL"),
            {"ids": [hazards[h].id for h in reclassifications if h in hazards]}):
        stored_splits.setdefault(r.hazard_id, []).append(r.date)
    for external_id, group in reclassifications.items():
        hazard = hazards[external_id]
        cha_since = hazard.recorded_on if hazard.classification == "CHA" else hazard.reclassified_on
        splits = [*stored_splits.get(hazard.id, []), *(i.event.date for i in group if i.event.geometry is not None)]
        for item in sorted(group, key=_reclassification_order):
            day = item.event.date
            if cha_since is not None and cha_since <= day:
                problems.add(item, f"The hazard is already a CHA on {day}: only an SHA can be reclassified.")
            if item.event.geometry is None:
                later = [d for d in splits if d >= day]
                if later:
                    problems.add(item, f"A reclassification of {min(later)} splits part of this SHA off as a CHA: "
                                       f"the whole hazard cannot be a CHA from {day}, before or on that day.",
                                 conflict=True)
                cha_since = day if cha_since is None else min(cha_since, day)


def _organisations(session: Session, iso3: str, items: list[HistoryEvent], actor: audit.Actor) -> None:
    """Each organisation named as the State's register names it (added there when new), once per name."""
    found: dict[str, tuple[uuid.UUID | None, str | None]] = {}
    for item in items:
        name = item.event.organisation
        if name is None:
            continue
        if name not in found:
            found[name] = organisations.for_event(session, iso3, name, None, actor)
        item.event.organisation_id, item.event.properties["organisation"] = found[name]


def _split_hazards(session: Session, touched: list[uuid.UUID], items: list[HistoryEvent],
                   hazards: dict[str, _Hazard]) -> list[uuid.UUID]:
    """The touched hazards with a reclassification that splits part of them off (stored or new)."""
    new = {hazards[i.hazard_external_id].id for i in items
           if i.event.kind == "reclassification" and i.event.geometry is not None}
    stored = set(session.execute(
        text("SELECT DISTINCT hazard_id FROM land_release_events WHERE hazard_id = ANY(:ids) AND voided_at IS NULL "
             "AND kind = 'reclassification' AND submitted_geom IS NOT NULL"), {"ids": touched}).scalars())
    return sorted(new | stored)


def _store(session: Session, iso3: str, items: list[HistoryEvent], ids: list[uuid.UUID],
           hazards: dict[str, _Hazard], progress: Progress) -> None:
    """The new events into `history_new` (binary COPY), then into `land_release_events` in one statement, with
    what each covers outside its hazard (`record_event`'s `outside_area_m2`, `_measure_outside`). Their
    geometries are accepted ones (`read_polygonal`/`screen_polygonal`), already on the grid: stored as they are."""
    session.execute(text("DROP TABLE IF EXISTS history_new"))
    session.execute(text(_NEW_TABLE))
    geometries = np.array([i.event.geometry.geometry if i.event.geometry is not None else None for i in items],
                          dtype=object)
    has = np.array([g is not None for g in geometries], dtype=bool)
    ewkb = np.full(len(items), None, dtype=object)
    if has.any():
        ewkb[has] = shapely.to_wkb(shapely.set_srid(geometries[has], 4326), include_srid=True)
    raw = session.connection().connection.driver_connection
    assert raw is not None  # the session's open connection
    with raw.cursor() as cursor, cursor.copy(
            f"COPY history_new ({', '.join(_NEW_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(_NEW_TYPES))
        for k, item in enumerate(items):
            new = item.event
            copy.write_row((k, ids[k], hazards[item.hazard_external_id].id, *new.stored_values().values(),
                            *(new.items.get(kind, 0) for kind in ITEM_KINDS), new.organisation_id, ewkb[k]))
    session.execute(text("ANALYZE history_new"))
    columns = ", ".join((*EVENT_INPUT_COLUMNS, *ITEM_KINDS))
    insert = text(
        f"""
        INSERT INTO land_release_events (id, hazard_id, state_iso3, {columns}, organisation_id, submitted_geom,
                                         outside_area_m2)
        SELECT n.id, n.hazard_id, :iso3, {', '.join(f'n.{c}' for c in (*EVENT_INPUT_COLUMNS, *ITEM_KINDS))},
               n.organisation_id, ST_GeomFromEWKB(n.wkb), COALESCE(o.m2, 0)
        FROM history_new n LEFT JOIN history_outside o ON o.ord = n.ord
        WHERE n.ord >= :first AND n.ord < :last
        ORDER BY n.ord
        """)
    _measure_outside(session)
    for first in range(0, len(items), STORE_CHUNK):  # each chunk one statement, its progress reported
        session.execute(insert, {"iso3": iso3, "first": first, "last": first + STORE_CHUNK})
        progress("storing events", min(first + STORE_CHUNK, len(items)), len(items))
    session.execute(text("DROP TABLE history_outside_in, history_outside"))
    # as the hazard bulk load does: the planner must know the events just inserted (else the statements
    # over the touched hazards' events are planned as if there were none)
    session.execute(text("ANALYZE land_release_events"))


_OUTSIDE_M2 = f"""
    INSERT INTO history_outside (ord, m2)
    SELECT ord, {sql_area(sql_difference('s', 'r'))} FROM history_outside_in WHERE ord % :parts = :part
"""


def _measure_outside(session: Session) -> None:
    """`history_outside`: what each new event with a geometry covers outside its hazard (`record_event`'s
    `outside_area_m2`), the events shared out over `history_workers` connections at once, as the replay's
    hazards are (`_share_out`)."""
    session.execute(text("CREATE TEMPORARY TABLE history_outside_in ON COMMIT DROP AS "
                         "SELECT n.ord, ST_GeomFromEWKB(n.wkb) AS s, h.baseline_geom AS r FROM history_new n "
                         "JOIN hazardous_areas h ON h.id = n.hazard_id WHERE n.wkb IS NOT NULL"))
    session.execute(text("CREATE TEMPORARY TABLE history_outside (ord integer PRIMARY KEY, m2 float8) ON COMMIT DROP"))
    count = session.execute(text("SELECT count(*) FROM history_outside_in")).scalar_one()
    parts = max(1, min(get_settings().history_workers, count))
    helpers: list[Connection] = []
    try:
        for part in range(1, parts):
            helpers.append(_helper(session))
            for table in ("history_outside_in", "history_outside"):
                helpers[-1].execute(text(f"CREATE TEMPORARY TABLE {table} ({_columns(session, table)}) ON COMMIT DROP"))
            _copy_rows(session.connection(), f"SELECT * FROM history_outside_in WHERE ord % {parts} = {part}",
                       helpers[-1], "history_outside_in")
        _together(session, helpers, lambda connection, part, _stop: connection.execute(
            text(_OUTSIDE_M2), {"parts": parts, "part": part}))
        for helper in helpers:
            _copy_rows(helper, "SELECT * FROM history_outside", session.connection(), "history_outside")
    finally:
        _close(helpers)


# the new events against their State's boundary, as `boundaries.check_new_event` checks one
_OUTSIDE = boundaries.sql_events_outside("history_new n JOIN land_release_events e ON e.id = n.id")

_STEP = f"""
    WITH kth AS (SELECT o.event_id, o.hazard_id, o.date, o.s, w.r, w.ra
                 FROM history_order o JOIN history_work w ON w.hazard_id = o.hazard_id WHERE o.k = :k),
    {sql_release_step('kth')},
    kept AS (INSERT INTO history_steps (event_id, hazard_id, date, before_m2, released_m2, after_m2, released_geom)
             SELECT event_id, hazard_id, date, ra, rel_a, ra - rel_a, rel_g FROM step)
    UPDATE history_work w SET r = step.rest_g, ra = step.ra - step.rel_a FROM step WHERE w.hazard_id = step.hazard_id
"""


def _replay_set_based(session: Session, hazard_ids: list[uuid.UUID], progress: Progress) -> tuple[int, int]:
    """`book.replay` of every hazard of `hazard_ids` at once: one statement per rank of their events in the
    ledger's order, the hazards shared out over `history_workers` connections (`_share_out`). Returns the
    number of steps and of the connections that took them."""
    session.execute(text("CREATE TEMPORARY TABLE history_work ON COMMIT DROP AS "
                         "SELECT id AS hazard_id, baseline_geom AS r, baseline_area_m2 AS ra FROM hazardous_areas "
                         "WHERE id = ANY(:ids)"), {"ids": hazard_ids})
    session.execute(text("ALTER TABLE history_work ADD PRIMARY KEY (hazard_id)"))
    session.execute(text(
        f"""
        CREATE TEMPORARY TABLE history_order ON COMMIT DROP AS
        SELECT id AS event_id, hazard_id, date, submitted_geom AS s,
               row_number() OVER (PARTITION BY hazard_id ORDER BY {LEDGER_ORDER}) AS k
        FROM land_release_events
        WHERE hazard_id = ANY(:ids) AND voided_at IS NULL AND submitted_geom IS NOT NULL
        """), {"ids": hazard_ids})
    session.execute(text("CREATE TEMPORARY TABLE history_steps (event_id uuid PRIMARY KEY, hazard_id uuid, "
                         "date date, before_m2 float8, released_m2 float8, after_m2 float8, "
                         "released_geom geometry(MultiPolygon, 4326)) ON COMMIT DROP"))
    total = session.execute(text("SELECT count(*) FROM history_order")).scalar_one()
    helpers = _share_out(session, get_settings().history_workers)
    try:
        steps = _replay_parts(session, helpers, total, progress)
        for helper in helpers:  # their results into the import's transaction, which writes them
            _copy_rows(helper, "SELECT * FROM history_steps", session.connection(), "history_steps")
            _copy_rows(helper, "SELECT * FROM history_work", session.connection(), "history_work")
    finally:
        _close(helpers)
    progress("writing results", 0, 2)
    session.execute(text("ANALYZE history_steps"))
    session.execute(text("UPDATE land_release_events e SET released_geom = s.released_geom, "
                         "released_area_m2 = s.released_m2 FROM history_steps s WHERE e.id = s.event_id"))
    progress("writing results", 1, 2)
    # `book._finish` for every hazard: released on the day its remaining area fell under MIN_AREA_M2
    session.execute(text(
        f"""
        UPDATE hazardous_areas h SET remaining_geom = w.r, remaining_area_m2 = w.ra, released_on = f.day,
            status = CASE WHEN f.day IS NULL THEN 'active' ELSE 'released' END,
            reclassified_on = c.day, updated_at = now()
        FROM history_work w
        LEFT JOIN (SELECT hazard_id, min(date) AS day FROM history_steps
                   WHERE after_m2 < {MIN_AREA_M2} AND before_m2 >= {MIN_AREA_M2} GROUP BY hazard_id) f
               ON f.hazard_id = w.hazard_id
        LEFT JOIN (SELECT hazard_id, min(date) AS day FROM land_release_events
                   WHERE hazard_id IN (SELECT hazard_id FROM history_work) AND voided_at IS NULL
                     AND kind = 'reclassification' AND submitted_geom IS NULL GROUP BY hazard_id) c
               ON c.hazard_id = w.hazard_id
        WHERE h.id = w.hazard_id
        """))
    progress("writing results", 2, 2)
    return steps, 1 + len(helpers)


def _share_out(session: Session, workers: int) -> list[Connection]:
    """Up to `workers` - 1 more connections, each with its share of the hazards to replay (round robin by
    number of events) COPYed into its own `history_work` and `history_order`, deleted from the import's: the
    hazards and events of the import are uncommitted, so another connection can only see what it is given.
    The others only compute (temporary tables), so the import stays all or nothing."""
    parts = min(workers, session.execute(text("SELECT count(DISTINCT hazard_id) FROM history_order")).scalar_one())
    helpers: list[Connection] = []
    if parts > 1:
        session.execute(text("CREATE TEMPORARY TABLE history_part ON COMMIT DROP AS SELECT hazard_id, "
                             "(row_number() OVER (ORDER BY count(*) DESC, hazard_id) - 1) % :parts AS part "
                             "FROM history_order GROUP BY hazard_id"), {"parts": parts})
        try:
            for _ in range(1, parts):
                helpers.append(_helper(session))
            for part, helper in enumerate(helpers, start=1):
                for table in _SHARED:
                    helper.execute(text(f"CREATE TEMPORARY TABLE {table} ({_columns(session, table)}) ON COMMIT DROP"))
                for table in _SHARED[:2]:
                    _copy_rows(session.connection(), f"SELECT * FROM {table} WHERE hazard_id IN "
                               f"(SELECT hazard_id FROM history_part WHERE part = {part})", helper, table)
                helper.execute(text("ALTER TABLE history_work ADD PRIMARY KEY (hazard_id)"))
            for table in _SHARED[:2]:
                session.execute(text(f"DELETE FROM {table} WHERE hazard_id IN "
                                     "(SELECT hazard_id FROM history_part WHERE part > 0)"))
        except BaseException:
            _close(helpers)
            raise
    connections: list[Session | Connection] = [session, *helpers]
    try:
        for connection in connections:
            connection.execute(text("CREATE INDEX ON history_order (k)"))
            connection.execute(text("ANALYZE history_order"))
            connection.execute(text("ANALYZE history_work"))
    except BaseException:
        _close(helpers)
        raise
    return helpers


_SHARED = ("history_work", "history_order", "history_steps")  # the replay's tables, on every connection


def _helper(session: Session) -> Connection:
    """Another connection to the import's database, with the statement timeout of the import's."""
    timeout = session.execute(text("SELECT current_setting('statement_timeout')")).scalar_one()
    helper = session.get_bind().engine.connect()
    helper.execute(text("SELECT set_config('statement_timeout', :timeout, true)"), {"timeout": timeout})
    return helper


def _close(helpers: list[Connection]) -> None:
    """Roll back (which drops their temporary tables: they wrote nothing else) and close every helper, each
    whatever happened to the others; the first failure is raised after."""
    failure: BaseException | None = None
    for helper in helpers:
        try:
            helper.rollback()
        except BaseException as exc:  # noqa: BLE001 - closed below all the same, raised after the others
            failure = failure or exc
        finally:
            helper.close()
    if failure is not None:
        raise failure


def _columns(session: Session, table: str) -> str:
    """The columns of the temporary `table`, as a CREATE TABLE lists them."""
    rows = session.execute(text("SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
                                "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped "
                                "ORDER BY attnum"), {"table": table}).all()
    return ", ".join(f"{r.attname} {r.type}" for r in rows)


def _copy_rows(source: Connection, query: str, target: Connection, table: str) -> None:
    """The rows of `query` on `source` into `table` on `target` (binary COPY, block by block)."""
    out, into = source.connection.driver_connection, target.connection.driver_connection
    assert out is not None and into is not None  # both connections are open
    with out.cursor() as out_cursor, out_cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as rows, \
            into.cursor() as into_cursor, into_cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
        for block in rows:
            copy.write(block)


def _replay_parts(session: Session, helpers: list[Connection], total: int, progress: Progress) -> int:
    """The steps of each connection's hazards, at once (`_together`); the progress is the sum of all.
    Returns the number of steps (the largest rank)."""
    done = [0] * (1 + len(helpers))  # events replayed, per connection (each written by its own thread only)

    def report() -> None:
        progress("replaying events", sum(done), total)

    report()
    steps = max(_together(session, helpers, lambda connection, part, stop: _steps(
        connection, done, part, report if part == 0 else _silent, stop), report))
    report()
    return steps


T = TypeVar("T")


def _silent() -> None:
    """No report (a helper's thread: the import's thread reports)."""


def _together(session: Session, helpers: list[Connection],
              run: Callable[[Session | Connection, int, threading.Event], T],
              report: Callable[[], None] = _silent) -> list[T]:
    """`run(connection, part, stop)` on the import's connection (part 0, on this thread) and on each helper
    (part 1 .., each on a thread of its own: psycopg waits for the server without the GIL), `report` every
    second while this thread waits for the others. A failure anywhere sets `stop` (a run of several statements
    ends at the next), and one on this thread also cancels the helpers' statements. Their results."""
    stop = threading.Event()

    def helping(helper: Connection, part: int) -> T:
        try:
            return run(helper, part, stop)
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(max_workers=max(1, len(helpers))) as pool:
        futures = [pool.submit(helping, helper, part) for part, helper in enumerate(helpers, start=1)]
        try:
            own = run(session, 0, stop)
        except BaseException:
            stop.set()
            for helper in helpers:
                connection = helper.connection.driver_connection
                assert connection is not None
                connection.cancel_safe()
            wait(futures)
            raise
        while wait(futures, timeout=1).not_done:
            report()
        return [own, *(f.result() for f in futures)]


def _steps(connection: Session | Connection, done: list[int], part: int, report: Callable[[], None],
           stop: threading.Event) -> int:
    """Step k = 1 .. of the hazards in this connection's `history_work` (`_STEP`), until another connection's
    failure sets `stop`; returns the largest k."""
    ranks = connection.execute(text("SELECT k, count(*) FROM history_order GROUP BY k ORDER BY k")).all()
    for k, n in ranks:
        if stop.is_set():
            break  # another share failed: the import fails with its error, these steps are not needed
        connection.execute(text(_STEP), {"k": k})
        done[part] += n
        report()
    return len(ranks)


def _refused_steps(session: Session) -> list[tuple[uuid.UUID, str]]:
    """The new events of the set-based replay that the ledger refuses, and why (`record_event`'s messages)."""
    rows = session.execute(text(
        f"""
        SELECT n.id, e.date, s.before_m2, s.released_m2, h.released_on
        FROM history_new n JOIN land_release_events e ON e.id = n.id JOIN hazardous_areas h ON h.id = e.hazard_id
        LEFT JOIN history_steps s ON s.event_id = n.id
        WHERE (s.event_id IS NOT NULL AND (s.before_m2 < {MIN_AREA_M2} OR s.released_m2 < {MIN_AREA_M2}))
           OR (e.submitted_geom IS NULL AND h.released_on <= e.date)
        """)).all()
    return [(r.id, _refusal(r.date, r.before_m2, r.released_m2, r.released_on)) for r in rows]


def _refusal(day: date, before_m2: float | None, released_m2: float | None, released_on: date | None) -> str:
    if before_m2 is None:  # a whole-hazard reclassification
        return f"The hazard was fully released on {released_on}: nothing remains on {day}."
    if before_m2 < MIN_AREA_M2:
        return f"Nothing of the hazard remains on {day}: it was already fully released."
    assert released_m2 is not None
    return ("The event releases nothing: its polygon does not overlap what remained of the hazard "
            f"on {day} (check the polygon, its CRS and the date).")


def _replay_split_hazard(session: Session, hazard_id: uuid.UUID, row_of: dict[uuid.UUID, HistoryEvent],
                         first: HistoryEvent, problems: _Problems) -> None:
    """A hazard with a split, through the ledger's own replay; its refusals (`record_event`, `_check_splits`),
    those of its stored events named at `first`, the hazard's first event in the file."""
    released_on = None
    for step in replay(session, hazard_id):
        item = row_of.get(step.event_id)
        if released_on is None and step.after_m2 < MIN_AREA_M2 <= step.before_m2:
            released_on = step.date
        if item is None:  # a stored event: only a split it can no longer make refuses the history
            if step.is_split and step.before_m2 >= MIN_AREA_M2 and (
                    step.released_m2 < MIN_AREA_M2 or step.after_m2 < MIN_AREA_M2):
                problems.add(first, f"The history leaves the reclassification {step.event_id} of {step.date} "
                                    "nothing, or all, of the hazard to split off: void that reclassification first.",
                             conflict=True)
            continue
        if not step.has_geometry:
            if released_on is not None and released_on <= step.date:
                problems.add(item, _refusal(step.date, None, None, released_on))
        elif step.before_m2 < MIN_AREA_M2 or step.released_m2 < MIN_AREA_M2:
            problems.add(item, _refusal(step.date, step.before_m2, step.released_m2, released_on))
        elif step.is_split and step.after_m2 < MIN_AREA_M2:
            problems.add(item, "The reclassification polygon covers all that remains of the hazard: send it "
                               "without a geometry to reclassify the whole hazard as a CHA.")


def _audit(session: Session, iso3: str, items: list[HistoryEvent], ids: list[uuid.UUID], hazards: dict[str, _Hazard],
           actor: audit.Actor, import_id: str, source: str | None) -> None:
    """One audit entry per event, as `record_event` writes it (with the import's id), and one for the import."""
    raw = session.connection().connection.driver_connection
    assert raw is not None  # the session's open connection
    with raw.cursor() as cursor:
        audit.copy_entries(cursor, actor, iso3, "land_release_events", "create", (
            (ids[k], item.event.external_id,
             {"hazard_id": str(hazards[item.hazard_external_id].id), "kind": item.event.kind,
              "date": item.event.date.isoformat(), "import": import_id})
            for k, item in enumerate(items)))
    audit.record(session, actor, state_iso3=iso3, table="land_release_events", row_id=import_id,
                 action="import history", detail={"import": import_id, "source": source, "events": len(items)})


__all__ = ["HistoryEvent", "Progress", "apply_history"]
