"""Seconds spent per SQL statement on an engine, for the profiling scripts."""
from __future__ import annotations

import time
from collections import defaultdict

from sqlalchemy import Engine, event


def time_statements(engine: Engine, width: int = 80) -> dict[str, float]:
    """Return a dict that fills with seconds per statement (its first `width` characters) as they run."""
    spent: dict[str, float] = defaultdict(float)

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        conn.info["statement_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        started = conn.info.pop("statement_started", time.perf_counter())
        spent[" ".join(statement.split())[:width]] += time.perf_counter() - started

    return spent
