"""The schema, in SQLAlchemy 2 typed ORM style. Every table carries the State's iso3."""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# declared once, with the layers (app.layers); importable here
from app.layers import (  # noqa: F401
    CLASSIFICATIONS,
    CONTAMINATION_TYPES,
    EVENT_INPUTS,
    EVENT_KINDS,
    HAZARD_INPUTS,
    HAZARD_STATUSES,
    RELEASE_KINDS,
    Property,
)

ITEM_KINDS = ("ap_mines", "improvised_ap_mines", "av_mines", "other_eo")
API_KEY_ROLES = ("editor", "viewer", "committee", "admin", "operator")
ORGANISATION_KINDS = ("ngo", "commercial", "military", "national_authority", "other")
SUBMISSION_KINDS = ("hazard", "release", "batch")
SUBMISSION_STATUSES = ("submitted", "approved", "rejected", "returned")
DECISION_KINDS = (
    "original_deadline", "extension", "completion", "reopening", "withdrawal_notified", "withdrawal_effective",
    "armed_conflict_began", "armed_conflict_ended", "suspension_notified",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


MultiPolygon = Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)


RANDOM_UUID = text("gen_random_uuid()")


class Base(DeclarativeBase):
    pass


class State(Base):
    __tablename__ = "states"

    iso3: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    entry_into_force: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)


def _sql_type(sql_type: str) -> Any:
    """The SQLAlchemy type of a column type as `app.layers` declares it."""
    if found := re.fullmatch(r"varchar\((\d+)\)", sql_type):
        return String(int(found.group(1)))
    return {"text": Text(), "text[]": ARRAY(Text), "date": Date(), "integer": Integer(), "float8": Float(),
            "boolean": Boolean()}[sql_type]


def declared_columns(inputs: tuple[Property, ...]) -> dict[str, Any]:
    """The columns of the properties a client gives, as `app.layers` declares them (name, type, NOT NULL)."""
    columns: dict[str, Any] = {}
    for p in inputs:
        assert p.input is not None and p.column is not None
        columns[p.column] = mapped_column(_sql_type(p.input.sql_type), nullable=p.input.nullable)
    return columns


def declared_checks(inputs: tuple[Property, ...], table: str) -> tuple[CheckConstraint, ...]:
    """A check of each of these properties whose values are declared: `ck_<table>_<name>` (the migration's name)."""
    return tuple(CheckConstraint(_in(str(p.column), p.values), name=f"ck_{table}_{p.name}")
                 for p in inputs if p.values and p.type != "array")


class Organisation(Base):
    """An organisation of a State's register (migration 0010): an operator accredited by the national authority."""

    __tablename__ = "organisations"
    __table_args__ = (CheckConstraint(_in("kind", ORGANISATION_KINDS), name="ck_organisation_kind"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"))
    name: Mapped[str] = mapped_column(Text)
    short_name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), server_default="other")
    accredited_from: Mapped[date | None] = mapped_column(Date)
    accredited_to: Mapped[date | None] = mapped_column(Date)
    contact: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HazardousArea(Base):
    """A hazardous area. The columns of what the client gives (external_id, classification, recorded_on, ...)
    are those `app.layers.HAZARD_INPUTS` declares, added by `declared_columns` (their names and types there)."""

    __tablename__ = "hazardous_areas"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"), index=True)
    # The class the hazard was recorded with (declared); `reclassified_on` says from when it is a CHA instead.
    reclassified_on: Mapped[date | None] = mapped_column(Date)
    # computed by the ledger (app/places), not given: the province holding the hazard (0008: from its region,
    # else from its polygon) and whether it was accepted outside its State's boundary on request (a border
    # minefield)
    province_code: Mapped[str | None] = mapped_column(Text, ForeignKey("provinces.code"))
    border_flag: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("hazardous_areas.id"))
    split_by_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    baseline_geom = mapped_column(MultiPolygon, nullable=False)
    baseline_area_m2: Mapped[float] = mapped_column(Float)
    remaining_geom = mapped_column(MultiPolygon, nullable=False)
    remaining_area_m2: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    released_on: Mapped[date | None] = mapped_column(Date)
    # the reporting organisation, from the State's register (0010)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("organisations.id"))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    locals().update(declared_columns(HAZARD_INPUTS))  # into the class's namespace, where declarative reads them
    __table_args__ = (
        UniqueConstraint("state_iso3", "external_id", name="uq_hazard_external_id"),
        CheckConstraint(_in("status", HAZARD_STATUSES), name="ck_hazard_status"),
        *declared_checks(HAZARD_INPUTS, "hazard"),
    )


class LandReleaseEvent(Base):
    """A land-release event. The columns of what the client gives (external_id, kind, date, organisation, ...)
    are those `app.layers.EVENT_INPUTS` declares, added by `declared_columns`."""

    __tablename__ = "land_release_events"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    # Arrival order: only separates identical events of one kind and day (the replay order is date, kind, polygon).
    arrival: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    hazard_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("hazardous_areas.id"), index=True)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"))
    submitted_geom = mapped_column(MultiPolygon, nullable=True)
    released_geom = mapped_column(MultiPolygon, nullable=True)
    released_area_m2: Mapped[float] = mapped_column(Float, server_default="0")
    outside_area_m2: Mapped[float] = mapped_column(Float, server_default="0")
    ap_mines: Mapped[int] = mapped_column(Integer, server_default="0")
    improvised_ap_mines: Mapped[int] = mapped_column(Integer, server_default="0")
    av_mines: Mapped[int] = mapped_column(Integer, server_default="0")
    other_eo: Mapped[int] = mapped_column(Integer, server_default="0")
    # the organisation that did the work: its id in the State's register; its name there is `organisation` (0010)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("organisations.id"))
    # For a reclassification that split part of the hazard off: the new CHA hazard.
    new_hazard_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    locals().update(declared_columns(EVENT_INPUTS))  # into the class's namespace, where declarative reads them
    __table_args__ = (
        UniqueConstraint("state_iso3", "external_id", name="uq_event_external_id"),
        *declared_checks(EVENT_INPUTS, "event"),
        *(CheckConstraint(f"{item} >= 0", name=f"ck_event_{item}") for item in ITEM_KINDS),
    )


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    state_iso3: Mapped[str | None] = mapped_column(String(3), index=True)
    actor: Mapped[str] = mapped_column(Text)
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    table_name: Mapped[str] = mapped_column(Text)
    row_id: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JSONB)


