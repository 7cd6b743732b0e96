"""The audit trail (admin and committee) and API key management (admin) over HTTP."""
from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import access
from app.bodies import JsonBodyRoute
from app.database import get_session
from app.params import MAX_OFFSET, Instant
from app.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["access"], route_class=JsonBodyRoute)

# A time as PostgreSQL (or Python's isoformat) writes it: ISO 8601 with its offset, kept as written.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class AuditEntry(BaseModel):
    id: int
    at: Timestamp
    state: str | None
    actor: str
    key_id: uuid.UUID | None
    table: str
    row_id: str
    action: str
    external_id: str | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    numberMatched: int  # noqa: N815 (the OGC API name)
    numberReturned: int  # noqa: N815


class KeyRecord(BaseModel):
    """An API key's record (never its secret)."""

    id: uuid.UUID
    name: str
    role: str
    state: str | None
    organisation_id: uuid.UUID | None = None  # an operator key's organisation
    prefix: str
    created_at: Timestamp
    revoked_at: Timestamp | None


class NewKey(KeyRecord):
    key: str = Field(description="The secret: shown once, never stored")


class KeyList(BaseModel):
    keys: list[KeyRecord]


@router.get("/audit", summary="Who wrote what, when (admin and committee keys)",
            dependencies=[Depends(access.committee_or_admin)], response_model=AuditPage)
def audit_log(
    state: str | None = Query(None, pattern="^[A-Za-z]{3}$", description="Only this State (ISO3)"),
    since: Instant | None = Query(None, description="Only entries at or after this time: an ISO 8601 date-time "
                                                     "(2024-05-01T08:00:00Z) or date (its midnight)"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    session: Session = Depends(get_session),
) -> AuditPage:
    params = {"state": state.upper() if state else None, "since": since, "limit": limit, "offset": offset}
    where = ("(CAST(:state AS text) IS NULL OR state_iso3 = :state) "
             "AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)")
    total = session.execute(text(f"SELECT count(*) FROM audit_log WHERE {where}"), params).scalar_one()
    entries = session.execute(
        text(
            f"""
            SELECT COALESCE(json_agg(json_build_object(
                'id', id, 'at', at, 'state', state_iso3, 'actor', actor, 'key_id', key_id, 'table', table_name,
                'row_id', row_id, 'action', action, 'external_id', external_id, 'detail', detail) ORDER BY at, id),
                '[]'::json)
            FROM (SELECT * FROM audit_log WHERE {where} ORDER BY at, id LIMIT :limit OFFSET :offset) page
            """
        ),
        params,
    ).scalar_one()
    return AuditPage(entries=[AuditEntry.model_validate(e) for e in entries], numberMatched=total,
                     numberReturned=len(entries))


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who holds the key, e.g. 'CMAA field office'")
    role: Literal["editor", "viewer", "committee", "admin", "operator"]
    state: str | None = Field(None, pattern="^[A-Za-z]{3}$",
                              description="ISO3 of the State, for editor, viewer and operator keys only")
    organisation_id: uuid.UUID | None = Field(None, description="The organisation of an operator key (its State's "
                                                                "register); operator keys only")


@router.get("/keys", summary="The API keys (never their secrets)", dependencies=[Depends(access.admin)],
            response_model=KeyList)
def keys(session: Session = Depends(get_session)) -> KeyList:
    return KeyList(keys=[KeyRecord.model_validate(k) for k in access.list_keys(session)])


REVOKE_LINK = {"RevokeKey": {"operationRef": "#/paths/~1api~1v1~1keys~1{key_id}/delete",
                              "parameters": {"key_id": "$response.body#/id"}, "description": "Revoke the key"}}


@router.post("/keys", status_code=201, summary="Create an API key; the secret is in the answer, once",
             response_model=NewKey,
             responses={201: {"description": "The key's record and its secret", "links": REVOKE_LINK}})
def create_key(body: KeyIn, session: Session = Depends(get_session),
               key: access.ApiKey = Depends(access.admin)) -> NewKey:
    try:
        record, secret = access.create_key(session, name=body.name, role=body.role, state_iso3=body.state,
                                           actor=key.actor, organisation_id=body.organisation_id)
    except access.InvalidKeyRequest as exc:
        raise Problem(422, str(exc)) from exc
    return NewKey.model_validate({**record, "key": secret})


@router.delete("/keys/{key_id}", summary="Revoke an API key", response_model=KeyRecord,
               responses={404: {"description": "No such key"}})
def revoke_key(key_id: uuid.UUID, session: Session = Depends(get_session),
               key: access.ApiKey = Depends(access.admin)) -> KeyRecord:
    record = access.revoke_key(session, key_id, actor=key.actor)
    if record is None:
        raise Problem(404, f"No API key with id {key_id}")
    return KeyRecord.model_validate(record)
