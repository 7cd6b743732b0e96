"""Who may do what: API keys, their roles and the rules every endpoint applies.

- A key is a random secret shown once when it is created; only its SHA-256 hash and a short prefix
  (to recognise it in listings) are stored.
- Roles: `editor` writes hazards, events and imports of its own State, reviews its submissions and
  reads it; `viewer` reads its own State; `operator` is bound to one organisation of a State's
  register (and so to that State): it submits reports (app/submissions), reads its own
  organisation's submissions and the State's approved data, and approves, voids or writes nothing;
  `committee` reads every State and writes Article 5 decisions and milestones; `admin` does
  everything, including managing keys.
- Keys come as `Authorization: Bearer <key>` or `X-API-Key: <key>`. No key or an unknown or revoked
  one on a protected endpoint: 401. A valid key without the right role or State: 403.
- A hazard or event asked for by id that the key may not read (another State's) is a 404, the same
  answer as for an id that does not exist: a key cannot probe which ids exist elsewhere. A key that
  may read it but not change it gets the 403.
- `LANDRELEASE_PUBLIC_READ=true` opens the reads of the OGC layers and the summaries to anyone.

The FastAPI dependencies at the bottom state the rules; routers attach them to their endpoints.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app import audit, database
from app.audit import Actor
from app.database import get_session
from app.models import API_KEY_ROLES
from app.params import ISO3
from app.problems import Problem
from app.settings import get_settings

ROLES = API_KEY_ROLES
STATE_ROLES = ("editor", "viewer", "operator")  # roles bound to one State
KEY_PREFIX = "lr_"


@dataclass(frozen=True)
class ApiKey:
    """An authenticated key: what it may do."""

    id: uuid.UUID
    name: str
    role: str
    state_iso3: str | None
    organisation_id: uuid.UUID | None = None  # an operator key's organisation

    @property
    def actor(self) -> Actor:
        return Actor(name=self.name, key_id=self.id)

    def may_read(self, iso3: str) -> bool:
        return self.role in ("admin", "committee") or self.state_iso3 == iso3.upper()

    def may_write_ledger(self, iso3: str) -> bool:
        return self.role == "admin" or (self.role == "editor" and self.state_iso3 == iso3.upper())

    def may_review(self, iso3: str) -> bool:
        """Approve, return or reject the State's submissions: its editors (the national centre) and admins."""
        return self.may_write_ledger(iso3)

    def may_submit(self, iso3: str) -> bool:
        return self.may_write_ledger(iso3) or (self.role == "operator" and self.state_iso3 == iso3.upper())

    def may_read_submission(self, iso3: str, organisation_id: uuid.UUID | None) -> bool:
        """An operator reads its own organisation's submissions; other readers of the State all of them."""
        if self.role == "operator":
            return self.state_iso3 == iso3.upper() and organisation_id == self.organisation_id
        return self.may_read(iso3)

    def may_write_article5(self) -> bool:
        return self.role in ("admin", "committee")

    @property
    def readable_states(self) -> list[str] | None:
        """The States this key may read; None means every State."""
        return None if self.role in ("admin", "committee") else [self.state_iso3 or ""]


