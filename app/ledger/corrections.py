"""Corrections of a hazard: its declared attributes and its polygon, corrected through the ledger's own rules.

A hazard recorded with a wrong name, reference, date or polygon is corrected, not deleted (shared/domain.md,
rule 4: the history of every hazard stays readable):
- What may be corrected: the inputs `app.layers.HAZARD_INPUTS` declares, checked by the same rules as on the
  way in (`app.ledger.input.HazardProperties`), except the classification, which changes only through a
  reclassification event (SHA to CHA, at a date), and the State, which a hazard never changes.
- The polygon: it becomes the hazard's baseline (snapped to the grid as every polygon), and every valid event
  is replayed against it with the ledger's own replay (`app.ledger.book.replay`) under the hazard's row lock;
  each event's area outside the hazard is measured again. Refused, with nothing written (409/422): a
  correction that leaves an event that released land releasing nothing (void the event first), a split that
  would take nothing or everything, land that would count twice in the State (`app.ledger.overlaps`), a
  polygon outside the State (`app.places`; or flagged with `border="accept"`), the polygon of a CHA split off
  by a reclassification (it is what that reclassification took: correct the SHA's event instead).
- `recorded_on` may move, but not after the earliest valid event of the hazard, nor for a split-off CHA.
- `external_id` stays unique in the State (409).
- A correction that may give the hazard land back at some date (its polygon, its recorded_on: `checks_overlaps`)
  takes its State's overlap lock before the hazard's row lock, the ledger's lock order (`app.ledger.book`).
- Each correction is a row of `hazard_corrections` (who, when, why, the values before and after, the polygons
  before and after) and an audit entry (`correct`); a correction that changes nothing is a 422.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from pydantic import ValidationError
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import audit
from app.geometry import MIN_AREA_M2, PolygonalGeometry, geodesic_area_m2, sql_area, sql_difference, sql_snap
from app.layers import HAZARD_INPUTS
from app.ledger.book import _check_splits, _json, lock_state_of, replay
from app.ledger.input import HazardProperties, new_hazard
from app.ledger.overlaps import WriteCheck
from app.places import boundaries, provinces
from app.problems import Problem

# What a correction may not change, and what to do instead.
NOT_CORRECTED = {
    "classification": "the classification changes through a reclassification event (kind reclassification, "
                      "POST /api/v1/hazards/{id}/events), from the date direct evidence was found",
}
CORRECTABLE = tuple(p.name for p in HAZARD_INPUTS if p.name not in NOT_CORRECTED)
_COLUMNS = {p.name: str(p.column) for p in HAZARD_INPUTS}

_LOCKED = text(
    f"SELECT id, state_iso3, parent_id, reclassified_on, baseline_area_m2, {', '.join(_COLUMNS.values())}, "
    "ST_AsBinary(baseline_geom) AS baseline_wkb FROM hazardous_areas WHERE id = :id AND voided_at IS NULL FOR UPDATE"
)


def checks_overlaps(given: Iterable[str], geometry: bool) -> bool:
    """Whether a correction giving these properties (by name) and, with `geometry`, a polygon may give the hazard
    land back (its overlaps are checked), and so takes its State's lock first."""
    return geometry or "recorded_on" in given


def _stored(value: Any) -> Any:
    """A stored value as the JSON of a correction has it (an array's items sorted, once each)."""
    if isinstance(value, list):
        return sorted(set(value))
    return _json(value)


def class_now(classification: str, reclassified_on: date | None) -> str:
    """A hazard's class as it stands now: a CHA since its reclassification, else as recorded."""
    return "CHA" if reclassified_on is not None else classification


