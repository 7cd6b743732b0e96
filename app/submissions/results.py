"""What the submission routes answer, typed (their response models)."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.ledger.devices import Device
from app.ledger.input import EventProperties, ItemsDestroyed
from app.params import CalendarDate


class Preview(BaseModel):
    """What approving the submission would change in the ledger now, computed in a transaction that is
    rolled back: nothing is written."""

    approvable: bool
    problem: dict[str, Any] | None = None  # the ledger's refusal (status, detail, overlaps ...) when not approvable
    hazards_created: int = 0
    created_area_m2: float = 0.0  # the baseline area the new hazards would add (after clipping)
    released_area_m2: float = 0.0  # the land the events would release
    hazards: list[dict[str, Any]] = Field(default_factory=list)  # as the ledger would answer (clipped, ...)
    events: list[dict[str, Any]] = Field(default_factory=list)


class Step(BaseModel):
    """One step of a submission's history."""

    revision: int
    action: Literal["submit", "resubmit", "approve", "reject", "return"]
    status: str
    at: datetime
    actor: str
    key_id: uuid.UUID | None
    comment: str | None
    content: dict[str, Any] | None  # what was submitted at that revision (submit, resubmit)


class SubmissionProperties(BaseModel):
    state: str
    kind: Literal["hazard", "release", "batch"]
    status: Literal["submitted", "approved", "rejected", "returned"]
    organisation_id: uuid.UUID | None
    organisation: str | None
    hazard_id: uuid.UUID | None  # the hazard a land-release report is for
    revision: int
    feature_count: int
    area_m2: float  # the geodesic area of the submitted polygons
    date_of_information: date | None
    submitted_by: str
    submitted_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    comment: str | None  # the reason of a rejection, the comments of a return
    content: dict[str, Any]
    applied: dict[str, Any] | None  # what the approval recorded in the ledger
    preview: Preview | None = None  # for a submission awaiting review
    history: list[Step] | None = None  # with a single submission


class SubmissionFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: uuid.UUID
    geometry: dict[str, Any] | None  # GeoJSON in WGS84: the submitted polygons (none for a whole reclassification)
    properties: SubmissionProperties


class SubmissionCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[SubmissionFeature]
    numberMatched: int  # noqa: N815 (the OGC API name)
    numberReturned: int  # noqa: N815


class ReleaseReport(EventProperties):  # type: ignore[misc,valid-type]  # the declared properties (app.layers)
    """A land-release report for a hazard: the event the operator asks the centre to record."""

    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon/MultiPolygon; optional only for a whole-hazard reclassification")
    items_destroyed: ItemsDestroyed = Field(default_factory=lambda: ItemsDestroyed.model_validate({}))
    organisation_id: uuid.UUID | None = Field(
        None, description="The organisation that did the work (an editor's entry; an operator's is its own)")
    devices: list[Device] | None = Field(None, max_length=10_000,
                                         description="The explosive ordnance found, one by one")


class Approval(BaseModel):
    """How a reviewer approves: a submitted hazard as a new hazard, linked to an existing one (whose event its
    polygon then becomes), or as a correction of an existing one (its polygon and attributes replace the
    hazard's: app.ledger.corrections)."""

    model_config = ConfigDict(extra="forbid")

    reconcile: Literal["new", "link", "correct"] = "new"
    hazard_id: uuid.UUID | None = Field(None, description="With reconcile=link or correct: the existing hazard")
    event_kind: Literal["cancellation", "reduction", "clearance", "reclassification"] | None = Field(
        None, description="With reconcile=link: the event the submitted polygon becomes on that hazard")
    date: CalendarDate | None = Field(None, description="With reconcile=link: the event's date (default: the "
                                                        "submitted hazard's recorded_on)")
    reason: str | None = Field(None, min_length=1, max_length=2000,
                               description="With reconcile=correct: why (default: the submission, approved as a "
                                           "correction of the hazard)")
    overlap: Literal["refuse", "clip"] = Field(
        "refuse", description="A new hazard overlapping land another hazard counts: refuse (409) or clip it")
    border: Literal["refuse", "accept"] = Field(
        "refuse", description="A new hazard beyond the State's boundary (app/places): refuse (422, naming where it "
                              "lies) or accept it flagged (`border_flag`), for a border minefield")


class Review(BaseModel):
    """A rejection (its reason) or a return for correction (the comments for the operator)."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=4000, pattern=r"\S",
                         description="The reason of a rejection, or what the operator is to correct")