class InvalidKeyRequest(ValueError):
    """A key cannot be created as asked; the message says what to fix."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- managing keys ----------------------------------------------------------------------------
def create_key(session: Session, *, name: str, role: str, state_iso3: str | None = None,
               actor: Actor | None = None, organisation_id: uuid.UUID | None = None) -> tuple[dict[str, Any], str]:
    """Create a key; return its record and the secret (shown once, never stored).

    An operator key names its organisation; its State is the one whose register holds it.
    """
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidKeyRequest("a key needs a name of 1 to 200 characters (who holds it, e.g. 'CMAA field office')")
    if role not in ROLES:
        raise InvalidKeyRequest(f"unknown role '{role}': use one of {', '.join(ROLES)}")
    iso3 = state_iso3.strip().upper() if state_iso3 else None
    if role == "operator":
        if organisation_id is None:
            raise InvalidKeyRequest("an operator key belongs to one organisation: give its id in the State's register "
                                    "(GET /api/v1/states/{iso3}/organisations)")
        registered = session.execute(text("SELECT state_iso3 FROM organisations WHERE id = :id"),
                                     {"id": organisation_id}).scalar()
        if registered is None:
            raise InvalidKeyRequest(f"unknown organisation {organisation_id}: add it to its State's register first")
        if iso3 is not None and iso3 != registered:
            raise InvalidKeyRequest(f"the organisation is in the register of {registered}, not {iso3}")
        iso3 = registered
    elif organisation_id is not None:
        raise InvalidKeyRequest(f"a {role} key is not bound to an organisation: leave out the organisation")
    if role in STATE_ROLES and not iso3:
        raise InvalidKeyRequest(f"an {role} key belongs to one State: give its ISO3 code (--state KHM)")
    if role not in STATE_ROLES and iso3:
        raise InvalidKeyRequest(f"a {role} key is not bound to a State: leave out the State")
    if iso3 is not None:
        known = session.execute(text("SELECT 1 FROM states WHERE iso3 = :iso3"), {"iso3": iso3}).scalar()
        if known is None:
            raise InvalidKeyRequest(f"unknown State '{iso3}': use the ISO 3166 alpha-3 code of a State in the "
                                    "states table")
    body = secrets.token_urlsafe(32)
    secret = f"{KEY_PREFIX}{body}"
    prefix = secret[: len(KEY_PREFIX) + 8]
    row = session.execute(
        text("INSERT INTO api_keys (name, role, state_iso3, organisation_id, prefix, key_hash) "
             "VALUES (:name, :role, :state, :organisation, :prefix, :hash) RETURNING id, created_at"),
        {"name": name, "role": role, "state": iso3, "organisation": organisation_id, "prefix": prefix,
         "hash": _hash(secret)},
    ).one()
    if actor is not None:
        audit.record(session, actor, state_iso3=iso3, table="api_keys", row_id=row.id, action="create",
                     detail={"name": name, "role": role, "prefix": prefix,
                             **({"organisation_id": str(organisation_id)} if organisation_id else {})})
    session.commit()
    record = {"id": str(row.id), "name": name, "role": role, "state": iso3, "prefix": prefix,
              "created_at": row.created_at.isoformat(), "revoked_at": None,
              "organisation_id": str(organisation_id) if organisation_id else None}
    return record, secret


def list_keys(session: Session, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    rows = session.execute(
        text("SELECT id, name, role, state_iso3, organisation_id, prefix, created_at, revoked_at FROM api_keys "
             "WHERE :all OR revoked_at IS NULL ORDER BY created_at, name"),
        {"all": include_revoked},
    )
    return [
        {"id": str(r.id), "name": r.name, "role": r.role, "state": r.state_iso3, "prefix": r.prefix,
         "created_at": r.created_at.isoformat(), "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
         "organisation_id": str(r.organisation_id) if r.organisation_id else None}
        for r in rows
    ]


def revoke_key(session: Session, key_id: uuid.UUID | str, actor: Actor | None = None) -> dict[str, Any] | None:
    """Revoke a key (it stays listed, marked); None when there is no such key."""
    try:
        key_uuid = uuid.UUID(str(key_id))
    except ValueError:
        return None
    row = session.execute(
        text("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = :id "
             "RETURNING id, name, role, state_iso3, prefix, created_at, revoked_at"),
        {"id": key_uuid},
    ).one_or_none()
    if row is not None and actor is not None:
        audit.record(session, actor, state_iso3=row.state_iso3, table="api_keys", row_id=row.id, action="revoke",
                     detail={"name": row.name, "role": row.role, "prefix": row.prefix})
    session.commit()
    if row is None:
        return None
    return {"id": str(row.id), "name": row.name, "role": row.role, "state": row.state_iso3, "prefix": row.prefix,
            "created_at": row.created_at.isoformat(), "revoked_at": row.revoked_at.isoformat()}


def authenticate(session: Session | Connection, secret: str) -> ApiKey | None:
    """The key this secret belongs to, or None when it is unknown or revoked."""
    if not secret or len(secret) > 200:
        return None
    row = session.execute(
        text("SELECT id, name, role, state_iso3, organisation_id FROM api_keys "
             "WHERE key_hash = :hash AND revoked_at IS NULL"),
        {"hash": _hash(secret)},
    ).one_or_none()
    if row is None:
        return None
    return ApiKey(id=row.id, name=row.name, role=row.role, state_iso3=row.state_iso3,
                  organisation_id=row.organisation_id)


# --- the rules, as FastAPI dependencies --------------------------------------------------------
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="landrelease"'}


def presented_secret(request: Request) -> str | None:
    """The key sent with the request: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def _unauthorised(detail: str) -> Problem:
    return Problem(401, detail, title="Unauthorized", headers=_CHALLENGE)


