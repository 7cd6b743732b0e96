"""The register of organisations of each State: the operators (NGOs, commercial companies, armed forces,
national authorities) the national mine action authority accredits, whose work the ledger records.

Rules:
- An organisation belongs to one State's register; its name (and its short name, when it has one) is
  unique in that register, compared without case and surrounding spaces.
- Kind: `ngo`, `commercial`, `military`, `national_authority` or `other`. Accreditation: from and to
  (either may be open); `to` is not before `from`.
- The editors of the State and admins keep the register; every key (and anyone, with
  LANDRELEASE_PUBLIC_READ) may read the names (id, name, short name, kind, accreditation); the
  contact is shown to keys that may read the State.
- Each land-release event carries the organisation that did the work as an id from the register
  (`organisation_id`) and its name there (`organisation`, readable in every output). An event
  given a name instead of an id takes the register entry of that name or short name; a name the
  register does not know yet is added to it (kind `other`, audited), as the migration did with the
  names stored before the register existed, so that every event's organisation is a register entry.
- An organisation some event, hazard, key or submission refers to cannot be deleted (409): end its
  accreditation instead.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.models import ORGANISATION_KINDS
from app.params import CalendarDate
from app.problems import Problem

OrganisationKind = Literal["ngo", "commercial", "military", "national_authority", "other"]
assert set(get_args(OrganisationKind)) == set(ORGANISATION_KINDS)

_COLUMNS = "id, state_iso3, name, short_name, kind, accredited_from, accredited_to, contact, created_at, updated_at"
# the tables whose rows name an organisation (an organisation they name is not deleted)
_REFERRING = ("land_release_events", "hazardous_areas", "api_keys", "submissions")


def _check_accreditation(accredited_from: date | None, accredited_to: date | None) -> None:
    if accredited_from and accredited_to and accredited_to < accredited_from:
        raise ValueError(f"accredited_to {accredited_to} is before accredited_from {accredited_from}")


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=500, pattern=r"\S", description="e.g. 'The HALO Trust'")
    short_name: str | None = Field(None, min_length=1, max_length=50, pattern=r"\S", description="e.g. 'HALO'")
    kind: OrganisationKind = "other"
    accredited_from: CalendarDate | None = None
    accredited_to: CalendarDate | None = None
    contact: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _accreditation(self) -> OrganisationIn:
        _check_accreditation(self.accredited_from, self.accredited_to)
        return self


class OrganisationChange(BaseModel):
    """A change to a register entry: only the fields given change (an empty value clears an optional one)."""

    model_config = ConfigDict(extra="forbid")

    # name and kind may change, not be cleared
    name: Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")] | SkipJsonSchema[None] = None
    short_name: str | None = Field(None, min_length=1, max_length=50, pattern=r"\S")
    kind: OrganisationKind | SkipJsonSchema[None] = None
    accredited_from: CalendarDate | None = None
    accredited_to: CalendarDate | None = None
    contact: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _name_not_cleared(self) -> OrganisationChange:
        for required in ("name", "kind"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be cleared")
        return self


class OrganisationName(BaseModel):
    """What anyone may read of a register entry."""

    id: uuid.UUID
    state: str
    name: str
    short_name: str | None
    kind: str
    accredited_from: date | None
    accredited_to: date | None


class Organisation(OrganisationName):
    contact: str | None
    created_at: datetime
    updated_at: datetime


class Organisations(BaseModel):
    organisations: list[Organisation | OrganisationName]


def _record(row: Any, full: bool) -> Organisation | OrganisationName:
    values = dict(row._mapping)
    values["state"] = values.pop("state_iso3")
    return Organisation(**values) if full else OrganisationName(**values)


def _duplicate(iso3: str, name: str, short_name: str | None) -> Problem:
    return Problem(409, f"The register of {iso3} already has an organisation named '{name}'"
                        + (f" or with the short name '{short_name}'" if short_name else "")
                        + ": use that entry (GET /api/v1/states/{iso3}/organisations), or another name.")


def create(session: Session, iso3: str, new: OrganisationIn, actor: audit.Actor) -> Organisation:
    values = new.model_dump()
    values["name"] = new.name.strip()
    values["short_name"] = new.short_name.strip() if new.short_name else None
    try:
        with session.begin_nested():
            row = session.execute(
                text("INSERT INTO organisations (state_iso3, name, short_name, kind, accredited_from, accredited_to, "
                     "contact) VALUES (:iso3, :name, :short_name, :kind, :accredited_from, :accredited_to, :contact) "
                     f"RETURNING {_COLUMNS}"),
                {"iso3": iso3, **values},
            ).one()
    except IntegrityError as exc:
        raise _duplicate(iso3, values["name"], values["short_name"]) from exc
    audit.record(session, actor, state_iso3=iso3, table="organisations", row_id=row.id, action="create",
                 detail={"name": row.name, "kind": row.kind})
    session.commit()
    result = _record(row, full=True)
    assert isinstance(result, Organisation)
    return result


def list_register(session: Session, iso3: str, *, full: bool) -> Organisations:
    rows = session.execute(text(f"SELECT {_COLUMNS} FROM organisations WHERE state_iso3 = :iso3 ORDER BY name"),
                           {"iso3": iso3})
    return Organisations(organisations=[_record(row, full) for row in rows])


def state_of(session: Session, organisation_id: uuid.UUID) -> str | None:
    """The State whose register holds the organisation; None when there is no such organisation."""
    return session.execute(text("SELECT state_iso3 FROM organisations WHERE id = :id"),
                           {"id": organisation_id}).scalar()


def get(session: Session, organisation_id: uuid.UUID, *, full: bool) -> Organisation | OrganisationName:
    row = session.execute(text(f"SELECT {_COLUMNS} FROM organisations WHERE id = :id"),
                          {"id": organisation_id}).one_or_none()
    if row is None:
        raise Problem(404, f"No organisation with id {organisation_id}")
    return _record(row, full)


def change(session: Session, organisation_id: uuid.UUID, changes: OrganisationChange,
           actor: audit.Actor) -> Organisation:
    current = session.execute(text(f"SELECT {_COLUMNS} FROM organisations WHERE id = :id FOR UPDATE"),
                              {"id": organisation_id}).one_or_none()
    if current is None:
        raise Problem(404, f"No organisation with id {organisation_id}")
    values = {**dict(current._mapping), **changes.model_dump(exclude_unset=True)}
    values["name"] = values["name"].strip()
    values["short_name"] = values["short_name"].strip() if values["short_name"] else None
    try:
        _check_accreditation(values["accredited_from"], values["accredited_to"])
    except ValueError as exc:
        raise Problem(422, str(exc)) from exc
    try:
        with session.begin_nested():
            row = session.execute(
                text("UPDATE organisations SET name = :name, short_name = :short_name, kind = :kind, "
                     "accredited_from = :accredited_from, accredited_to = :accredited_to, contact = :contact, "
                     f"updated_at = now() WHERE id = :id RETURNING {_COLUMNS}"),
                values,
            ).one()
    except IntegrityError as exc:
        raise _duplicate(current.state_iso3, values["name"], values["short_name"]) from exc
    if row.name != current.name:  # the events keep the register's name, readable in every output
        session.execute(text("UPDATE land_release_events SET organisation = :name WHERE organisation_id = :id"),
                        {"name": row.name, "id": organisation_id})
    audit.record(session, actor, state_iso3=row.state_iso3, table="organisations", row_id=row.id, action="update",
                 detail=changes.model_dump(mode="json", exclude_unset=True))
    session.commit()
    result = _record(row, full=True)
    assert isinstance(result, Organisation)
    return result


def delete(session: Session, organisation_id: uuid.UUID, actor: audit.Actor) -> None:
    iso3 = state_of(session, organisation_id)
    if iso3 is None:
        raise Problem(404, f"No organisation with id {organisation_id}")
    uses = {table: session.execute(text(f"SELECT count(*) FROM {table} WHERE organisation_id = :id"),
                                   {"id": organisation_id}).scalar_one()
            for table in _REFERRING}
    if any(uses.values()):
        named = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in uses.items() if count)
        raise Problem(409, f"The organisation is named by {named}: it stays in the register. End its "
                           "accreditation (accredited_to) instead.", uses=uses)
    session.execute(text("DELETE FROM organisations WHERE id = :id"), {"id": organisation_id})
    audit.record(session, actor, state_iso3=iso3, table="organisations", row_id=organisation_id, action="delete")
    session.commit()


def check_reporting(session: Session, iso3: str, organisation_id: uuid.UUID, name: str | None) -> tuple[uuid.UUID, str]:
    """The register entry (id, name) of organisation_id: it must be of the State's register, and a name given
    beside it (a report's, an event's) its name or short name, else 422. A submission is checked so when it is
    submitted, as the ledger checks its event at approval."""
    row = session.execute(text("SELECT id, name, short_name, state_iso3 FROM organisations WHERE id = :id"),
                          {"id": organisation_id}).one_or_none()
    if row is None or row.state_iso3 != iso3:
        raise Problem(422, f"organisation_id {organisation_id} is not in the register of {iso3}: see "
                           f"GET /api/v1/states/{iso3}/organisations.")
    if name is not None and name.strip().lower() not in (row.name.lower(), (row.short_name or "").lower()):
        raise Problem(422, f"organisation '{name}' is not the name of organisation_id {organisation_id} "
                           f"('{row.name}'): give one of them.")
    return row.id, row.name


def for_event(session: Session, iso3: str, name: str | None, organisation_id: uuid.UUID | None,
              actor: audit.Actor) -> tuple[uuid.UUID | None, str | None]:
    """The register entry (id, name) of an event's organisation, given by id or by name.

    An id must be of the State's register (else 422); a name is looked up by name or short name, and
    added to the register (kind `other`) when it is not there yet.
    """
    if organisation_id is not None:
        return check_reporting(session, iso3, organisation_id, name)
    if name is None or not name.strip():
        return None, None
    wanted = name.strip()
    row = session.execute(
        text("SELECT id, name FROM organisations WHERE state_iso3 = :iso3 "
             "AND (lower(btrim(name)) = lower(:name) OR lower(btrim(short_name)) = lower(:name)) "
             "ORDER BY lower(btrim(name)) = lower(:name) DESC LIMIT 1"),
        {"iso3": iso3, "name": wanted},
    ).one_or_none()
    if row is not None:
        return row.id, row.name
    row = session.execute(
        text("INSERT INTO organisations (state_iso3, name, kind) VALUES (:iso3, :name, 'other') "
             "ON CONFLICT DO NOTHING RETURNING id, name"),
        {"iso3": iso3, "name": wanted},
    ).one_or_none()
    if row is None:  # added by a concurrent write since the look-up
        row = session.execute(text("SELECT id, name FROM organisations WHERE state_iso3 = :iso3 "
                                   "AND lower(btrim(name)) = lower(:name)"), {"iso3": iso3, "name": wanted}).one()
        return row.id, row.name
    audit.record(session, actor, state_iso3=iso3, table="organisations", row_id=row.id, action="create",
                 detail={"name": row.name, "kind": "other", "from": "an event's organisation name"})
    return row.id, row.name