def _checked(row: Any, given: Mapping[str, Any], geometry: PolygonalGeometry) -> dict[str, Any]:
    """Every declared input after the correction, checked by the rules of the way in (422 naming each field)."""
    unknown = sorted(set(given) - set(_COLUMNS))
    if unknown:
        raise Problem(422, f"Not a property a correction sets: {', '.join(unknown)}; correctable: "
                           f"{', '.join(CORRECTABLE)}.", errors=[{"field": f"properties.{n}",
                                                                 "message": "not a declared input"} for n in unknown])
    # the class as recorded, or as it stands now: either is no change
    now = {"classification": class_now(row.classification, row.reclassified_on)}
    for name, instead in NOT_CORRECTED.items():
        if name in given and given[name] not in (getattr(row, _COLUMNS[name]), now[name]):
            raise Problem(422, f"properties.{name}: a correction does not change it: {instead}.",
                          errors=[{"field": f"properties.{name}", "message": instead}])
    merged = {name: _json(getattr(row, column)) for name, column in _COLUMNS.items()}
    merged.update({k: v for k, v in given.items() if k not in NOT_CORRECTED})
    try:
        properties = HazardProperties.model_validate(merged)
    except ValidationError as exc:
        errors = [{"field": "properties." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        raise Problem(422, "The correction is not valid; nothing was changed: "
                           + "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from exc
    return new_hazard(properties, geometry).stored_values()


def correct_hazard(session: Session, hazard_id: uuid.UUID, given: Mapping[str, Any],
                   geometry: PolygonalGeometry | None, reason: str, actor: audit.Actor, *, border: str = "refuse",
                   submission_id: uuid.UUID | None = None, unchanged_ok: bool = False) -> dict[str, Any] | None:
    """Correct a hazard's declared attributes (`given`: name -> value, the others kept) and, when `geometry` is
    given, its polygon; all or nothing, committed. A correction that changes nothing is a 422, or with
    `unchanged_ok` (an idempotent replace) None, nothing recorded."""
    if checks_overlaps(given, geometry is not None):
        lock_state_of(session, hazard_id)
    row = session.execute(_LOCKED, {"id": hazard_id}).one_or_none()
    if row is None:
        raise Problem(404, f"No hazardous area with id {hazard_id}")
    baseline = wkb.loads(bytes(row.baseline_wkb))
    new_geometry = geometry is not None and geodesic_area_m2(
        baseline.symmetric_difference(geometry.geometry)) >= MIN_AREA_M2
    after = _checked(row, given, geometry if geometry is not None else PolygonalGeometry(baseline))
    changed = {column: (_stored(getattr(row, column)), _stored(value)) for column, value in after.items()
               if _stored(getattr(row, column)) != _stored(value)}
    if not changed and not new_geometry:
        if unchanged_ok:
            session.rollback()
            return None
        raise Problem(422, "The correction changes nothing: every value given is the hazard's already.")
    iso3 = row.state_iso3
    split_off = row.parent_id is not None
    if split_off and (new_geometry or "recorded_on" in changed):
        raise Problem(422, "This CHA was split off its SHA by a reclassification: its polygon and recorded_on are "
                           "that reclassification's. Correct (void and record again) the reclassification of hazard "
                           f"{row.parent_id} instead.")
    if "external_id" in changed:
        taken = session.execute(text("SELECT id FROM hazardous_areas WHERE state_iso3 = :iso3 AND external_id = :e "
                                     "AND id <> :id"), {"iso3": iso3, "e": after["external_id"], "id": hazard_id}
                                ).scalar()
        if taken is not None:
            raise Problem(409, f"The external_id '{after['external_id']}' is hazard {taken}'s in {iso3}: choose "
                               "another.", existing_id=str(taken))
    if "recorded_on" in changed:
        first = session.execute(text("SELECT min(date) FROM land_release_events WHERE hazard_id = :id "
                                     "AND voided_at IS NULL"), {"id": hazard_id}).scalar()
        if first is not None and after["recorded_on"] > first:
            raise Problem(422, f"recorded_on {after['recorded_on']} is after the hazard's first valid event "
                               f"({first}): a hazard is recorded before any land of it is released.")
    check = WriteCheck(session, iso3, hazard_id) if new_geometry or "recorded_on" in changed else None
    released_before = _released(session, hazard_id)
    if changed:
        session.execute(text(f"UPDATE hazardous_areas SET {', '.join(f'{c} = :{c}' for c in changed)}, "
                             "updated_at = now() WHERE id = :id"),
                        {"id": hazard_id, **{c: after[c] for c in changed}})
    if new_geometry:
        assert geometry is not None
        _replace_polygon(session, hazard_id, geometry)
    if new_geometry or "region" in changed:
        _place(session, iso3, hazard_id, after["region"], border if new_geometry else None)
    events: list[dict[str, Any]] = []
    if new_geometry:
        steps = replay(session, hazard_id)
        _check_splits(steps, uuid.uuid4())  # no new event: every split must still take part of what remains
        released_after = _released(session, hazard_id)
        emptied = [e for e, area in released_before.items()
                   if area >= MIN_AREA_M2 and released_after.get(e, 0.0) < MIN_AREA_M2]
        if emptied:
            raise Problem(409, f"On the corrected polygon the event(s) {', '.join(map(str, emptied))} would release "
                               "nothing: void them first, or correct the polygon. Nothing was changed.",
                          conflicting_event_ids=[str(e) for e in emptied])
        events = [{"id": str(e), "released_area_m2_before": released_before[e], "released_area_m2": area}
                  for e, area in released_after.items() if abs(area - released_before.get(e, 0.0)) >= MIN_AREA_M2]
    if check is not None:
        check.verify("This correction of the hazard")
    return _record(session, row, changed, new_geometry, events, reason, actor, submission_id)


def _released(session: Session, hazard_id: uuid.UUID) -> dict[uuid.UUID, float]:
    return {r.id: r.released_area_m2 for r in session.execute(
        text("SELECT id, released_area_m2 FROM land_release_events WHERE hazard_id = :id AND voided_at IS NULL "
             "AND submitted_geom IS NOT NULL"), {"id": hazard_id})}


def _replace_polygon(session: Session, hazard_id: uuid.UUID, geometry: PolygonalGeometry) -> None:
    """The corrected polygon as the hazard's baseline; its events' area outside it measured again."""
    session.execute(
        text(f"""
            WITH snapped AS MATERIALIZED (SELECT {sql_snap('ST_GeomFromWKB(:wkb, 4326)')} AS geom)
            UPDATE hazardous_areas h SET baseline_geom = s.geom, baseline_area_m2 = {sql_area('s.geom')},
                border_flag = false, updated_at = now()
            FROM snapped s WHERE h.id = :id
        """), {"id": hazard_id, "wkb": geometry.geometry.wkb})
    session.execute(
        text(f"UPDATE land_release_events e SET outside_area_m2 = "
             f"{sql_area(sql_difference('e.submitted_geom', 'h.baseline_geom'))} "
             "FROM hazardous_areas h WHERE h.id = :id AND e.hazard_id = h.id AND e.submitted_geom IS NOT NULL"),
        {"id": hazard_id})


def _place(session: Session, iso3: str, hazard_id: uuid.UUID, region: str | None, border: str | None) -> None:
    """The corrected hazard's province (its region's, else the one holding most of its polygon) and, for a
    corrected polygon (`border` given), its State's boundary (a 422, or flagged with `border="accept"`)."""
    codes = provinces.match_regions(session, iso3, [region], strict=border != "accept")
    session.execute(text("UPDATE hazardous_areas SET province_code = COALESCE(CAST(:code AS text), "
                         "province_of(state_iso3, baseline_geom)) WHERE id = :id"),
                    {"id": hazard_id, "code": codes.get(region) if region else None})
    if border is not None:
        boundaries.check_new_hazards(session, iso3, [hazard_id], border)


def _record(session: Session, row: Any, changed: dict[str, tuple[Any, Any]], new_geometry: bool,
            events: list[dict[str, Any]], reason: str, actor: audit.Actor,
            submission_id: uuid.UUID | None) -> dict[str, Any]:
    before = {c: b for c, (b, _) in changed.items()}
    after = {c: a for c, (_, a) in changed.items()}
    if new_geometry:
        area = session.execute(text("SELECT baseline_area_m2 FROM hazardous_areas WHERE id = :id"),
                               {"id": row.id}).scalar_one()
        before["baseline_area_m2"], after["baseline_area_m2"] = row.baseline_area_m2, area
    correction_id = session.execute(
        text("INSERT INTO hazard_corrections (hazard_id, state_iso3, actor, key_id, reason, before, after, "
             "before_geom, after_geom, submission_id) "
             "SELECT h.id, h.state_iso3, :actor, :key_id, :reason, CAST(:before AS jsonb), CAST(:after AS jsonb), "
             "CASE WHEN :geometry THEN ST_Multi(ST_GeomFromWKB(:before_wkb, 4326)) END, "
             "CASE WHEN :geometry THEN h.baseline_geom END, :submission_id "
             "FROM hazardous_areas h WHERE h.id = :id RETURNING id"),
        {"id": row.id, "actor": actor.name, "key_id": actor.key_id, "reason": reason, "before": json.dumps(before),
         "after": json.dumps(after), "geometry": new_geometry, "before_wkb": bytes(row.baseline_wkb),
         "submission_id": submission_id},
    ).scalar_one()
    audit.record(session, actor, state_iso3=row.state_iso3, table="hazardous_areas", row_id=row.id, action="correct",
                 external_id=after.get("external_id", row.external_id),
                 detail={"reason": reason, "correction_id": str(correction_id), "before": before, "after": after,
                         "polygon": new_geometry,
                         **({"submission_id": str(submission_id)} if submission_id else {})})
    hazard = session.execute(text("SELECT baseline_area_m2, remaining_area_m2, status FROM hazardous_areas "
                                  "WHERE id = :id"), {"id": row.id}).one()
    session.commit()
    return {"id": str(row.id), "correction_id": str(correction_id), "before": before, "after": after,
            "polygon_corrected": new_geometry, "baseline_area_m2": hazard.baseline_area_m2,
            "remaining_area_m2": hazard.remaining_area_m2, "status": hazard.status, "events": events}


def corrections_of(session: Session, hazard_id: uuid.UUID) -> list[dict[str, Any]]:
    """A hazard's corrections, oldest first: who, when, why, the values before and after, the polygons."""
    rows = session.execute(
        text("SELECT id, at, actor, reason, before, after, submission_id, "
             "ST_AsGeoJSON(before_geom, 8)::json AS before_geometry, ST_AsGeoJSON(after_geom, 8)::json AS "
             "after_geometry FROM hazard_corrections WHERE hazard_id = :id ORDER BY at, id"), {"id": hazard_id})
    return [{"id": str(r.id), "at": r.at.isoformat(), "by": r.actor, "reason": r.reason, "before": r.before,
             "after": r.after, "before_geometry": r.before_geometry, "after_geometry": r.after_geometry,
             "submission_id": str(r.submission_id) if r.submission_id else None} for r in rows]