def optional_key(request: Request, session: Session = Depends(get_session)) -> ApiKey | None:
    """The authenticated key, None when no key was sent; 401 for an unknown or revoked key."""
    return key_of_request(request, session)


def key_of_request(request: Request, bind: Session | Connection) -> ApiKey | None:
    """`optional_key`, looked up on `bind` (a session or connection of the primary)."""
    secret = presented_secret(request)
    if secret is None:
        return None
    key = authenticate(bind, secret)
    if key is None:
        raise _unauthorised("The API key is not known or has been revoked. Ask an administrator for a valid key.")
    request.state.api_key = key
    return key


def authenticated_key(key: ApiKey | None = Depends(optional_key)) -> ApiKey:
    """A valid key is required: 401 without one."""
    if key is None:
        raise _unauthorised("This endpoint needs an API key: send it as 'Authorization: Bearer <key>' "
                            "or 'X-API-Key: <key>'.")
    return key


def _forbidden(detail: str) -> Problem:
    return Problem(403, detail, title="Forbidden")


def _check_read(key: ApiKey, iso3: str) -> None:
    if not key.may_read(iso3):
        raise _forbidden(f"The key '{key.name}' ({key.role} of {key.state_iso3}) may not read {iso3.upper()}'s data.")


def _check_ledger_write(key: ApiKey, iso3: str) -> None:
    if key.may_write_ledger(iso3):
        return
    if key.role == "editor":
        raise _forbidden(f"The key '{key.name}' edits {key.state_iso3} only; it may not change {iso3.upper()}'s data.")
    if key.role == "operator":
        raise _forbidden(f"The key '{key.name}' is an operator key: it submits reports for review "
                         f"(POST /api/v1/states/{key.state_iso3}/submissions); only an editor of {iso3.upper()} "
                         "or an admin changes hazards, events and imports.")
    raise _forbidden(f"The key '{key.name}' is a {key.role} key: only an editor of {iso3.upper()} or an admin "
                     "may change hazards, events and imports.")


def state_of_hazard(session: Session, hazard_id: uuid.UUID, key: ApiKey) -> str:
    """The State of a hazard the key may read; 404 when there is none (or the key may not see it)."""
    iso3 = session.execute(text("SELECT state_iso3 FROM hazardous_areas WHERE id = :id"), {"id": hazard_id}).scalar()
    if iso3 is None or not key.may_read(iso3):
        raise Problem(404, f"No hazardous area with id {hazard_id}")
    return iso3


def state_of_event(session: Session, event_id: uuid.UUID, key: ApiKey) -> str:
    """The State of an event the key may read; 404 when there is none (or the key may not see it)."""
    iso3 = session.execute(text("SELECT state_iso3 FROM land_release_events WHERE id = :id"),
                           {"id": event_id}).scalar()
    if iso3 is None or not key.may_read(iso3):
        raise Problem(404, f"No land-release event with id {event_id}")
    return iso3


