"""States, their Article 5 decisions and work plans, and the summaries the Committee reads."""
from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Literal, TypeAlias

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app import access
from app.audit import Actor
from app.bodies import JsonBodyRoute
from app.committee import article5, formats, i18n, summaries
from app.committee.results import (
    AnnualReport,
    Overlap,
    Overlaps,
    Overview,
    RecordedDecision,
    StateList,
    StateRecord,
    StateSummary,
    WorkPlan,
)
from app.database import get_session
from app.ledger import overlaps, require_state
from app.params import ISO3, CalendarDate
from app.places.quality import QualityReport, quality_report
from app.problems import Problem
from app.read_routing import get_read_session
from app.routers.deps import request_actor

# Every answer's texts (reasons, report labels, problems) in the request's language (app.committee.i18n).
router = APIRouter(prefix="/api/v1", tags=["article 5"], route_class=JsonBodyRoute,
                   dependencies=[Depends(i18n.use_language)])

AsOf = Query(None, description="Answer for the end of this day (YYYY-MM-DD); default today")
if TYPE_CHECKING:  # a Literal of the registry's format names at run time; mypy sees the str it is
    OverviewFormat: TypeAlias = str
    ReportFormat: TypeAlias = str
else:
    OverviewFormat = formats.query_type(Overview)
    ReportFormat = formats.query_type(AnnualReport)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["extension", "completion", "reopening", "withdrawal_notified", "withdrawal_effective",
                  "armed_conflict_began", "armed_conflict_ended", "suspension_notified"]
    decided_on: CalendarDate = Field(description="The date the decision was taken (or the notification received)")
    deadline: CalendarDate | None = Field(None, description="The new deadline: required for an extension, "
                                                            "optional for a reopening, absent otherwise")
    meeting: str | None = Field(None, max_length=500, description="e.g. '22MSP' or 'Fifth Review Conference'")
    source: str | None = Field(None, max_length=2000, description="Where the fact comes from (document symbol, URL)")
    confidence: Literal["high", "medium", "low"] | None = None
    note: str | None = Field(None, max_length=4000)


class CorrectionIn(BaseModel):
    """The fields of a decision whose values are wrong, with the right values (an empty value: not known), and why."""

    # At least one field besides the reason.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 2})

    reason: str = Field(min_length=1, max_length=4000, description="Why the fact is corrected (e.g. the document "
                                                                   "read)")
    decided_on: CalendarDate | None = None
    decided_by: CalendarDate | None = Field(None, description="The latest day it can have been taken (the "
                                                              "meeting's closing day) when the day is not known")
    meeting: str | None = Field(None, max_length=500)
    deadline: CalendarDate | None = None
    extensions_count: int | None = Field(None, ge=0, le=20, strict=True)
    source: str | None = Field(None, max_length=2000)
    confidence: Literal["high", "medium", "low"] | None = None
    note: str | None = Field(None, max_length=4000)


class MilestoneIn(BaseModel):
    # Numbers are JSON numbers (strict): true is not 1, "2026" is not 2026.
    model_config = ConfigDict(extra="forbid")

    year: int = Field(ge=1999, le=2100, strict=True)
    area_m2: float = Field(ge=0, allow_inf_nan=False, strict=True,
                           description="Mined area to be addressed that year, m2")
    areas: int | None = Field(None, ge=0, strict=True, description="Number of areas to be addressed that year")


class WorkPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: uuid.UUID | None = None
    milestones: list[MilestoneIn] = Field(max_length=100)


@router.get("/states", summary="States Parties with their current Article 5 deadline",
            dependencies=[Depends(access.public_reader)], response_model=StateList)
def list_states(session: Session = Depends(get_session)) -> StateList:
    return article5.state_list(session)


@router.get("/states/{iso3}", summary="A State: current deadline, extensions, status and the decision history",
            dependencies=[Depends(access.public_reader)], response_model=StateRecord)
def get_state(iso3: ISO3, session: Session = Depends(get_session)) -> StateRecord:
    return article5.state_record(session, iso3.upper())


@router.post("/states/{iso3}/article5/decisions/{decision_id}/corrections", status_code=201,
             summary="Correct a fact with a reason (Committee or admin): the corrected one stays in the history",
             dependencies=[Depends(access.article5_writer)], response_model=RecordedDecision)
def post_correction(body: CorrectionIn, iso3: ISO3, decision_id: uuid.UUID, session: Session = Depends(get_session),
                    actor: Actor = Depends(request_actor)) -> RecordedDecision:
    changes = {name: getattr(body, name) for name in body.model_fields_set if name != "reason"}
    return article5.correct_decision(session, iso3.upper(), decision_id, changes, body.reason, actor)


MILESTONES_LINK = {"SetMilestones": {
    "operationRef": "#/paths/~1api~1v1~1states~1{iso3}~1milestones/put",
    "parameters": {"iso3": "$request.path.iso3", "decision_id": "$response.body#/decision/id"},
    "description": "Set the work-plan milestones of this decision (an extension)"}}


@router.post("/states/{iso3}/article5/decisions", status_code=201,
             summary="Record an extension, completion, reopening or withdrawal (Committee or admin)",
             dependencies=[Depends(access.article5_writer)], response_model=RecordedDecision,
             responses={201: {"description": "The decision and where the State stands now",
                              "links": MILESTONES_LINK}})
