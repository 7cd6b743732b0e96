"""The land-release ledger (IMAS 07.11): hazards, release events, voids, replays and the JSON reads.

Accounting rules (shared/domain.md):
- remaining(hazard, D) = baseline minus the released geometry of every valid event dated <= D;
- an event releases what its polygon covers of the hazard's remaining area just before it, in the
  ledger's order; land is never released twice, what falls outside is reported back;
- the ledger's order depends only on the facts, never on arrival: by date, and on one day
  1. clearance, 2. reduction (technical survey), 3. cancellation (non-technical survey),
  4. reclassification. Reports of one day each say what their method did that day; the land two of
  them share is released once, and credited to the most thorough method: land cleared is free of
  explosive ordnance to the specified depth whatever a survey said of it, and technical survey is
  physical evidence where non-technical survey is none. A reclassification comes after the
  releases of its day: direct evidence moves to a CHA only land that is not released that same
  day (land cleared that day is not a confirmed hazard at its end). Events of one kind on one day
  are taken in the order of their polygons' hashes (a property of the fact itself; two reports with
  the same polygon cannot both release land, the second is refused);
- an event dated on or before another valid one (back-dated, or of the same day) and a void replay
  the hazard's events, so any date's state is the same whatever order the events arrived in;
- a reclassification moves land from SHA to CHA (a split-off part becomes a new CHA hazard); it
  is not released land;
- a hazard whose remaining area falls below MIN_AREA_M2 is released on that date;
- land is counted once per State (app/ledger/overlaps.py): a new hazard may not overlap what another
  hazard counts, and a split or a void (the only writes that can give a hazard land back at some
  date) may not make two hazards overlap more.
All geometry work happens in PostGIS, in the transaction of the write, under a row lock on the
hazard so that concurrent writers to one hazard are applied one after the other.

Lock order: a write that takes both its State's overlap lock (`overlaps.lock_state`, which
`overlaps.WriteCheck` takes too) and hazard row locks takes the State's lock FIRST, then the rows (an
SHA before the CHAs split off it; many rows in that order, then by id). The hazard imports, the history
import, a void, a split (a reclassification with a polygon) and a correction of a hazard's polygon or
recorded_on take both (`lock_state_of` takes a hazard's State lock before its row is read FOR UPDATE);
an event that is not a split and a correction of other attributes take the row lock alone. Two writes
taking the two locks in the other order could each wait for the other (a deadlock, refused by PostgreSQL).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import audit, organisations
from app.geometry import (
    MIN_AREA_M2,
    SQL_EMPTY,
    PolygonalGeometry,
    geodesic_area_m2,
    sql_area,
    sql_difference,
    sql_intersection,
    sql_snap,
)
from app.layers import EVENT_INPUTS, HAZARD_INPUTS, HAZARD_PROPERTIES, Property, sql_json_properties
from app.ledger import devices as devices_found
from app.ledger import overlaps
from app.ledger.as_of import hazards_sql
from app.models import ITEM_KINDS
from app.places import boundaries, provinces
from app.problems import Problem


class Given:
    """What the client gives of a row of a layer: the inputs its layer declares (`INPUTS`, from `app.layers`),
    by name; an absent one takes its default, else None. Each is also readable as an attribute."""

    INPUTS: ClassVar[tuple[Property, ...]] = ()
    _names: ClassVar[frozenset[str]]
    _required: ClassVar[tuple[str, ...]]
    _defaults: ClassVar[tuple[tuple[str, tuple[str, ...] | None], ...]]

    def __init_subclass__(cls) -> None:
        cls._names = frozenset(p.name for p in cls.INPUTS)
        cls._required = tuple(p.name for p in cls.INPUTS if p.input and p.input.required)
        cls._defaults = tuple((p.name, p.input.default if p.input else None) for p in cls.INPUTS)

    def __init__(self, **properties: Any) -> None:
        missing = [name for name in self._required if properties.get(name) is None]
        if missing or not self._names.issuperset(properties):
            raise TypeError(f"{type(self).__name__}: unknown {sorted(set(properties) - self._names)}, "
                            f"missing {missing}")
        self.properties: dict[str, Any] = {name: properties.get(name) for name, _ in self._defaults}
        self._fill_defaults()

    def _fill_defaults(self) -> None:
        for name, default in self._defaults:
            if default is not None and self.properties[name] is None:
                self.properties[name] = list(default)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["properties"][name]
        except KeyError:
            raise AttributeError(name) from None

    def stored_values(self) -> dict[str, Any]:
        """{column: value} of the inputs as they are stored: an array's items sorted, once each."""
        return {str(p.column): sorted(set(v)) if p.type == "array" and (v := self.properties[p.name]) is not None
                else self.properties[p.name] for p in self.INPUTS}

    def same_as_stored(self, row: Any) -> bool:
        """The stored `row` (with its input columns) has these inputs."""
        return all((sorted(stored) if isinstance(stored := getattr(row, column), list) else stored) == value
                   for column, value in self.stored_values().items())