def state_of_organisation(session: Session, organisation_id: uuid.UUID) -> str:
    """The State whose register holds the organisation (the names are public); 404 when there is none."""
    iso3 = session.execute(text("SELECT state_iso3 FROM organisations WHERE id = :id"),
                           {"id": organisation_id}).scalar()
    if iso3 is None:
        raise Problem(404, f"No organisation with id {organisation_id}")
    return iso3


def state_reader(iso3: ISO3, key: ApiKey = Depends(authenticated_key)) -> ApiKey:
    """Reads of one State's data (path parameter `iso3`)."""
    _check_read(key, iso3)
    return key


def state_writer(iso3: ISO3, key: ApiKey = Depends(authenticated_key)) -> ApiKey:
    """Writes to one State's ledger (hazards, events, imports): its editor or an admin."""
    _check_ledger_write(key, iso3)
    return key


def hazard_reader(hazard_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                  session: Session = Depends(get_session)) -> ApiKey:
    state_of_hazard(session, hazard_id, key)
    return key


def hazard_writer(hazard_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                  session: Session = Depends(get_session)) -> ApiKey:
    _check_ledger_write(key, state_of_hazard(session, hazard_id, key))
    return key


def event_writer(event_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                 session: Session = Depends(get_session)) -> ApiKey:
    _check_ledger_write(key, state_of_event(session, event_id, key))
    return key


def organisation_writer(organisation_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                        session: Session = Depends(get_session)) -> ApiKey:
    """Changes to an entry of a State's register of organisations: its editor or an admin."""
    _check_ledger_write(key, state_of_organisation(session, organisation_id))
    return key


def _check_submit(key: ApiKey, iso3: str) -> None:
    if not key.may_submit(iso3):
        raise _forbidden(f"The key '{key.name}' ({key.role} of {key.state_iso3}) may not submit reports for "
                         f"{iso3.upper()}: an operator of one of its organisations, its editor or an admin may.")


def submitter(iso3: ISO3, key: ApiKey = Depends(authenticated_key)) -> ApiKey:
    """Submissions to one State (path parameter `iso3`): its operators, its editors, admins."""
    _check_submit(key, iso3)
    return key


def hazard_submitter(hazard_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                     session: Session = Depends(get_session)) -> ApiKey:
    """A land-release report for a hazard: an operator, editor or admin who may read the hazard's State."""
    _check_submit(key, state_of_hazard(session, hazard_id, key))
    return key


def state_of_submission(session: Session, submission_id: uuid.UUID, key: ApiKey) -> str:
    """The State of a submission the key may read (an operator: its organisation's); 404 otherwise."""
    row = session.execute(text("SELECT state_iso3, organisation_id FROM submissions WHERE id = :id"),
                          {"id": submission_id}).one_or_none()
    if row is None or not key.may_read_submission(row.state_iso3, row.organisation_id):
        raise Problem(404, f"No submission with id {submission_id}")
    return row.state_iso3


def submission_reader(submission_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                      session: Session = Depends(get_session)) -> ApiKey:
    state_of_submission(session, submission_id, key)
    return key


def submission_reviewer(submission_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                        session: Session = Depends(get_session)) -> ApiKey:
    """Approving, returning or rejecting a submission: an editor of its State or an admin."""
    iso3 = state_of_submission(session, submission_id, key)
    if not key.may_review(iso3):
        raise _forbidden(f"The key '{key.name}' ({key.role} of {key.state_iso3}) may not review {iso3}'s "
                         f"submissions: only an editor of {iso3} (the national centre) or an admin may.")
    return key


