"""Where the database is: `DATABASE_URL`, or the embedded private cluster; the engine and sessions."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.embedded import EmbeddedCluster
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None


# PostgreSQL's JIT compiler is off for the service's connections: PostGIS declares its functions costly, so
# the planner's estimates of the ledger's statements pass the JIT thresholds although they touch few rows, and
# compiling them takes longer than running them (a State's boundary check in the history import: 8-9 s with
# JIT, 0.5-0.7 s without; bench/findings.md). The embedded cluster is initialised with it off as well.
NO_JIT = "-c jit=off"


def connect_args(statement_timeout_ms: int | None = None) -> dict[str, Any]:
    """The options of every connection the service or one of its commands opens: no JIT, and the statement
    timeout when one is given (a command's long import has none)."""
    timeout = "" if statement_timeout_ms is None else f"-c statement_timeout={statement_timeout_ms} "
    return {"options": timeout + NO_JIT, "connect_timeout": 10}


def sqlalchemy_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@contextmanager
def open_database(settings: Settings | None = None, *, watch: bool = False) -> Iterator[str]:
    """Yield the URL of the database to use; start (and later stop) the embedded cluster if needed.

    `watch`: the serving process keeps the embedded cluster alive (app/cluster_recovery.py).
    """
    settings = settings or get_settings()
    if settings.database_url:
        yield sqlalchemy_url(settings.database_url)
        return
    cluster = EmbeddedCluster(settings.data_dir)
    cluster.start()
    if watch:
        from app import cluster_recovery

        cluster_recovery.start_watchdog(cluster)
    try:
        yield cluster.url
    finally:
        if watch:
            cluster_recovery.stop_watchdog()
        dispose()
        cluster.stop()


def configure(url: str, settings: Settings | None = None) -> Engine:
    """Create the process-wide engine for this URL."""
    global _engine, _sessions
    settings = settings or get_settings()
    dispose()
    _engine = create_engine(
        sqlalchemy_url(url),
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args=connect_args(settings.statement_timeout_ms),
    )
    _sessions = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def dispose() -> None:
    global _engine, _sessions
    if _engine is not None:
        _engine.dispose()
    _engine, _sessions = None, None


def reset_pool() -> None:
    """Drop every pooled connection (after the server restarted); the engine stays usable."""
    if _engine is not None:
        _engine.dispose()


def is_configured() -> bool:
    return _engine is not None


def get_engine() -> Engine:
    if _engine is None:
        raise RuntimeError("the database is not configured")
    return _engine


def session() -> Session:
    """A new session (use as a context manager) for work outside a request."""
    if _sessions is None:
        raise RuntimeError("the database is not configured")
    return _sessions()


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session (one transaction) per request."""
    if _sessions is None:
        raise RuntimeError("the database is not configured")
    with _sessions() as session:
        yield session