class NewHazard(Given):
    """A hazard to record: its checked geometry and the inputs `app.layers.HAZARD_INPUTS` declares.

    `NewHazard(geometry=..., external_id=..., classification=..., recorded_on=..., ...)`.
    """

    INPUTS = HAZARD_INPUTS

    def __init__(self, geometry: PolygonalGeometry, **properties: Any) -> None:
        super().__init__(**properties)
        self.geometry = geometry

    @classmethod
    def checked(cls, geometry: PolygonalGeometry, properties: dict[str, Any]) -> NewHazard:
        """From a dict of every declared input by name, as `app.ledger.input` checked them (the dict is kept)."""
        hazard = cls.__new__(cls)
        hazard.geometry, hazard.properties = geometry, properties
        hazard._fill_defaults()
        return hazard

    @property
    def external_id(self) -> str:
        return str(self.properties["external_id"])

    @property
    def recorded_on(self) -> date:
        value: date = self.properties["recorded_on"]
        return value


class NewEvent(Given):
    """A land-release event to record: its checked geometry (None for a whole-hazard reclassification), the
    inputs `app.layers.EVENT_INPUTS` declares and the items destroyed (`app.models.ITEM_KINDS`: count).

    `NewEvent(kind=..., date=..., geometry=..., organisation=..., external_id=..., items={...})`. The
    organisation is a name (or short name) of the State's register (`app.organisations`), or its
    `organisation_id` there.
    """

    INPUTS = EVENT_INPUTS

    def __init__(self, geometry: PolygonalGeometry | None, items: dict[str, int] | None = None,
                 organisation_id: uuid.UUID | None = None, devices: list[devices_found.Device] | None = None,
                 **properties: Any) -> None:
        super().__init__(**properties)
        self.geometry = geometry
        # the explosive ordnance found one by one, and the counters that are their totals (app.ledger.devices)
        self.devices, self.items = devices_found.reconcile(devices, items or {})
        self.organisation_id = organisation_id

    @property
    def kind(self) -> str:
        return str(self.properties["kind"])

    @property
    def date(self) -> date:
        value: date = self.properties["date"]
        return value


# --- hazards ------------------------------------------------------------------------------------
# The stored columns of what the client gives of a hazard, as the layer declares them (app.layers).
HAZARD_INPUT_COLUMNS = tuple(str(p.column) for p in HAZARD_INPUTS)
assert all(p.column for p in HAZARD_INPUTS), "a property the client gives is a stored column (f.<column>)"
EVENT_INPUT_COLUMNS = tuple(str(p.column) for p in EVENT_INPUTS)
assert all(p.column for p in EVENT_INPUTS), "a property the client gives is a stored column (f.<column>)"


def copy_type(sql_type: str) -> str:
    """The type a binary COPY sends a column's values as (a varchar(N) travels as text)."""
    return re.sub(r"^varchar\(\d+\)", "text", sql_type)


# A CHA split off by a reclassification sets these itself and inherits every other input of its SHA.
_SET_BY_SPLIT = ("external_id", "classification", "recorded_on")
_INHERITED_COLUMNS = tuple(str(p.column) for p in HAZARD_INPUTS if p.name not in _SET_BY_SPLIT)


def require_state(session: Session, iso3: str) -> str:
    name = session.execute(text("SELECT name FROM states WHERE iso3 = :iso3"), {"iso3": iso3}).scalar()
    if name is None:
        raise Problem(404, f"Unknown State '{iso3}': use an ISO 3166 alpha-3 code of a State in GET /api/v1/states")
    return name


def _same_hazard(row: Any, new: NewHazard) -> bool:
    """The stored hazard `row` (its input columns and `baseline_wkb`) has the content of `new`."""
    baseline = wkb.loads(bytes(row.baseline_wkb))
    return (new.same_as_stored(row)
            and geodesic_area_m2(baseline.symmetric_difference(new.geometry.geometry)) < MIN_AREA_M2)


