"""The audit trail: who wrote what, when. Every write of the ledger goes through `record`, or through
`copy_entries` where a bulk load writes many at once (the same columns)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
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


def copy_entries(cursor: psycopg.Cursor[Any], actor: Actor, state_iso3: str, table: str, action: str,
                 entries: Iterable[tuple[Any, str | None, dict[str, Any]]]) -> None:
    """Audit entries (row id, external id, detail) of one actor's action, sent by binary COPY on `cursor` (in the
    bulk load's transaction): the rows `record` would write one by one."""
    with cursor.copy("COPY audit_log (state_iso3, actor, key_id, table_name, row_id, action, external_id, detail) "
                     "FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "uuid", "text", "text", "text", "text", "jsonb"])
        for row_id, external_id, detail in entries:
            copy.write_row((state_iso3, actor.name, actor.key_id, table, str(row_id), action, external_id,
                            Jsonb(detail)))
