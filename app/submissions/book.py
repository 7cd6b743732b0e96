"""Submissions and their review: what operators report is held here, out of the ledger, until the
national centre approves it.

Rules (issue 15; IMAS 05.10: information is validated before it is used):
- A submission holds one report: `hazard` (a new hazard, from non-technical survey), `release` (a
  land-release report for one hazard: cancellation, reduction, clearance, reclassification) or
  `batch` (hazards from a file, read and checked as the file import reads and checks them). It is
  checked on arrival with the rules of the JSON API and the import (its properties, its geometry);
  what it says is stored in the submission (its polygons in WGS84), never in the ledger.
- States: `submitted` -> `approved` | `rejected` (a reason is required) | `returned` (with comments
  for the operator, who resubmits it: `returned` -> `submitted`, its revision one more, every
  revision's content kept in its history). Only a `submitted` submission is reviewed.
- Nothing of a submission reaches the ledger, the layers, the tiles, the exports or the summaries
  before its approval. Approval applies it with the ledger's own writes (`app.ledger`: every rule of
  the ledger: clipping, back-dating and replay, overlap refusal) and marks it approved in one
  transaction: when the ledger refuses, its 409/422 says what to fix and the submission stays
  `submitted`, unchanged.
- Reconciliation at approval: a submitted hazard is approved as a new hazard, or linked to an
  existing hazard of the State, its polygon then becoming an event of the kind the reviewer chooses
  on that hazard, or as a correction of an existing hazard (`reconcile=correct`: its polygon and the
  properties it gives, but its reference and recorded date, replace the hazard's through
  `app.ledger.corrections`, kept in the hazard's history with the submission's id).
- Every transition records who and when on the record (`submitted_by`, `reviewed_by`,
  `approved_by`, `approved_at`) and in the audit log; the ledger's own audit entries name the
  approving reviewer as their writer.
- An operator's submission is its organisation's; an editor (or admin) may submit too, as the
  national centre's own data entry: that submission is approved at once, in the same transaction,
  audited as such (`direct`), and when the ledger refuses it nothing is stored.
- What approving would change (the new hazards' area after clipping, the land released, the
  overlaps or the rule that would refuse it) is computed by applying it in a transaction that is
  rolled back.
- What a land-release report claims (the land of its hazard, as it remains, that its polygons cover:
  the backlog's area, the `would_release_m2` of the pending submissions) is always what measuring it
  now gives. It is measured when the report is submitted or resubmitted and stored with it
  (`claimed_m2`), stamped with a digest of everything the measure reads (`claimed_digest`: the
  measure's SQL, the SQL function, GEOS and PostGIS versions it runs, the report's polygons and the hazard's
  remaining geometry); a read takes the stored figure while its stamp is the digest of now, and
  measures again, in the same statement, where it is not (the hazard changed since). No ledger write
  touches the submissions.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError
from pyproj import CRS
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import audit, database, ledger, organisations
from app.committee.results import PendingSubmissions
from app.geometry import WGS84, PolygonalGeometry, read_polygonal, sql_area, sql_intersection
from app.ledger import corrections
from app.ledger.as_of import hazards_sql
from app.ledger.input import HazardProperties, checked_polygon, new_event, new_hazard, parse_hazards, read_features
from app.problems import Problem
from app.settings import get_settings
from app.submissions.results import (
    Approval,
    Preview,
    ReleaseReport,
    Step,
    SubmissionCollection,
    SubmissionFeature,
    SubmissionProperties,
)


@dataclass(frozen=True)
class Report:
    """A checked report, ready to be held in a submission."""

    kind: str  # hazard, release, batch
    content: dict[str, Any]
    polygons: list[PolygonalGeometry]
    date_of_information: date | None
    hazard_id: uuid.UUID | None = None


# --- the reports, checked on arrival -------------------------------------------------------------
def _hazard_content(hazard: ledger.NewHazard) -> dict[str, Any]:
    """A checked hazard as a submission holds it: its declared inputs (app.layers) and its polygon in WGS84."""
    return {"properties": json.loads(json.dumps(hazard.properties, default=str)),  # dates as YYYY-MM-DD
            "geometry": mapping(hazard.geometry.geometry)}


def hazard_report(hazards: list[ledger.NewHazard], file: str | None = None) -> Report:
    """A report of hazards checked by the JSON API's or the import's rules: one hazard, or a batch."""
    kind = "hazard" if len(hazards) == 1 and file is None else "batch"
    content: dict[str, Any] = {"hazards": [_hazard_content(h) for h in hazards]}
    if file is not None:
        content["file"] = file
    dates = [h.date_of_information for h in hazards if h.date_of_information]
    return Report(kind=kind, content=content, polygons=[h.geometry for h in hazards],
                  date_of_information=max(dates) if dates else None)


def release_report(hazard_id: uuid.UUID, report: ReleaseReport, geometry: PolygonalGeometry | None) -> Report:
    if geometry is None and report.kind != "reclassification":
        raise Problem(422, f"A {report.kind} needs the geometry of the land it released.")
    content = {"event": report.model_dump(mode="json", exclude={"geometry", "organisation_id"}),
               "geometry": mapping(geometry.geometry) if geometry else None}
    return Report(kind="release", content=content, polygons=[geometry] if geometry else [],
                  date_of_information=report.date, hazard_id=hazard_id)


def _stored_geometry(geojson: dict[str, Any]) -> PolygonalGeometry:
    return read_polygonal(geojson, WGS84, max_vertices=get_settings().max_vertices_per_geometry)


def _stored_hazards(content: dict[str, Any]) -> list[ledger.NewHazard]:
    return [new_hazard(HazardProperties.model_validate(f["properties"]), _stored_geometry(f["geometry"]))
            for f in content["hazards"]]


def _stored_event(content: dict[str, Any], organisation_id: uuid.UUID | None) -> ledger.NewEvent:
    report = ReleaseReport.model_validate(content["event"])
    geometry = _stored_geometry(content["geometry"]) if content["geometry"] else None
    return new_event(report, geometry, report.items_destroyed.model_dump(), organisation_id=organisation_id,
                     devices=report.devices)


# --- transactions ---------------------------------------------------------------------------------
@contextmanager
def _transaction(keep: bool) -> Iterator[Session]:
    """A session whose commits (the ledger commits after each write) are savepoints of one transaction,
    committed at the end when `keep`, else rolled back; rolled back whenever an exception leaves it."""
    with database.get_engine().connect() as conn:
        outer = conn.begin()
        try:
            with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
                yield session
                if keep:
                    session.commit()
            if keep:
                outer.commit()
            else:
                outer.rollback()
        except BaseException:
            outer.rollback()
            raise


def _history(session: Session, submission_id: uuid.UUID, action: str, status: str, actor: audit.Actor,
             comment: str | None = None, content: dict[str, Any] | None = None) -> None:
    session.execute(
        text("INSERT INTO submission_history (submission_id, revision, action, status, actor, key_id, comment, "
             "content) SELECT id, revision, :action, :status, :actor, :key_id, :comment, CAST(:content AS jsonb) "
             "FROM submissions WHERE id = :id"),
        {"id": submission_id, "action": action, "status": status, "actor": actor.name, "key_id": actor.key_id,
         "comment": comment, "content": json.dumps(content) if content is not None else None},
    )


# --- what a land-release report claims of its hazard (see the module docstring) ---------------------------
def _sql_measured_claim(geom: str, remaining: str) -> str:
    return sql_area(sql_intersection(geom, remaining))


# What the measure runs besides its own SQL: the overlay function (migrations 0015, 0017) and GEOS; a digest
# computed once per statement.
_MEASURED_BY = (f"(SELECT decode(md5('{hashlib.md5(_sql_measured_claim('a', 'b').encode()).hexdigest()}' || "
                "pg_get_functiondef(CAST('grid_intersection(geometry, geometry, double precision)' AS regprocedure)) "
                "|| postgis_geos_version() || postgis_lib_version()), 'hex'))")


def sql_claim_digest(geom: str, remaining: str) -> str:
    """SQL: the stamp of a claim measured now from a report's polygons `geom` and its hazard's `remaining`
    geometry (a uuid: md5 of the measure and of both geometries)."""
    return (f"CAST(md5({_MEASURED_BY} || COALESCE(ST_AsEWKB({geom}), ''::bytea) || ST_AsEWKB({remaining})) "
            "AS uuid)")


def sql_claimed_m2(submission: str, hazard: str) -> str:
    """SQL: the land of the hazard row `hazard`, as it remains, that the land-release report `submission` (a
    submissions row) covers: its stored figure while its stamp holds, else measured now."""
    geom, remaining = f"{submission}.geom", f"{hazard}.remaining_geom"
    return (f"CASE WHEN {submission}.claimed_digest = {sql_claim_digest(geom, remaining)} "
            f"THEN {submission}.claimed_m2 ELSE {_sql_measured_claim(geom, remaining)} END")


def sql_claim(geom: str, remaining: str) -> str:
    """The SELECT list of a claim measured now (`claimed_m2`, `claimed_digest`)."""
    return (f"{_sql_measured_claim(geom, remaining)} AS claimed_m2, "
            f"{sql_claim_digest(geom, remaining)} AS claimed_digest")


_GEOMETRY = ("(SELECT ST_Multi(ST_CollectionExtract(ST_Union(ST_GeomFromWKB(w, 4326)), 3)) "
             "FROM unnest(CAST(:wkbs AS bytea[])) w)")


# The claim of a land-release report on its hazard (:hazard_id), measured as it is held: no row for other reports
_CLAIM = (f"SELECT {sql_claim('g.geom', 'h.remaining_geom')} FROM g JOIN hazardous_areas h "
          "ON h.id = CAST(:hazard_id AS uuid)")


def _geometry_params(report: Report) -> dict[str, Any]:
    return {"wkbs": [p.geometry.wkb for p in report.polygons] or None}


def _check_reporting(session: Session, iso3: str, organisation_id: uuid.UUID | None, report: Report) -> None:
    """A report held for an organisation names none other (app.organisations.check_reporting): checked when it is
    submitted and when it is resubmitted, not left for the approval to find."""
    if organisation_id is not None:
        event = report.content.get("event") or {}
        organisations.check_reporting(session, iso3, organisation_id, event.get("organisation"))


# --- submitting ------------------------------------------------------------------------------------
def hold(session: Session, iso3: str, report: Report, actor: audit.Actor, *,
         organisation_id: uuid.UUID | None, direct: bool = False) -> uuid.UUID:
    """Hold the report in a new submission, in `session` (not committed); its id."""
    ledger.require_state(session, iso3)
    _check_reporting(session, iso3, organisation_id, report)
    submission_id: uuid.UUID = session.execute(
        text(f"""
            WITH g AS MATERIALIZED (SELECT {_GEOMETRY} AS geom), c AS MATERIALIZED ({_CLAIM})
            INSERT INTO submissions (state_iso3, organisation_id, kind, hazard_id, content, geom, area_m2,
                feature_count, date_of_information, submitted_by, submitted_key_id, submitted_at, claimed_m2,
                claimed_digest)
            SELECT :iso3, :organisation_id, :kind, :hazard_id, CAST(:content AS jsonb), g.geom,
                   {sql_area('g.geom')}, :features, :date_of_information, :actor, :key_id, clock_timestamp(),
                   c.claimed_m2, c.claimed_digest
            FROM g LEFT JOIN c ON true RETURNING id
        """),
        {"iso3": iso3, "organisation_id": organisation_id, "kind": report.kind, "hazard_id": report.hazard_id,
         "content": json.dumps(report.content), "features": max(len(report.polygons), 1),
         "date_of_information": report.date_of_information, "actor": actor.name, "key_id": actor.key_id,
         **_geometry_params(report)},
    ).scalar_one()
    _history(session, submission_id, "submit", "submitted", actor, content=report.content)
    audit.record(session, actor, state_iso3=iso3, table="submissions", row_id=submission_id, action="submit",
                 detail={"kind": report.kind, "organisation_id": str(organisation_id) if organisation_id else None,
                         "direct": direct})
    return submission_id


def submit(iso3: str, report: Report, actor: audit.Actor, *, organisation_id: uuid.UUID | None,
           direct: bool) -> SubmissionFeature:
    """Hold the report in a new submission; with `direct` (the centre's own entry) approve it at once, in the
    same transaction."""
    with _transaction(keep=True) as session:
        submission_id = hold(session, iso3, report, actor, organisation_id=organisation_id, direct=direct)
        if direct:
            _approve(session, submission_id, Approval.model_validate({}), actor, direct=True)
    return get(submission_id, preview=False)


def resubmit(submission_id: uuid.UUID, report: Report, actor: audit.Actor) -> SubmissionFeature:
    """A returned submission, corrected: submitted again as its next revision (the earlier ones stay in its
    history)."""
    with _transaction(keep=True) as session:
        current = _locked(session, submission_id)
        if current.status != "returned":
            raise Problem(409, f"The submission is {current.status}: only a submission returned for correction "
                               "is submitted again.")
        if report.kind != current.kind and {report.kind, current.kind} != {"hazard", "batch"}:
            raise Problem(422, f"The submission is a {current.kind} report: resubmit a {current.kind} report.")
        if report.kind == "release" and report.hazard_id != current.hazard_id:
            raise Problem(422, f"The submission reports on hazard {current.hazard_id}: resubmit it for that hazard.")
        _check_reporting(session, current.state_iso3, current.organisation_id, report)
        session.execute(
            text(f"""
                WITH g AS MATERIALIZED (SELECT {_GEOMETRY} AS geom), c AS MATERIALIZED ({_CLAIM})
                UPDATE submissions SET kind = :kind, content = CAST(:content AS jsonb), geom = g.geom,
                    area_m2 = {sql_area('g.geom')}, feature_count = :features,
                    date_of_information = :date_of_information, status = 'submitted', revision = revision + 1,
                    submitted_by = :actor, submitted_key_id = :key_id, submitted_at = clock_timestamp(),
                    claimed_m2 = c.claimed_m2, claimed_digest = c.claimed_digest
                FROM g LEFT JOIN c ON true WHERE id = :id
            """),
            {"id": submission_id, "kind": report.kind, "content": json.dumps(report.content),
             "hazard_id": report.hazard_id,
             "features": max(len(report.polygons), 1), "date_of_information": report.date_of_information,
             "actor": actor.name, "key_id": actor.key_id, **_geometry_params(report)},
        )
        _history(session, submission_id, "resubmit", "submitted", actor, content=report.content)
        audit.record(session, actor, state_iso3=current.state_iso3, table="submissions", row_id=submission_id,
                     action="resubmit", detail={"revision": current.revision + 1})
    return get(submission_id, preview=False)


# --- reviewing -------------------------------------------------------------------------------------
def _locked(session: Session, submission_id: uuid.UUID) -> Any:
    row = session.execute(
        text("SELECT id, state_iso3, organisation_id, kind, status, hazard_id, content, revision, submitted_by "
             "FROM submissions WHERE id = :id FOR UPDATE"), {"id": submission_id},
    ).one_or_none()
    if row is None:
        raise Problem(404, f"No submission with id {submission_id}")
    return row


def _require_submitted(row: Any) -> None:
    if row.status != "submitted":
        raise Problem(409, f"The submission is {row.status}: only a submitted submission is reviewed"
                           + (" (the operator resubmits a returned one)." if row.status == "returned" else "."))


def _apply(session: Session, row: Any, approval: Approval, actor: audit.Actor) -> dict[str, Any]:
    """Apply the submission to the ledger with the ledger's own writes; what they answered."""
    if row.kind == "release":
        event = ledger.record_event(session, row.hazard_id, _stored_event(row.content, row.organisation_id), actor)
        return {"events": [event]}
    hazards = _stored_hazards(row.content)
    if approval.reconcile == "correct":
        return _correct(session, row, approval, len(hazards), actor)
    if approval.reconcile == "link":
        if approval.hazard_id is None or approval.event_kind is None:
            raise Problem(422, "reconcile=link needs the existing hazard (hazard_id) and the event its polygon "
                               "becomes (event_kind).")
        if len(hazards) != 1:
            raise Problem(422, f"A batch of {len(hazards)} hazards is approved as new hazards: link a single "
                               "hazard's submission.")
        target = session.execute(text("SELECT state_iso3 FROM hazardous_areas WHERE id = :id AND voided_at IS NULL"),
                                 {"id": approval.hazard_id}).scalar()
        if target != row.state_iso3:
            raise Problem(422, f"No hazard {approval.hazard_id} in {row.state_iso3} to link the submission to.")
        (hazard,) = hazards
        event = ledger.record_event(session, approval.hazard_id, ledger.NewEvent(
            kind=approval.event_kind, date=approval.date or hazard.recorded_on, geometry=hazard.geometry,
            organisation_id=row.organisation_id), actor)
        return {"linked_to": str(approval.hazard_id), "events": [event]}
    recorded = ledger.record_hazards(session, row.state_iso3, hazards, actor, clip=approval.overlap == "clip",
                                     border=approval.border)
    created = [r["id"] for r in recorded if r["created"]]
    if row.organisation_id is not None and created:  # the reporting organisation
        session.execute(text("UPDATE hazardous_areas SET organisation_id = :org WHERE id = ANY(CAST(:ids AS uuid[]))"),
                        {"org": row.organisation_id, "ids": created})
    return {"hazards": recorded}


# What a submitted hazard does not change of the hazard it corrects: its reference and when it was recorded.
_KEPT_BY_CORRECTION = ("external_id", "recorded_on")


def _correct(session: Session, row: Any, approval: Approval, count: int, actor: audit.Actor) -> dict[str, Any]:
    """The submitted hazard as a correction of an existing one: its polygon and the properties it gives replace
    the hazard's, through the ledger's correction (every event replayed; its class is not changed)."""
    if approval.hazard_id is None:
        raise Problem(422, "reconcile=correct needs the hazard the submission corrects (hazard_id).")
    if count != 1:
        raise Problem(422, f"A batch of {count} hazards is approved as new hazards: correct with a single hazard's "
                           "submission.")
    target = session.execute(text("SELECT state_iso3, classification, reclassified_on FROM hazardous_areas "
                                  "WHERE id = :id AND voided_at IS NULL"), {"id": approval.hazard_id}).one_or_none()
    if target is None or target.state_iso3 != row.state_iso3:
        raise Problem(422, f"No hazard {approval.hazard_id} in {row.state_iso3} for the submission to correct.")
    (submitted,) = row.content["hazards"]
    _same_class(submitted["properties"].get("classification"), target, approval.hazard_id)
    given = {k: v for k, v in submitted["properties"].items() if v is not None and k not in _KEPT_BY_CORRECTION}
    corrected = corrections.correct_hazard(
        session, approval.hazard_id, given, _stored_geometry(submitted["geometry"]),
        approval.reason or f"submission {row.id} (revision {row.revision}) approved as a correction", actor,
        border=approval.border, submission_id=row.id)
    return {"corrected": str(approval.hazard_id), "correction": corrected}


def _same_class(given: str | None, hazard: Any, hazard_id: uuid.UUID) -> None:
    """A correction does not change a hazard's class (`app.ledger.corrections`): a submission that gives another
    class is refused with what the reviewer does instead."""
    now = corrections.class_now(hazard.classification, hazard.reclassified_on)
    if given is None or given in (hazard.classification, now):
        return
    if given == "CHA":
        raise Problem(422, f"The submission gives a CHA and hazard {hazard_id} is an SHA: a correction does not change "
                           "the class. Record the hazard's reclassification first (POST "
                           f"/api/v1/hazards/{hazard_id}/events with kind reclassification, dated when direct evidence "
                           "was found; without a geometry the whole hazard becomes a CHA), then approve this "
                           "submission again with reconcile=correct.")
    raise Problem(422, f"The submission gives an SHA and hazard {hazard_id} is a CHA: a CHA does not become an SHA "
                       "again. Return the submission to the operator to correct its classification, then approve it "
                       "with reconcile=correct.")


def _approve(session: Session, submission_id: uuid.UUID, approval: Approval, actor: audit.Actor,
             direct: bool = False) -> None:
    row = _locked(session, submission_id)
    _require_submitted(row)
    applied = _apply(session, row, approval, actor)
    session.execute(
        text("UPDATE submissions SET status = 'approved', applied = CAST(:applied AS jsonb), reviewed_by = :actor, "
             "reviewed_key_id = :key_id, reviewed_at = now(), approved_by = :actor, approved_at = now(), "
             "comment = NULL WHERE id = :id"),
        {"id": submission_id, "applied": json.dumps(applied), "actor": actor.name, "key_id": actor.key_id},
    )
    _history(session, submission_id, "approve", "approved", actor,
             comment="recorded directly by the national centre" if direct else None)
    audit.record(session, actor, state_iso3=row.state_iso3, table="submissions", row_id=submission_id,
                 action="approve", detail={"kind": row.kind, "revision": row.revision, "submitted_by": row.submitted_by,
                                           "reconcile": approval.reconcile, "direct": direct, "applied": applied})


def approve(submission_id: uuid.UUID, approval: Approval, actor: audit.Actor) -> SubmissionFeature:
    """Apply the submission to the ledger and mark it approved, in one transaction (all or nothing)."""
    with _transaction(keep=True) as session:
        _approve(session, submission_id, approval, actor)
    return get(submission_id, preview=False)


def decide(session: Session, submission_id: uuid.UUID, action: str, comment: str, actor: audit.Actor) -> None:
    """Reject the submission (`reject`, with its reason) or return it for correction (`return`, with
    comments), in `session` (not committed)."""
    status = {"reject": "rejected", "return": "returned"}[action]
    row = _locked(session, submission_id)
    _require_submitted(row)
    session.execute(
        text("UPDATE submissions SET status = :status, comment = :comment, reviewed_by = :actor, "
             "reviewed_key_id = :key_id, reviewed_at = now() WHERE id = :id"),
        {"id": submission_id, "status": status, "comment": comment, "actor": actor.name, "key_id": actor.key_id},
    )
    _history(session, submission_id, action, status, actor, comment=comment)
    audit.record(session, actor, state_iso3=row.state_iso3, table="submissions", row_id=submission_id,
                 action=action, detail={"revision": row.revision, "comment": comment})


def review(session: Session, submission_id: uuid.UUID, action: str, comment: str,
           actor: audit.Actor) -> SubmissionFeature:
    """Reject or return the submission (see `decide`)."""
    decide(session, submission_id, action, comment, actor)
    session.commit()
    return get(submission_id, preview=False)


def preview(submission_id: uuid.UUID, approval: Approval | None = None) -> Preview:
    """What approving the submission (as new, unless `approval` says otherwise) would change, written in a
    transaction that is rolled back."""
    with _transaction(keep=False) as session:
        row = _locked(session, submission_id)
        try:
            applied = _apply(session, row, approval or Approval.model_validate({}), audit.Actor(name="preview"))
        except Problem as problem:
            return Preview(approvable=False, problem={"status": problem.status, "detail": problem.detail,
                                                      **problem.extra})
    hazards = applied.get("hazards", [])
    events = applied.get("events", [])
    return Preview(approvable=True, hazards_created=sum(1 for h in hazards if h["created"]),
                   created_area_m2=sum(h["baseline_area_m2"] for h in hazards if h["created"]),
                   released_area_m2=sum(e["released_area_m2"] for e in events if e["kind"] != "reclassification"),
                   hazards=hazards, events=events)


# --- reads -----------------------------------------------------------------------------------------
_SELECT = """
    SELECT s.id, s.state_iso3, s.kind, s.status, s.organisation_id, o.name AS organisation, s.hazard_id, s.revision,
           s.feature_count, s.area_m2, s.date_of_information, s.submitted_by, s.submitted_at, s.reviewed_by,
           s.reviewed_at, s.approved_by, s.approved_at, s.comment, s.content, s.applied,
           ST_AsGeoJSON(s.geom, 8)::json AS geometry
    FROM submissions s LEFT JOIN organisations o ON o.id = s.organisation_id
"""


def _feature(row: Any, preview_it: bool, history: list[Step] | None = None) -> SubmissionFeature:
    values = dict(row._mapping)
    geometry = values.pop("geometry")
    values["state"] = values.pop("state_iso3")
    submission_id = values.pop("id")
    properties = SubmissionProperties(
        **values, history=history, preview=preview(submission_id) if preview_it and row.status == "submitted" else None)
    return SubmissionFeature(id=submission_id, geometry=geometry, properties=properties)


def get(submission_id: uuid.UUID, *, preview: bool = True) -> SubmissionFeature:
    """One submission with its history (and, while it awaits review, what approving it would change)."""
    with database.session() as session:
        row = session.execute(text(f"{_SELECT} WHERE s.id = :id"), {"id": submission_id}).one_or_none()
        if row is None:
            raise Problem(404, f"No submission with id {submission_id}")
        steps = [Step.model_validate(dict(r._mapping)) for r in session.execute(
            text("SELECT revision, action, status, at, actor, key_id, comment, content FROM submission_history "
                 "WHERE submission_id = :id ORDER BY id"), {"id": submission_id})]
    return _feature(row, preview, steps)


@dataclass(frozen=True)
class SubmissionFilter:
    status: str | None = None
    organisation_id: uuid.UUID | None = None
    kind: str | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None
    hazard_id: uuid.UUID | None = None


def list_submissions(session: Session, iso3: str, where: SubmissionFilter, *, limit: int, offset: int,
                     with_preview: bool) -> SubmissionCollection:
    """A page of the State's submissions, oldest first (the order of a review queue)."""
    ledger.require_state(session, iso3)
    conditions = ["s.state_iso3 = :iso3"]
    params: dict[str, Any] = {"iso3": iso3, "limit": limit, "offset": offset}
    for name in ("status", "organisation_id", "kind", "hazard_id"):
        if getattr(where, name) is not None:
            conditions.append(f"s.{name} = :{name}")
            params[name] = getattr(where, name)
    if where.submitted_from is not None:
        conditions.append("s.submitted_at >= CAST(:submitted_from AS date)")
        params["submitted_from"] = where.submitted_from
    if where.submitted_to is not None:
        conditions.append("s.submitted_at < CAST(:submitted_to AS date) + 1")
        params["submitted_to"] = where.submitted_to
    condition = " AND ".join(conditions)
    matched = session.execute(text(f"SELECT count(*) FROM submissions s WHERE {condition}"), params).scalar_one()
    rows = session.execute(text(f"{_SELECT} WHERE {condition} ORDER BY s.submitted_at, s.id LIMIT :limit "
                                "OFFSET :offset"), params).all()
    session.rollback()  # each preview is a transaction of its own
    features = [_feature(row, with_preview) for row in rows]  # each preview a rolled-back transaction
    return SubmissionCollection(features=features, numberMatched=matched, numberReturned=len(features))


def backlog(session: Session, states: list[str] | None = None,
            as_of: date | None = None) -> dict[str, list[PendingSubmissions]]:
    """Per State, the submissions not approved yet (submitted, or returned for correction), per kind:
    how many and their area (a hazard's submitted area; a land-release report's land of its hazard that
    remains, what it claims to release: `sql_claimed_m2`, stored while the hazard does not change).

    At a past `as_of`: those submitted by the end of that day and neither approved nor rejected by then (the
    latest step of each one's history by then), with the polygons of the revision then pending and, for a
    land-release report, the land of its hazard that remained at that date (the ledger as of then)."""
    if as_of is None or as_of >= date.today():
        rows = session.execute(
            text(f"""
                SELECT s.state_iso3, s.kind, count(*) AS submissions,
                       COALESCE(sum(CASE WHEN s.kind = 'release' THEN {sql_claimed_m2('s', 'h')}
                                         ELSE s.area_m2 END), 0) AS area_m2
                FROM submissions s LEFT JOIN hazardous_areas h ON h.id = s.hazard_id
                WHERE s.status IN ('submitted', 'returned')
                  AND (CAST(:states AS text[]) IS NULL OR s.state_iso3 = ANY(CAST(:states AS text[])))
                GROUP BY s.state_iso3, s.kind ORDER BY s.state_iso3, s.kind
            """),
            {"states": states},
        )
    else:
        rows = session.execute(text(_BACKLOG_THEN), {"states": states, "as_of": as_of})
    result: dict[str, list[PendingSubmissions]] = {}
    for row in rows:
        result.setdefault(row.state_iso3, []).append(
            PendingSubmissions(kind=row.kind, count=row.submissions, area_m2=row.area_m2))
    return result


# The backlog at the end of :as_of, from the submissions' history: each one's latest step by then, the content
# of the revision it had then (its polygons as `hold` unions them; the stored ones, area and claim while that is
# still its revision), and the remaining land of a report's hazard at that date (the stored claim holds where it
# is the land the claim was measured against: `sql_claimed_m2`).
_POLYGONS_THEN = ("(SELECT ST_Multi(ST_CollectionExtract(ST_Union(ST_SetSRID(ST_GeomFromGeoJSON(g.geojson), 4326)), "
                  "3)) FROM (SELECT p.content ->> 'geometry' AS geojson WHERE p.kind = 'release' UNION ALL "
                  "SELECT f ->> 'geometry' FROM jsonb_array_elements(p.content -> 'hazards') f) g)")
_BACKLOG_THEN = f"""
    WITH last AS (
        SELECT DISTINCT ON (h.submission_id) h.submission_id, h.revision, h.status
        FROM submission_history h JOIN submissions s ON s.id = h.submission_id
        WHERE h.at < CAST(:as_of AS date) + 1
          AND (CAST(:states AS text[]) IS NULL OR s.state_iso3 = ANY(CAST(:states AS text[])))
        ORDER BY h.submission_id, h.id DESC
    ), pending AS (
        SELECT s.state_iso3, s.kind, s.hazard_id, s.revision = l.revision AS current, s.geom AS current_geom,
               s.area_m2, s.claimed_m2, s.claimed_digest,
               (SELECT c.content FROM submission_history c WHERE c.submission_id = s.id AND c.revision = l.revision
                  AND c.content IS NOT NULL ORDER BY c.id DESC LIMIT 1) AS content
        FROM last l JOIN submissions s ON s.id = l.submission_id
        WHERE l.status IN ('submitted', 'returned')
    ), shaped AS (
        SELECT p.state_iso3, p.kind, p.hazard_id,
               CASE WHEN p.current THEN p.current_geom ELSE {_POLYGONS_THEN} END AS geom,
               CASE WHEN p.current THEN p.area_m2 END AS area_m2, p.claimed_m2,
               CASE WHEN p.current THEN p.claimed_digest END AS claimed_digest
        FROM pending p
    )
    SELECT p.state_iso3, p.kind, count(*) AS submissions,
           COALESCE(sum(CASE WHEN p.kind = 'release' THEN {sql_claimed_m2('p', 'r')}
                             ELSE COALESCE(p.area_m2, {sql_area('p.geom')}) END), 0) AS area_m2
    FROM shaped p LEFT JOIN ({hazards_sql(True)}) r ON r.id = p.hazard_id
    GROUP BY p.state_iso3, p.kind ORDER BY p.state_iso3, p.kind
"""


def resubmitted_report(session: Session, submission_id: uuid.UUID, body: Any, crs: CRS, repair: bool) -> Report:
    """The corrected report of a returned submission, checked as its kind is on arrival: hazards as GeoJSON
    features, a land-release report as its event."""
    row = session.execute(text("SELECT kind, hazard_id FROM submissions WHERE id = :id"),
                          {"id": submission_id}).one_or_none()
    if row is None:
        raise Problem(404, f"No submission with id {submission_id}")
    if row.kind != "release":
        return hazard_report(parse_hazards(read_features(body), crs, repair))
    try:
        report = ReleaseReport.model_validate(body)
    except ValidationError as exc:
        errors = [{"field": "body/" + "/".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise Problem(422, "The land-release report is not valid: "
                           + "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from exc
    return release_report(row.hazard_id, report, checked_polygon(report.geometry, crs))