def record_hazards(session: Session, iso3: str, hazards: list[NewHazard], actor: audit.Actor,
                   clip: bool = False, border: str = "refuse") -> list[dict[str, Any]]:
    """Record hazards, all or nothing. Re-posting identical content is safe; different content is a 409.

    A new hazard overlapping land another hazard of the State counts is a 409, or with `clip`
    recorded clipped (app/ledger/overlaps.py). A region names one of the State's provinces, and a hazard
    beyond the State's boundary is a 422, or with `border="accept"` recorded flagged (app/places).
    """
    require_state(session, iso3)
    regions = provinces.match_regions(session, iso3, (h.properties.get("region") for h in hazards),
                                      strict=border != "accept")
    overlaps.lock_state(session, iso3)
    existing = {
        row.external_id: row
        for row in session.execute(
            text(
                f"SELECT id, {', '.join(HAZARD_INPUT_COLUMNS)}, "
                "baseline_area_m2, remaining_area_m2, ST_AsBinary(baseline_geom) AS baseline_wkb "
                "FROM hazardous_areas WHERE state_iso3 = :iso3 AND external_id = ANY(:ids)"
            ),
            {"iso3": iso3, "ids": [h.external_id for h in hazards]},
        )
    }
    conflicts = [
        {"index": i, "external_id": h.external_id, "existing_id": str(existing[h.external_id].id)}
        for i, h in enumerate(hazards)
        if h.external_id in existing and not _same_hazard(existing[h.external_id], h)
    ]
    if conflicts:
        raise Problem(
            409,
            "A hazard with this external_id already exists in this State with different content: "
            + ", ".join(f"{c['external_id']} (id {c['existing_id']})" for c in conflicts)
            + ". Use a new external_id, or correct the existing hazard.",
            conflicts=conflicts,
        )
    results = []
    insert = text(
        f"""
        WITH snapped AS MATERIALIZED (SELECT {sql_snap('ST_GeomFromWKB(:wkb, 4326)')} AS geom),
        g AS MATERIALIZED (SELECT geom, {sql_area('geom')} AS area FROM snapped)
        INSERT INTO hazardous_areas (state_iso3, {', '.join(HAZARD_INPUT_COLUMNS)}, baseline_geom, baseline_area_m2,
                                     remaining_geom, remaining_area_m2)
        SELECT :iso3, {', '.join(f':{c}' for c in HAZARD_INPUT_COLUMNS)}, g.geom, g.area, g.geom, g.area
        FROM g
        RETURNING id, baseline_area_m2, remaining_area_m2
        """
    )
    for h in hazards:
        if h.external_id in existing:
            row = existing[h.external_id]
            results.append({"id": str(row.id), "external_id": h.external_id, "created": False,
                            "baseline_area_m2": row.baseline_area_m2, "remaining_area_m2": row.remaining_area_m2})
            continue
        row = session.execute(insert, {"wkb": h.geometry.geometry.wkb, "iso3": iso3, **h.stored_values()}).one()
        result = {"id": str(row.id), "external_id": h.external_id, "created": True,
                  "baseline_area_m2": row.baseline_area_m2, "remaining_area_m2": row.remaining_area_m2}
        if h.geometry.repair:
            result["repair"] = h.geometry.repair
        if h.geometry.warnings:
            result["warnings"] = h.geometry.warnings
        audit.record(session, actor, state_iso3=iso3, table="hazardous_areas", row_id=row.id, action="create",
                     external_id=h.external_id,
                     detail={"repair": h.geometry.repair} if h.geometry.repair else None)  # app/places/quality
        results.append(result)
    created = [uuid.UUID(r["id"]) for r in results if r["created"]]
    provinces.assign_provinces(session, created, regions)
    flagged = boundaries.check_new_hazards(session, iso3, created, border)
    for result in results:
        if uuid.UUID(result["id"]) in flagged:
            result["border_flag"] = True
    clipped = overlaps.check_new_hazards(session, iso3, [uuid.UUID(r["id"]) for r in results if r["created"]], clip)
    for result in results:
        if (cut := clipped.get(uuid.UUID(result["id"]))) is not None:
            result.update(baseline_area_m2=cut["baseline_area_m2"], remaining_area_m2=cut["baseline_area_m2"],
                          clipped={"area_m2": cut["clipped_m2"], "overlaps": cut["overlaps"]})
            audit.record(session, actor, state_iso3=iso3, table="hazardous_areas", row_id=result["id"],
                         action="clip", external_id=result["external_id"], detail=result["clipped"])
    session.commit()
    return results


# --- events -------------------------------------------------------------------------------------
def lock_state_of(session: Session, hazard_id: uuid.UUID) -> None:
    """The overlap lock of the hazard's State, taken before its row lock (the ledger's lock order: see the module
    docstring). A hazard never changes State, so its State is read without a lock."""
    iso3 = session.execute(text("SELECT state_iso3 FROM hazardous_areas WHERE id = :id"), {"id": hazard_id}).scalar()
    if iso3 is not None:
        overlaps.lock_state(session, iso3)


_HAZARD_FOR_UPDATE = text(
    f"SELECT id, state_iso3, {', '.join(HAZARD_INPUT_COLUMNS)}, reclassified_on, status, released_on, "
    "remaining_area_m2 FROM hazardous_areas WHERE id = :id AND voided_at IS NULL FOR UPDATE"
)


def sql_release_step(source: str) -> str:
    """The CTEs `cut`, `measured` and `step` of one step of the replay, for each row of `source` (a relation
    with the working remaining geometry `r`, its area `ra`, the event's polygon `s` and any other columns,
    which `step` keeps): `step.rel_g` and `step.rel_a` are what the event releases, `step.rest_g` what
    remains of the hazard after it (its area is `step.ra - step.rel_a`). The one copy of the rule, for one
    event (`_apply`) and for the k-th events of many hazards at once (`app.ledger.history`)."""
    return f"""
    cut AS MATERIALIZED (SELECT src.*, {sql_intersection('src.s', 'src.r')} AS rel,
                                {sql_difference('src.r', 'src.s')} AS rest FROM {source} src),
    measured AS MATERIALIZED (SELECT cut.*, {sql_area('rest')} AS rest_a FROM cut),
    step AS MATERIALIZED (
        SELECT measured.*,
            CASE WHEN ra < {MIN_AREA_M2} OR ra - rest_a < {MIN_AREA_M2} THEN {SQL_EMPTY}
                 WHEN rest_a < {MIN_AREA_M2} THEN r ELSE rel END AS rel_g,
            CASE WHEN ra < {MIN_AREA_M2} OR ra - rest_a < {MIN_AREA_M2} THEN 0
                 WHEN rest_a < {MIN_AREA_M2} THEN ra ELSE ra - rest_a END AS rel_a,
            CASE WHEN ra < {MIN_AREA_M2} OR ra - rest_a < {MIN_AREA_M2} THEN r
                 WHEN rest_a < {MIN_AREA_M2} THEN {SQL_EMPTY} ELSE rest END AS rest_g
        FROM measured)"""


