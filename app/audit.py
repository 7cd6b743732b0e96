"""The audit trail: who wrote what, when. Every write of the ledger goes through `record`, through
`sql_entry` where the write's own statement makes its row and the entry at once (the row's id is not
known before), or through `copy_entries` where a bulk load writes many at once (the same columns)."""
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


_COLUMNS = "state_iso3, actor, key_id, table_name, row_id, action, external_id, detail"


def sql_entry(row_id: str, source: str) -> str:
    """The INSERT of one entry per row of `source` (SQL: a relation), its row id the SQL expression `row_id`
    over it, the rest bound by `entry_params`: a data-modifying CTE of the statement that writes the row."""
    return (f"INSERT INTO audit_log ({_COLUMNS}) SELECT CAST(:audit_state AS text), CAST(:audit_actor AS text), "
            f"CAST(:audit_key_id AS uuid), CAST(:audit_table AS text), CAST({row_id} AS text), "
            f"CAST(:audit_action AS text), CAST(:audit_external_id AS text), CAST(:audit_detail AS jsonb) "
            f"FROM {source}")


def entry_params(actor: Actor, *, state_iso3: str | None, table: str, action: str, external_id: str | None = None,
                 detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bound parameters of `sql_entry` (all but the row id)."""
    return {"audit_state": state_iso3, "audit_actor": actor.name, "audit_key_id": actor.key_id, "audit_table": table,
            "audit_action": action, "audit_external_id": external_id,
            "audit_detail": json.dumps(detail) if detail is not None else None}


_RECORD = text(sql_entry(":audit_row_id", "(SELECT) AS one"))


def record(session: Session, actor: Actor, *, state_iso3: str | None, table: str, row_id: Any, action: str,
           external_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    session.execute(_RECORD, {**entry_params(actor, state_iso3=state_iso3, table=table, action=action,
                                             external_id=external_id, detail=detail), "audit_row_id": str(row_id)})


def copy_entries(cursor: psycopg.Cursor[Any], actor: Actor, state_iso3: str, table: str, action: str,
                 entries: Iterable[tuple[Any, str | None, dict[str, Any]]]) -> None:
    """Audit entries (row id, external id, detail) of one actor's action, sent by binary COPY on `cursor` (in the
    bulk load's transaction): the rows `record` would write one by one."""
    with cursor.copy(f"COPY audit_log ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "uuid", "text", "text", "text", "text", "jsonb"])
        for row_id, external_id, detail in entries:
            copy.write_row((state_iso3, actor.name, actor.key_id, table, str(row_id), action, external_id,
                            Jsonb(detail)))
