"""What the ledger's writes answer, typed: the JSON API declares these as its response models, so the
OpenAPI document describes every answer of the hazard, event and import routes."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


class HazardRecorded(BaseModel):
    id: uuid.UUID
    external_id: str
    created: bool  # false: the hazard already existed with identical content
    baseline_area_m2: float
    remaining_area_m2: float
    repair: dict[str, Any] | None = None  # with repair=true, when the geometry was repaired
    warnings: list[str] | None = None
    clipped: dict[str, Any] | None = None  # with overlap=clip, when land another hazard counts was cut off
    border_flag: bool | None = None  # with border=accept, when it lies beyond its State's boundary (app/places)


class HazardsRecorded(BaseModel):
    hazards: list[HazardRecorded]


class EventRecorded(BaseModel):
    id: uuid.UUID
    hazard_id: uuid.UUID
    external_id: str | None
    kind: str
    date: date
    released_area_m2: float
    outside_area_m2: float
    remaining_area_m2: float  # the hazard's, after the event
    hazard_status: str
    new_hazard_id: uuid.UUID | None  # the CHA a partial reclassification split off
    created: bool  # false: the same event (external_id) was already recorded


class EventVoided(EventRecorded):
    voided: bool


class ImportWarning(BaseModel):
    message: str
    rows: list[int]  # the first 100 rows it concerns
    count: int


class ImportedHazard(BaseModel):
    id: uuid.UUID
    external_id: str
    created: bool
    baseline_area_m2: float


class ImportResult(BaseModel):
    state: str
    file: str
    layer: str | None
    crs: str
    mapping: dict[str, str]  # field: column of the file
    warnings: list[ImportWarning]
    import_id: str
    rows: int
    created: int
    unchanged: int
    created_area_m2: float
    hazards: list[ImportedHazard]  # one by one up to 1000 hazards, else empty
    clipped: list[dict[str, Any]]
    clipped_count: int


class EventReplayed(BaseModel):
    id: uuid.UUID
    released_area_m2_before: float
    released_area_m2: float  # on the corrected polygon


class HazardCorrected(BaseModel):
    """What a correction of a hazard answers (app.ledger.corrections)."""

    id: uuid.UUID
    correction_id: uuid.UUID
    before: dict[str, Any]  # the stored columns it changed, as they were
    after: dict[str, Any]  # and as they are now (with a polygon: baseline_area_m2 too)
    polygon_corrected: bool
    baseline_area_m2: float
    remaining_area_m2: float
    status: str
    events: list[EventReplayed]  # the events whose released area the corrected polygon changed


class HazardCorrection(BaseModel):
    """One correction in a hazard's history: who, when, why, before and after."""

    id: uuid.UUID
    at: datetime
    by: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    before_geometry: dict[str, Any] | None  # GeoJSON (WGS84) of the polygon before a polygon correction
    after_geometry: dict[str, Any] | None
    submission_id: uuid.UUID | None  # an approved submission reconciled as this correction


class HazardCorrections(BaseModel):
    hazard_id: uuid.UUID
    corrections: list[HazardCorrection]