# One step of the replay: the event takes what its polygon covers of the hazard's working remaining
# geometry. Its released area is how much the measured remaining area falls, so that baseline minus
# the released areas is exactly the remaining area at every date. A remnant under MIN_AREA_M2 goes
# with the event (no slivers); a release under it is nothing.
_STEP_SQL = f"""
    WITH h AS (SELECT remaining_geom AS r, remaining_area_m2 AS ra FROM hazardous_areas WHERE id = :hazard_id),
    e AS (SELECT submitted_geom AS s FROM land_release_events WHERE id = :event_id),
    he AS (SELECT h.r, h.ra, e.s FROM h, e),
    {sql_release_step('he')},
    upd_event AS (
        UPDATE land_release_events SET released_geom = step.rel_g, released_area_m2 = step.rel_a
        FROM step WHERE id = :event_id RETURNING step.ra, step.rel_a)
    UPDATE hazardous_areas h SET remaining_geom = step.rest_g, remaining_area_m2 = step.ra - step.rel_a{{finish}}
    FROM step WHERE h.id = :hazard_id
    RETURNING (SELECT ra FROM upd_event) AS before_m2, (SELECT rel_a FROM upd_event) AS released_m2,
              h.remaining_area_m2 AS after_m2
"""
# What `_finish` sets from the steps, for a step that follows every other valid event of the hazard: the
# hazard is released on the event's date when the step takes it below MIN_AREA_M2. Set in the step's own
# UPDATE, so the hazard's row (two geometries, seven indexes) gets one new version, not two.
_RELEASED_BY_STEP = f"step.ra >= {MIN_AREA_M2} AND step.ra - step.rel_a < {MIN_AREA_M2}"
_RECLASSIFIED_ON = ("(SELECT min(date) FROM land_release_events e WHERE e.hazard_id = h.id "
                    "AND e.voided_at IS NULL AND e.kind = 'reclassification' AND e.submitted_geom IS NULL)")
_FINISH_BY_STEP = (f", released_on = CASE WHEN {_RELEASED_BY_STEP} THEN CAST(:date AS date) END, "
                   f"status = CASE WHEN {_RELEASED_BY_STEP} THEN 'released' ELSE 'active' END, "
                   f"reclassified_on = {_RECLASSIFIED_ON}, updated_at = now()")
_APPLY_EVENT = text(_STEP_SQL.format(finish=""))
_APPLY_LAST_EVENT = text(_STEP_SQL.format(finish=_FINISH_BY_STEP))

# A new event's INSERT, with its audit entry. A release with its polygon (`:direct`) that no valid event of
# the hazard follows (none dated on or after it) is applied in the same statement: its step (the one copy,
# `sql_release_step`) is stored with it and the hazard takes the step and its finish as `_APPLY_LAST_EVENT`
# gives them (the whole-hazard reclassifications in `_RECLASSIFIED_ON` are the ones stored before: the new
# event is none). Any other event is stored unapplied (`replays`, `before_m2` NULL) for `record_event` to
# replay or apply. The later events are looked for here, after the row lock was taken by an earlier
# statement: a statement's snapshot begins before it waits for a lock, so only a later one sees the events
# of the writer it waited for. `inside`: the part of the polygon outside its hazard needs no more of the
# boundary check (`boundaries.sql_plainly_inside`; none for a hazard accepted across the border).
_EVENT_COLUMNS = (*EVENT_INPUT_COLUMNS, *ITEM_KINDS)
_INSERT_EVENT = text(f"""
    WITH g AS MATERIALIZED (SELECT CASE WHEN CAST(:wkb AS bytea) IS NULL THEN NULL
                                   ELSE {sql_snap('ST_GeomFromWKB(:wkb, 4326)')} END AS geom),
    later AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM land_release_events later WHERE later.hazard_id = :hazard_id
                                          AND later.voided_at IS NULL AND later.date >= :date) AS replays),
    h AS MATERIALIZED (SELECT baseline_geom AS b, remaining_geom AS r, remaining_area_m2 AS ra, border_flag
                       FROM hazardous_areas WHERE id = :hazard_id),
    he AS (SELECT h.r, h.ra, g.geom AS s FROM h, g, later WHERE :direct AND NOT later.replays),
    {sql_release_step('he')},
    ins AS (
        INSERT INTO land_release_events (hazard_id, state_iso3, {', '.join(_EVENT_COLUMNS)}, organisation_id,
                                         submitted_geom, outside_area_m2, released_geom, released_area_m2)
        SELECT :hazard_id, :iso3, {', '.join(f':{c}' for c in _EVENT_COLUMNS)}, :organisation_id, g.geom,
               CASE WHEN g.geom IS NULL THEN 0 ELSE {sql_area(sql_difference('g.geom', 'h.b'))} END,
               step.rel_g, COALESCE(step.rel_a, 0)
        FROM g CROSS JOIN h LEFT JOIN step ON true
        RETURNING id, hazard_id, kind, date, arrival, external_id, released_area_m2, outside_area_m2, new_hazard_id,
                  submitted_geom IS NOT NULL AS has_geometry),
    logged AS ({audit.sql_entry('ins.id', 'ins')}),
    applied AS (
        UPDATE hazardous_areas h SET remaining_geom = step.rest_g, remaining_area_m2 = step.ra - step.rel_a
            {_FINISH_BY_STEP}
        FROM step WHERE h.id = :hazard_id RETURNING h.remaining_area_m2, h.status),
    o AS MATERIALIZED (SELECT ST_Difference(g.geom, h.b) AS o FROM g, h WHERE g.geom IS NOT NULL AND NOT h.border_flag)
    SELECT ins.*, later.replays, step.ra AS before_m2, applied.remaining_area_m2, applied.status,
           NOT EXISTS (SELECT 1 FROM o WHERE NOT {boundaries.sql_plainly_inside(':iso3', 'o.o')}) AS inside
    FROM ins CROSS JOIN later LEFT JOIN step ON true LEFT JOIN applied ON true
""")