class Article5Decision(Base):
    """One fact of a State's Article 5 history: original deadline, extension, completion, ..."""

    __tablename__ = "article5_decisions"
    __table_args__ = (CheckConstraint(_in("kind", DECISION_KINDS), name="ck_decision_kind"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    decided_on: Mapped[date | None] = mapped_column(Date)
    meeting: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    # How many extensions an undated reference row stands for (migration 0002).
    extensions_count: Mapped[int | None] = mapped_column(Integer)
    # Migration 0009: the latest day an undated decision can have been taken, the day an undated fact counts
    # from, the reference file it came from, and the row a correction replaces with its reason.
    decided_by: Mapped[date | None] = mapped_column(Date)
    applies_from: Mapped[date | None] = mapped_column(Date)
    origin: Mapped[str | None] = mapped_column(Text)
    replaces: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("article5_decisions.id"),
                                                       unique=True)
    correction_reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkPlanMilestone(Base):
    __tablename__ = "work_plan_milestones"
    __table_args__ = (UniqueConstraint("state_iso3", "decision_id", "year", name="uq_milestone_year"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"), index=True)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("article5_decisions.id"))
    year: Mapped[int] = mapped_column(Integer)
    area_m2: Mapped[float] = mapped_column(Float)
    areas: Mapped[int | None] = mapped_column(Integer)


class ApiKey(Base):
    """An API key (migration 0003): only its SHA-256 hash and a short prefix are kept."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", API_KEY_ROLES), name="ck_api_key_role"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(10))
    state_iso3: Mapped[str | None] = mapped_column(String(3), ForeignKey("states.iso3"), index=True)
    # an operator key's organisation, of its State's register (0011)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("organisations.id"))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Submission(Base):
    """A report an operator sent, held out of the ledger until it is approved (migration 0012)."""

    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(_in("kind", SUBMISSION_KINDS), name="ck_submission_kind"),
        CheckConstraint(_in("status", SUBMISSION_STATUSES), name="ck_submission_status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), server_default="submitted")
    hazard_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("hazardous_areas.id"))
    content: Mapped[dict] = mapped_column(JSONB)
    geom = mapped_column(MultiPolygon, nullable=True)
    area_m2: Mapped[float] = mapped_column(Float, server_default="0")
    feature_count: Mapped[int] = mapped_column(Integer)
    date_of_information: Mapped[date | None] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    reviewed_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str | None] = mapped_column(Text)
    applied: Mapped[dict | None] = mapped_column(JSONB)
    # a land-release report's claim on its hazard's remaining land and the stamp it holds while (0019)
    claimed_m2: Mapped[float | None] = mapped_column(Float)
    claimed_digest: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class SubmissionHistory(Base):
    """One step of a submission's review: submitted, returned, resubmitted, approved or rejected (0012)."""

    __tablename__ = "submission_history"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("submissions.id"))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    comment: Mapped[str | None] = mapped_column(Text)
    content: Mapped[dict | None] = mapped_column(JSONB)


class HazardCorrection(Base):
    """A correction of a hazard's declared attributes or polygon (0016; rules in app.ledger.corrections): who,
    when, why, and the values it replaced (`before`) and set (`after`); the polygons as recorded before and after."""

    __tablename__ = "hazard_corrections"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    hazard_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("hazardous_areas.id"))
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reason: Mapped[str] = mapped_column(Text)
    before: Mapped[dict] = mapped_column(JSONB)
    after: Mapped[dict] = mapped_column(JSONB)
    before_geom = mapped_column(MultiPolygon, nullable=True)
    after_geom = mapped_column(MultiPolygon, nullable=True)
    submission_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("submissions.id"))


class EventDevice(Base):
    """An explosive ordnance item a land-release report found (migration 0014; rules in app.ledger.devices)."""

    __tablename__ = "event_devices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("land_release_events.id"))
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"))
    category: Mapped[str] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    disposal: Mapped[str | None] = mapped_column(String(20))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)


class Country(Base):
    """A country's boundary (admin 0, Natural Earth 1:10m; migration 0008, geodata/boundaries)."""

    __tablename__ = "countries"

    iso3: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    geom = mapped_column(MultiPolygon, nullable=False)
    label = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))  # where the map writes the name


class Province(Base):
    """A province's boundary (admin 1), with the other names it is known by (migration 0008)."""

    __tablename__ = "provinces"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    iso3: Mapped[str] = mapped_column(String(3), ForeignKey("countries.iso3"))
    name: Mapped[str] = mapped_column(Text)
    other_names: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    geom = mapped_column(MultiPolygon, nullable=False)
    label = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))


class CountryPart(Base):
    """A small part of a country (ST_Subdivide), for the indexed checks of every write."""

    __tablename__ = "country_parts"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    iso3: Mapped[str] = mapped_column(String(3), ForeignKey("countries.iso3"))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)


class ProvincePart(Base):
    """A small part of a province (ST_Subdivide)."""

    __tablename__ = "province_parts"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(Text, ForeignKey("provinces.code"))
    iso3: Mapped[str] = mapped_column(String(3))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)
