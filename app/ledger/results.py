"""What the ledger's writes answer, typed: the JSON API declares these as its response models, so the
OpenAPI document describes every answer of the hazard, event and import routes."""
from __future__ import annotations

import uuid
from datetime import date
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