@dataclass
class _Step:
    event_id: uuid.UUID
    kind: str
    date: date
    before_m2: float
    released_m2: float
    after_m2: float
    has_geometry: bool = True

    @property
    def is_split(self) -> bool:
        """A reclassification that splits part of an SHA off as a new CHA."""
        return self.kind == "reclassification" and self.has_geometry


# The ledger's order of a hazard's events (see the module docstring): by date; on one day clearance,
# then reduction, then cancellation, then reclassification; within one kind on one day by the
# event's own polygon (its hash). Arrival only separates events with the same polygon, of which the
# later-arriving one always releases nothing and is refused.
LEDGER_ORDER = (
    "date, CASE kind WHEN 'clearance' THEN 0 WHEN 'reduction' THEN 1 WHEN 'cancellation' THEN 2 ELSE 3 END, "
    "md5(ST_AsEWKB(submitted_geom)), arrival"
)


def _valid_events(session: Session, hazard_id: uuid.UUID) -> list[Any]:
    return list(session.execute(
        text("SELECT id, kind, date, arrival, submitted_geom IS NOT NULL AS has_geometry, new_hazard_id "
             f"FROM land_release_events WHERE hazard_id = :id AND voided_at IS NULL ORDER BY {LEDGER_ORDER}"),
        {"id": hazard_id},
    ))


def _apply(session: Session, hazard: Any, event: Any, last: bool = False) -> _Step:
    """Apply one event to the hazard's working remaining geometry; `last`: it follows every other valid
    event of the hazard, and the hazard is finished with it (what `_finish` does after a replay)."""
    if not event.has_geometry:  # a whole-hazard reclassification changes the class, not the area
        ra = session.execute(text("SELECT remaining_area_m2 FROM hazardous_areas WHERE id = :id"),
                             {"id": hazard.id}).scalar_one()
        session.execute(text("UPDATE land_release_events SET released_geom = NULL, released_area_m2 = 0 "
                             "WHERE id = :id"), {"id": event.id})
        step = _Step(event.id, event.kind, event.date, ra, 0.0, ra, has_geometry=False)
        if last:
            _finish(session, hazard.id, [step])
        return step
    row = session.execute(_APPLY_LAST_EVENT if last else _APPLY_EVENT,
                          {"hazard_id": hazard.id, "event_id": event.id, "date": event.date}).one()
    step = _Step(event.id, event.kind, event.date, row.before_m2, row.released_m2, row.after_m2)
    if event.kind == "reclassification":
        _sync_split_off_hazard(session, hazard, event)
    return step


def _sync_split_off_hazard(session: Session, hazard: Any, event: Any) -> None:
    """Keep the CHA split off by a reclassification equal to what the event took from the SHA."""
    if event.new_hazard_id is None:
        child_id = session.execute(
            text(
                f"""
                INSERT INTO hazardous_areas (state_iso3, external_id, classification, recorded_on,
                    {', '.join(_INHERITED_COLUMNS)}, parent_id, split_by_event_id, baseline_geom, baseline_area_m2,
                    remaining_geom, remaining_area_m2)
                SELECT p.state_iso3, :external_id, 'CHA', e.date, {', '.join(f'p.{c}' for c in _INHERITED_COLUMNS)},
                       p.id, e.id, e.released_geom, e.released_area_m2, e.released_geom, e.released_area_m2
                FROM land_release_events e JOIN hazardous_areas p ON p.id = e.hazard_id WHERE e.id = :event_id
                RETURNING id
                """
            ),
            {"external_id": f"{hazard.external_id}/CHA-{event.arrival}", "event_id": event.id},
        ).scalar_one()
        session.execute(text("UPDATE land_release_events SET new_hazard_id = :child WHERE id = :id"),
                        {"child": child_id, "id": event.id})
        return
    changed = session.execute(
        text(
            f"""
            UPDATE hazardous_areas c SET baseline_geom = e.released_geom, baseline_area_m2 = e.released_area_m2,
                recorded_on = e.date, updated_at = now()
            FROM land_release_events e
            WHERE e.id = :event_id AND c.id = e.new_hazard_id
              AND (c.recorded_on <> e.date OR abs(c.baseline_area_m2 - e.released_area_m2) > 1e-6
                   OR {sql_area('ST_SymDifference(c.baseline_geom, e.released_geom)')} >= {MIN_AREA_M2})
            RETURNING c.id
            """
        ),
        {"event_id": event.id},
    ).scalar()
    if changed is not None:
        # the child's events measure what they cover outside its new baseline again
        session.execute(
            text(f"UPDATE land_release_events e SET outside_area_m2 = "
                 f"{sql_area(sql_difference('e.submitted_geom', 'c.baseline_geom'))} "
                 "FROM hazardous_areas c WHERE c.id = :child AND e.hazard_id = c.id AND e.submitted_geom IS NOT NULL"),
            {"child": changed},
        )
        replay(session, changed)


