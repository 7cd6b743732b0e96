"""The schema, in SQLAlchemy 2 typed ORM style. Every table carries the State's iso3."""
from __future__ import annotations

import uuid
from datetime import date, datetime

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

from app.layers import EVENT_KINDS, RELEASE_KINDS  # noqa: F401 - declared once, with the layers; importable here

CLASSIFICATIONS = ("SHA", "CHA")
CONTAMINATION_TYPES = ("AP_MINE", "IMPROVISED_AP_MINE", "AV_MINE", "ERW", "CLUSTER_MUNITION", "OTHER")
HAZARD_STATUSES = ("active", "released")
ITEM_KINDS = ("ap_mines", "improvised_ap_mines", "av_mines", "other_eo")
API_KEY_ROLES = ("editor", "viewer", "committee", "admin")
DECISION_KINDS = (
    "original_deadline", "extension", "completion", "reopening", "withdrawal_notified", "withdrawal_effective",
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


class HazardousArea(Base):
    __tablename__ = "hazardous_areas"
    __table_args__ = (
        UniqueConstraint("state_iso3", "external_id", name="uq_hazard_external_id"),
        CheckConstraint(_in("classification", CLASSIFICATIONS), name="ck_hazard_classification"),
        CheckConstraint(_in("status", HAZARD_STATUSES), name="ck_hazard_status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"), index=True)
    external_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    # The class the hazard was recorded with; `reclassified_on` says from when it is a CHA instead.
    classification: Mapped[str] = mapped_column(String(3))
    reclassified_on: Mapped[date | None] = mapped_column(Date)
    contamination: Mapped[list[str]] = mapped_column(ARRAY(Text))
    region: Mapped[str | None] = mapped_column(Text)
    # GICHD Minimum Data Requirements: the date the information about the hazard was collected (0006)
    date_of_information: Mapped[date | None] = mapped_column(Date)
    # the province holding the hazard (0008: from its region, else from its polygon) and whether it was
    # accepted outside its State's boundary on request (a border minefield)
    province_code: Mapped[str | None] = mapped_column(Text, ForeignKey("provinces.code"))
    border_flag: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    recorded_on: Mapped[date] = mapped_column(Date)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("hazardous_areas.id"))
    split_by_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    baseline_geom = mapped_column(MultiPolygon, nullable=False)
    baseline_area_m2: Mapped[float] = mapped_column(Float)
    remaining_geom = mapped_column(MultiPolygon, nullable=False)
    remaining_area_m2: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    released_on: Mapped[date | None] = mapped_column(Date)
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LandReleaseEvent(Base):
    __tablename__ = "land_release_events"
    __table_args__ = (
        UniqueConstraint("state_iso3", "external_id", name="uq_event_external_id"),
        CheckConstraint(_in("kind", EVENT_KINDS), name="ck_event_kind"),
        *(CheckConstraint(f"{item} >= 0", name=f"ck_event_{item}") for item in ITEM_KINDS),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=RANDOM_UUID)
    # Arrival order: only separates identical events of one kind and day (the replay order is date, kind, polygon).
    arrival: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    hazard_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("hazardous_areas.id"), index=True)
    state_iso3: Mapped[str] = mapped_column(String(3), ForeignKey("states.iso3"))
    external_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    date: Mapped[date] = mapped_column(Date)
    submitted_geom = mapped_column(MultiPolygon, nullable=True)
    released_geom = mapped_column(MultiPolygon, nullable=True)
    released_area_m2: Mapped[float] = mapped_column(Float, server_default="0")
    outside_area_m2: Mapped[float] = mapped_column(Float, server_default="0")
    organisation: Mapped[str | None] = mapped_column(Text)
    ap_mines: Mapped[int] = mapped_column(Integer, server_default="0")
    improvised_ap_mines: Mapped[int] = mapped_column(Integer, server_default="0")
    av_mines: Mapped[int] = mapped_column(Integer, server_default="0")
    other_eo: Mapped[int] = mapped_column(Integer, server_default="0")
    # For a reclassification that split part of the hazard off: the new CHA hazard.
    new_hazard_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


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
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