def post_decision(body: DecisionIn, iso3: ISO3, session: Session = Depends(get_session),
                  actor: Actor = Depends(request_actor)) -> RecordedDecision:
    new = article5.NewDecision(kind=body.kind, decided_on=body.decided_on, deadline=body.deadline,
                               meeting=body.meeting, source=body.source, confidence=body.confidence, note=body.note)
    return article5.record_decision(session, iso3.upper(), new, actor)


@router.put("/states/{iso3}/milestones",
            summary="Set the work-plan milestones of a granted extension (default: the one in force today)",
            dependencies=[Depends(access.article5_writer)], response_model=WorkPlan)
def put_milestones(
    iso3: ISO3,
    body: list[MilestoneIn] | WorkPlanIn = Body(
        examples=[[{"year": 2026, "area_m2": 12_500_000, "areas": 140}, {"year": 2027, "area_m2": 11_000_000}]]),
    decision_id: uuid.UUID | None = Query(None, description="The extension the work plan belongs to"),
    session: Session = Depends(get_session),
    actor: Actor = Depends(request_actor),
) -> WorkPlan:
    if isinstance(body, WorkPlanIn):
        if decision_id and body.decision_id and decision_id != body.decision_id:
            raise Problem(422, "decision_id differs between the query and the body: give it once.")
        decision_id = decision_id or body.decision_id
        items = body.milestones
    else:
        items = body
    milestones = [article5.Milestone(year=m.year, area_m2=m.area_m2, areas=m.areas) for m in items]
    return article5.replace_milestones(session, iso3.upper(), milestones, decision_id, actor)


@router.get("/states/{iso3}/summary", summary="Remaining contamination, land release and Article 5 progress at a date",
            dependencies=[Depends(access.public_state_reader)], response_model=StateSummary)
def state_summary(iso3: ISO3, as_of: CalendarDate | None = AsOf,
                  session: Session = Depends(get_read_session)) -> StateSummary:
    return summaries.state_summary(session, iso3.upper(), as_of or date.today())


HEADERS = Query("titles", description=formats.HEADERS_DESCRIPTION)
OVERVIEW_FORMATS = formats.description(Overview)
REPORT_FORMATS = formats.description(AnnualReport)


@router.get("/summary", summary="The Committee's overview: one row per State (JSON or CSV)",
            response_model=Overview, responses=formats.responses(Overview))
def overview(as_of: CalendarDate | None = AsOf,
             format: OverviewFormat = Query(formats.JSON, description=OVERVIEW_FORMATS),
             headers: formats.CsvHeaders = HEADERS,
             key: access.ApiKey | None = Depends(access.overview_reader),
             session: Session = Depends(get_read_session)) -> BaseModel | Response:
    day = as_of or date.today()
    return formats.respond(summaries.overview(session, day, access.readable_states(key)), format, headers)


@router.get("/states/{iso3}/report", summary="Article 7 mined-areas table at the end of a year, and its land release",
            dependencies=[Depends(access.public_state_reader)], response_model=AnnualReport,
            responses=formats.responses(AnnualReport))
def annual_report(iso3: ISO3, year: int = Query(..., description="The reporting year (end of December)"),
                  format: ReportFormat = Query(formats.JSON, description=REPORT_FORMATS),
                  headers: formats.CsvHeaders = HEADERS,
                  session: Session = Depends(get_read_session)) -> BaseModel | Response:
    if not 1999 <= year <= date.today().year:
        raise Problem(422, i18n._("year {year} is out of range: give a year from 1999 (the Convention's entry into "
                                  "force) to {last}.", year=year, last=date.today().year))
    return formats.respond(summaries.annual_report(session, iso3.upper(), year), format, headers)


@router.get("/states/{iso3}/overlaps",
            summary="Pairs of the State's hazards that count the same land (stored before the overlap rule), to clean",
            dependencies=[Depends(access.state_reader)], response_model=Overlaps)
def list_overlaps(iso3: ISO3, session: Session = Depends(get_session)) -> Overlaps:
    require_state(session, iso3.upper())
    pairs = overlaps.stored_overlaps(session, iso3.upper())
    return Overlaps(state=iso3.upper(), overlaps=[Overlap.model_validate(p) for p in pairs],
                    overlap_m2=sum(p["overlap_m2"] for p in pairs))


@router.get("/states/{iso3}/quality",
            summary="Data-quality report of what the State has stored: hazards outside its boundary or flagged at the "
                    "border, likely swapped coordinates or UTM zone, duplicates and overlaps, events outside their "
                    "hazard, implausible areas, vertices more than 5 km apart, repaired geometries",
            dependencies=[Depends(access.state_reader)], response_model=QualityReport)
def quality(iso3: ISO3, session: Session = Depends(get_session)) -> QualityReport:
    """Each row's `message` in the request's language (`?lang=`, `Accept-Language`); the kinds stay codes."""
    require_state(session, iso3.upper())
    report = quality_report(session, iso3.upper())
    return report.model_copy(update={"rows": [row.model_copy(update={"message": i18n.translate(row.message)})
                                              for row in report.rows]})