def _finish(session: Session, hazard_id: uuid.UUID, steps: list[_Step]) -> None:
    """Set status, released_on and reclassified_on from the replayed steps.

    `steps` are all the hazard's events after a full replay, or the one event applied after every
    other (which cannot follow a release: a released hazard takes no later event).
    """
    released_on = next((s.date for s in steps if s.after_m2 < MIN_AREA_M2 and s.before_m2 >= MIN_AREA_M2), None)
    session.execute(
        text(
            "UPDATE hazardous_areas h SET released_on = :released_on, "
            "status = CASE WHEN CAST(:released_on AS date) IS NULL THEN 'active' ELSE 'released' END, "
            f"reclassified_on = {_RECLASSIFIED_ON}, updated_at = now() WHERE id = :id"
        ),
        {"id": hazard_id, "released_on": released_on},
    )


def replay(session: Session, hazard_id: uuid.UUID) -> list[_Step]:
    """Recompute a hazard from its baseline through its valid events in the ledger's order."""
    hazard = session.execute(_HAZARD_FOR_UPDATE, {"id": hazard_id}).one()
    session.execute(text("UPDATE hazardous_areas SET remaining_geom = baseline_geom, "
                         "remaining_area_m2 = baseline_area_m2 WHERE id = :id"), {"id": hazard_id})
    steps = [_apply(session, hazard, event) for event in _valid_events(session, hazard_id)]
    _finish(session, hazard_id, steps)
    return steps


def _check_splits(steps: list[_Step], new_event_id: uuid.UUID) -> None:
    """A split must take part of what remains, not nothing and not all (that is a whole reclassification)."""
    for step in steps:
        if not step.is_split or step.before_m2 < MIN_AREA_M2:
            continue
        new = step.event_id == new_event_id
        if step.released_m2 < MIN_AREA_M2:
            if new:
                continue  # reported below as an event that releases nothing
            raise Problem(409, f"This event leaves nothing for the reclassification {step.event_id} of {step.date} to "
                               "split off: void that reclassification first, or check the date and polygon.",
                          conflicting_event_id=str(step.event_id))
        if step.after_m2 < MIN_AREA_M2:
            if new:
                raise Problem(422, "The reclassification polygon covers all that remains of the hazard: send it "
                                   "without a geometry to reclassify the whole hazard as a CHA.")
            raise Problem(409, f"With this event the reclassification {step.event_id} of {step.date} would split off "
                               "all that remains of the hazard: void that reclassification first.",
                          conflicting_event_id=str(step.event_id))


def _same_event(row: Any, hazard_id: uuid.UUID, new: NewEvent) -> bool:
    same_geometry = (row.submitted_wkb is None and new.geometry is None) or (
        row.submitted_wkb is not None and new.geometry is not None
        and geodesic_area_m2(wkb.loads(bytes(row.submitted_wkb)).symmetric_difference(new.geometry.geometry))
        < MIN_AREA_M2
    )
    return (
        row.hazard_id == hazard_id and new.same_as_stored(row) and same_geometry
        and all(getattr(row, item) == new.items.get(item, 0) for item in ITEM_KINDS)
    )


def _event_result(session: Session, event_id: uuid.UUID, created: bool) -> dict[str, Any]:
    row = session.execute(
        text("SELECT e.id, e.hazard_id, e.kind, e.date, e.released_area_m2, e.outside_area_m2, e.new_hazard_id, "
             "e.external_id, h.remaining_area_m2, h.status FROM land_release_events e "
             "JOIN hazardous_areas h ON h.id = e.hazard_id WHERE e.id = :id"),
        {"id": event_id},
    ).one()
    return _event_answer(row, created)


def _event_answer(row: Any, created: bool) -> dict[str, Any]:
    """What the event routes answer, from a row of the event's columns with its hazard's `remaining_area_m2` and
    `status`."""
    return {
        "id": str(row.id), "hazard_id": str(row.hazard_id), "external_id": row.external_id, "kind": row.kind,
        "date": row.date.isoformat(), "released_area_m2": row.released_area_m2,
        "outside_area_m2": row.outside_area_m2, "remaining_area_m2": row.remaining_area_m2,
        "hazard_status": row.status, "new_hazard_id": str(row.new_hazard_id) if row.new_hazard_id else None,
        "created": created,
    }