def submission_resubmitter(submission_id: uuid.UUID, key: ApiKey = Depends(authenticated_key),
                           session: Session = Depends(get_session)) -> ApiKey:
    """Resubmitting a returned submission: its organisation's operators, the State's editors, admins."""
    _check_submit(key, state_of_submission(session, submission_id, key))
    return key


def article5_writer(key: ApiKey = Depends(authenticated_key)) -> ApiKey:
    """Article 5 decisions and work-plan milestones: the Committee or an admin."""
    if not key.may_write_article5():
        raise _forbidden(f"The key '{key.name}' is a {key.role} key: only the Committee (committee keys) or an "
                         "admin may record Article 5 decisions and milestones.")
    return key


def admin(key: ApiKey = Depends(authenticated_key)) -> ApiKey:
    if key.role != "admin":
        raise _forbidden(f"The key '{key.name}' is a {key.role} key: this needs an admin key.")
    return key


def committee_or_admin(key: ApiKey = Depends(authenticated_key)) -> ApiKey:
    if key.role not in ("admin", "committee"):
        raise _forbidden(f"The key '{key.name}' is a {key.role} key: this needs a committee or admin key.")
    return key


def public_read_open() -> bool:
    return get_settings().public_read


def public_reader(key: ApiKey | None = Depends(optional_key)) -> ApiKey | None:
    """Reads of the OGC layers and the summaries: open when LANDRELEASE_PUBLIC_READ is set, else a key.

    Returns None for an anonymous reader of an open service; otherwise the key, whose
    `readable_states` the endpoint must honour when it serves several States.
    """
    if key is None and public_read_open():
        return None
    return authenticated_key(key)


def public_reader_on(request: Request, conn: Connection) -> ApiKey | None:
    """`public_reader` for a route that reads on `conn`: the key is looked up on it when it is the primary's
    (one connection for the key and the read), else on the primary, since a standby may not yet have
    replayed a key's revocation. Each request looks its key up: a revoked key is refused at once."""
    if conn.engine is database.get_engine():
        return public_reader(key_of_request(request, conn))
    with database.get_engine().connect() as primary:
        return public_reader(key_of_request(request, primary))


def public_state_reader(iso3: ISO3, key: ApiKey | None = Depends(public_reader)) -> ApiKey | None:
    """Reads of one State's summaries/report: open with LANDRELEASE_PUBLIC_READ, else the read rules."""
    if key is not None and not public_read_open():
        _check_read(key, iso3)
    return key


def overview_reader(key: ApiKey | None = Depends(public_reader)) -> ApiKey | None:
    """The all-State overview: open with LANDRELEASE_PUBLIC_READ; else any key, an editor or viewer
    seeing its own State's row only (the endpoint narrows the rows with `readable_states`)."""
    return key


def readable_states(key: ApiKey | None) -> list[str] | None:
    """The States a reader may see across a multi-State read; None means all of them."""
    if key is None or public_read_open():
        return None
    return key.readable_states


def scope_filters(key: ApiKey | None, filters: dict[str, str], public: bool = True) -> None:
    """Narrow a multi-State read (an OGC layer, a tile) to what the key may read, in place.

    An editor or viewer sees its own State only: asking for another State is a 403, asking for none
    gets its own. A layer that is not `public` (the submissions awaiting review) is read with a key only,
    whatever LANDRELEASE_PUBLIC_READ says, each key its own part: its State's, an operator's its
    organisation's (`organisation_of_key`).
    """
    if public:
        states = readable_states(key)
    elif key is None:
        raise Problem(404, "No such collection: it is read with a key only")
    else:
        states = key.readable_states
        if key.role == "operator":
            filters["organisation_of_key"] = str(key.organisation_id)
    if states is None:
        return
    assert key is not None  # only a key narrows the readable States
    asked = filters.get("state")
    if asked and asked.upper() not in states:
        raise _forbidden(f"The key '{key.name}' may read {', '.join(states)} only, not {asked.upper()}.")
    filters["state"] = states[0]
