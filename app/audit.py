"""The audit trail: who wrote what, when. Every write of the ledger goes through `record`."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Actor:
    """Who makes a request: an API key (id and name) or, without one, the client address."""

    name: str
    key_id: uuid.UUID | None = None


def record(session: Session, actor: Actor, *, state_iso3: str | None, table: str, row_id: Any, action: str,
           external_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    session.execute(
        text(
            "INSERT INTO audit_log (state_iso3, actor, key_id, table_name, row_id, action, external_id, detail) "
            "VALUES (:state, :actor, :key_id, :table, :row_id, :action, :external_id, CAST(:detail AS jsonb))"
        ),
        {"state": state_iso3, "actor": actor.name, "key_id": actor.key_id, "table": table, "row_id": str(row_id),
         "action": action, "external_id": external_id, "detail": json.dumps(detail) if detail is not None else None},
    )