def record_event(session: Session, hazard_id: uuid.UUID, new: NewEvent, actor: audit.Actor,
                 today: date | None = None) -> dict[str, Any]:
    """Apply one land-release event to a hazard (replaying later events when it is back-dated)."""
    today = today or date.today()
    if new.kind == "reclassification" and new.geometry is not None:  # a split checks overlaps: the State first
        lock_state_of(session, hazard_id)
    hazard = session.execute(_HAZARD_FOR_UPDATE, {"id": hazard_id}).one_or_none()
    if hazard is None:
        raise Problem(404, f"No hazardous area with id {hazard_id}")
    # the organisation as an entry of the State's register: its id, and its name there
    new.organisation_id, new.properties["organisation"] = organisations.for_event(
        session, hazard.state_iso3, new.organisation, new.organisation_id, actor)
    if new.external_id:
        previous = session.execute(
            text(f"SELECT id, hazard_id, {', '.join((*EVENT_INPUT_COLUMNS, *ITEM_KINDS))}, "
                 "ST_AsBinary(submitted_geom) AS submitted_wkb FROM land_release_events "
                 "WHERE state_iso3 = :iso3 AND external_id = :external_id"),
            {"iso3": hazard.state_iso3, "external_id": new.external_id},
        ).one_or_none()
        if previous is not None:
            if _same_event(previous, hazard_id, new):
                session.rollback()
                return _event_result(session, previous.id, created=False)
            raise Problem(409, f"An event with external_id '{new.external_id}' already exists in "
                               f"{hazard.state_iso3} with different content (id {previous.id}).",
                          existing_id=str(previous.id))
    if new.date > today:
        raise Problem(422, f"The event date {new.date} is in the future.")
    if new.start_date is not None and new.start_date > new.date:
        raise Problem(422, f"The work began on {new.start_date}, after the event's date {new.date} (the day it ended): "
                           "check start_date and date.")
    if new.date < hazard.recorded_on:
        raise Problem(422, f"The event date {new.date} is before the hazard was recorded ({hazard.recorded_on}).")
    if new.geometry is None and new.kind != "reclassification":
        raise Problem(422, f"A {new.kind} needs the geometry of the land it released.")
    if new.kind == "reclassification":
        cha_since = hazard.reclassified_on if hazard.classification == "SHA" else hazard.recorded_on
        if cha_since is not None and cha_since <= new.date:
            raise Problem(422, f"The hazard is already a CHA on {new.date}: only an SHA can be reclassified.")
        if new.geometry is None:
            split = session.execute(
                text("SELECT id, date FROM land_release_events WHERE hazard_id = :id AND voided_at IS NULL "
                     "AND kind = 'reclassification' AND submitted_geom IS NOT NULL AND date >= :date "
                     "ORDER BY date LIMIT 1"),
                {"id": hazard_id, "date": new.date},
            ).one_or_none()
            if split is not None:
                raise Problem(409, f"The reclassification {split.id} of {split.date} splits part of this SHA off as "
                                   f"a CHA: the whole hazard cannot be a CHA from {new.date}, before or on that day. "
                                   "Void that reclassification first, or check the date.",
                              conflicting_event_id=str(split.id))
    if hazard.released_on is not None and hazard.released_on <= new.date:
        raise Problem(422, f"The hazard was fully released on {hazard.released_on}: nothing remains on {new.date}.")

    # a split can leave its CHA with land later events on the SHA would have released (app/ledger/overlaps.py)
    check = (overlaps.WriteCheck(session, hazard.state_iso3, hazard_id)
             if new.kind == "reclassification" and new.geometry is not None else None)
    event = session.execute(_INSERT_EVENT, {
        "wkb": new.geometry.geometry.wkb if new.geometry else None, "hazard_id": hazard_id, "iso3": hazard.state_iso3,
        "direct": new.geometry is not None and new.kind != "reclassification",
        **new.stored_values(), **{item: new.items.get(item, 0) for item in ITEM_KINDS},
        "organisation_id": new.organisation_id,
        **audit.entry_params(actor, state_iso3=hazard.state_iso3, table="land_release_events", action="create",
                             external_id=new.external_id,
                             detail={"hazard_id": str(hazard_id), "kind": new.kind, "date": new.date.isoformat()}),
    }).one()
    if not event.inside:
        boundaries.check_new_event(session, event.id)

    if event.replays:
        steps = replay(session, hazard_id)
        step = next(s for s in steps if s.event_id == event.id)
    else:
        step = (_Step(event.id, event.kind, event.date, event.before_m2, event.released_area_m2,
                      event.remaining_area_m2)
                if event.before_m2 is not None  # applied by the INSERT
                else _apply(session, hazard, event, last=True))
        steps = [step]

    _check_splits(steps, event.id)
    if new.geometry is not None:
        if step.before_m2 < MIN_AREA_M2:
            raise Problem(422, f"Nothing of the hazard remains on {new.date}: it was already fully released.")
        if step.released_m2 < MIN_AREA_M2:
            raise Problem(422, "The event releases nothing: its polygon does not overlap what remained of the hazard "
                               f"on {new.date} (check the polygon, its CRS and the date).")
    if check is not None:
        check.verify(f"This reclassification of {new.date}")
    devices_found.record(session, event.id, hazard.state_iso3, new.devices)
    # the answer from what the INSERT returned, unless a replay or a split changed it since
    result = (_event_answer(event, created=True) if event.before_m2 is not None
              else _event_result(session, event.id, created=True))
    if new.geometry is not None and new.geometry.warnings:
        result["warnings"] = new.geometry.warnings
    session.commit()
    return result


def void_event(session: Session, event_id: uuid.UUID, reason: str, actor: audit.Actor) -> dict[str, Any]:
    """Void an event: the hazard is recomputed as if it never happened; the event stays, marked."""
    event = session.execute(
        text("SELECT id, hazard_id, state_iso3, kind, new_hazard_id, external_id "
             "FROM land_release_events WHERE id = :id"), {"id": event_id},
    ).one_or_none()
    if event is None:
        raise Problem(404, f"No land-release event with id {event_id}")
    overlaps.lock_state(session, event.state_iso3)  # a void may give land back: the State's lock, then the row's
    session.execute(_HAZARD_FOR_UPDATE, {"id": event.hazard_id}).one()
    # read under the locks: a void of the same event that committed while this one waited is seen
    voided_at = session.execute(text("SELECT voided_at FROM land_release_events WHERE id = :id"),
                                {"id": event_id}).scalar_one()
    if voided_at is not None:
        raise Problem(409, f"The event {event_id} was already voided on {voided_at.date()}.")
    check = overlaps.WriteCheck(session, event.state_iso3, event.hazard_id)
    if event.new_hazard_id is not None:
        child_events = session.execute(
            text("SELECT count(*) FROM land_release_events WHERE hazard_id = :c AND voided_at IS NULL"),
            {"c": event.new_hazard_id},
        ).scalar_one()
        if child_events:
            raise Problem(409, f"This reclassification split off hazard {event.new_hazard_id}, which has "
                               f"{child_events} valid event(s): void those first.")
        session.execute(text("UPDATE hazardous_areas SET voided_at = now(), updated_at = now() WHERE id = :c"),
                        {"c": event.new_hazard_id})
        audit.record(session, actor, state_iso3=event.state_iso3, table="hazardous_areas",
                     row_id=event.new_hazard_id, action="void", detail={"reason": reason, "event_id": str(event_id)})
    session.execute(text("UPDATE land_release_events SET voided_at = now(), void_reason = :reason WHERE id = :id"),
                    {"id": event_id, "reason": reason})
    replay(session, event.hazard_id)
    check.verify(f"Voiding the {event.kind} {event_id}")
    audit.record(session, actor, state_iso3=event.state_iso3, table="land_release_events", row_id=event_id,
                 action="void", external_id=event.external_id, detail={"reason": reason})
    result = _event_result(session, event_id, created=False)
    result["voided"] = True
    session.commit()
    return result


# --- reads --------------------------------------------------------------------------------------
def hazard_feature(session: Session, hazard_id: uuid.UUID, as_of: date | None = None) -> dict[str, Any]:
    """The hazard as a GeoJSON Feature: remaining geometry, areas, status and its events, at a date."""
    row = session.execute(
        text(f"SELECT f.id, ST_AsGeoJSON(f.remaining_geom, 8)::json AS geometry, "
             f"{sql_json_properties(HAZARD_PROPERTIES)} AS properties "
             f"FROM ({hazards_sql(as_of is not None)}) f WHERE f.id = :id"),
        {"id": hazard_id, "as_of": as_of},
    ).one_or_none()
    if row is None:
        exists = session.execute(text("SELECT recorded_on FROM hazardous_areas WHERE id = :id AND voided_at IS NULL"),
                                 {"id": hazard_id}).scalar()
        if exists is not None and as_of is not None:
            raise Problem(404, f"Hazard {hazard_id} was recorded on {exists}, after {as_of}.")
        raise Problem(404, f"No hazardous area with id {hazard_id}")
    events = session.execute(
        text(f"SELECT id, {', '.join((*EVENT_INPUT_COLUMNS, *ITEM_KINDS))}, organisation_id, released_area_m2, "
             "outside_area_m2, new_hazard_id, voided_at, void_reason, recorded_at "
             "FROM land_release_events WHERE hazard_id = :id AND (CAST(:as_of AS date) IS NULL OR date <= :as_of) "
             f"ORDER BY {LEDGER_ORDER}"),
        {"id": hazard_id, "as_of": as_of},
    ).all()
    found = devices_found.of_events(session, [e.id for e in events])
    properties = {
        "id": str(row.id), **row.properties,  # as the layer declares them (app.layers)
        "as_of": as_of.isoformat() if as_of else None,
        "events": [
            {
                "id": str(e.id),
                **{p.name: _json(getattr(e, str(p.column))) for p in EVENT_INPUTS},  # as declared (app.layers)
                "organisation_id": str(e.organisation_id) if e.organisation_id else None,
                "released_area_m2": e.released_area_m2,
                "outside_area_m2": e.outside_area_m2,
                "items_destroyed": {item: getattr(e, item) for item in ITEM_KINDS},
                "devices": found.get(e.id, []),
                "new_hazard_id": str(e.new_hazard_id) if e.new_hazard_id else None,
                "voided": e.voided_at is not None,
                "voided_at": e.voided_at.isoformat() if e.voided_at else None, "void_reason": e.void_reason,
                "recorded_at": e.recorded_at.isoformat(),
            }
            for e in events
        ],
    }
    return {"type": "Feature", "id": str(row.id), "geometry": row.geometry, "properties": properties}


_ID = Property("id", "f.id", "uuid")


def _json(value: Any) -> Any:
    """A stored value as JSON gives it: a date (or date-time) in ISO 8601, an id as text."""
    if isinstance(value, date):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value


def list_hazards(session: Session, iso3: str, *, as_of: date | None, classification: str | None,
                 status: str | None, limit: int, offset: int) -> dict[str, Any]:
    """One page of a State's hazards at a date, as a GeoJSON FeatureCollection built in PostGIS."""
    require_state(session, iso3)
    where = ["hz.state_iso3 = :iso3"]
    params: dict[str, Any] = {"iso3": iso3, "as_of": as_of, "limit": limit, "offset": offset}
    if classification:
        where.append("hz.classification = :classification")
        params["classification"] = classification
    if status:
        where.append("hz.status = :status")
        params["status"] = status
    base = f"SELECT * FROM ({hazards_sql(as_of is not None)}) hz WHERE {' AND '.join(where)}"
    matched = session.execute(text(f"SELECT count(*) FROM ({base}) counted"), params).scalar_one()
    features = session.execute(
        text(
            f"""
            SELECT COALESCE(json_agg(json_build_object(
                'type', 'Feature', 'id', f.id,
                'geometry', ST_AsGeoJSON(f.remaining_geom, 8)::json,
                'properties', {sql_json_properties((_ID, *HAZARD_PROPERTIES))}
            ) ORDER BY f.recorded_on, f.external_id), '[]'::json)
            FROM ({base} ORDER BY hz.recorded_on, hz.external_id LIMIT :limit OFFSET :offset) f
            """
        ),
        params,
    ).scalar_one()
    return {"type": "FeatureCollection", "features": features, "numberMatched": matched,
            "numberReturned": len(features)}
