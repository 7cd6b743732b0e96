"""Heavy reads on a hot standby (LANDRELEASE_READ_DATABASE_URL); writes and everything else on the primary.

The heavy reads are the OGC layers (collections, items, single items), the vector tiles, the
summaries (a State's, the Committee overview, the Article 7 report, the burn-down charts) and the
exports: their routes take `read_engine` or `get_read_session` in place of the primary's engine or
`get_session`.

Rules:
- Read-after-write, by WAL position: every successful write (POST, PUT, PATCH, DELETE answered
  below 400) is answered with the primary's WAL insert position after its commit
  (`pg_current_wal_insert_lsn()`: with `synchronous_commit=off` the write position may still be
  short of the commit) in the `Landrelease-Wal-Lsn` header and in a short-lived cookie
  `landrelease_lsn` (the lag limit plus a minute: past that, any standby still used holds the write
  anyway); the process also remembers it for the API key that wrote, for as long. A read carrying
  a position (the cookie, that header sent back, or its key's last write) goes to the standby only
  if the standby has replayed at least that far (`pg_last_wal_replay_lsn()`); else to the primary.
  A client that just wrote always sees its write (its key's memory is per process: with several
  service processes, the cookie or the header carries the position); other clients may see the
  standby's view, at most the lag limit old.
- The lag limit, `LANDRELEASE_READ_MAX_LAG_S` (default 5 s), is judged by WAL positions, never by
  `pg_last_xact_replay_timestamp()` (which grows while nothing is written): once a second the primary's
  current position is noted with the time; the standby serves reads only while it has replayed at
  least the position the primary had `max_lag` seconds ago (an idle standby that replayed
  everything is never lagging). A read database that is not in recovery (promoted, or the primary
  among the hosts of a multi-host URL) serves no reads, and its pooled connections are dropped so
  that new ones choose again.
- A dead standby costs (almost) no latency: the first failure (connecting, the ping of a pooled
  connection, or the check) sends every read to the primary for 5 s before the standby is tried
  again (a circuit breaker). A stopped standby refuses connections at once; a host that does not
  answer at all holds the one request that tries it for the 2 s connect timeout (5 s of unanswered
  TCP for a pooled connection), once every 5 s. A standby that dies in the middle of a statement
  fails that one request.
- The standby's state is checked at most once a second, by one request; the others use the last check
  meanwhile (no check yet: the primary), so no request waits for another's check.

With a read database set, every heavy read is answered with `Landrelease-Read-From: standby` or `primary`.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from anyio import to_thread
from fastapi import Request
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import database
from app.access import presented_secret
from app.settings import get_settings

log = logging.getLogger(__name__)

READ_FROM_HEADER = "Landrelease-Read-From"
LSN_HEADER = "Landrelease-Wal-Lsn"
LSN_COOKIE = "landrelease_lsn"
CHECK_EVERY_S = 1.0
RETRY_AFTER_S = 5.0
CONNECT_TIMEOUT_S = 2
TCP_USER_TIMEOUT_MS = 5000
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_STANDBY_SQL = "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
_PRIMARY_SQL = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
_WRITTEN_SQL = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"


def parse_lsn(value: str | None) -> int | None:
    """A WAL position written as PostgreSQL does (`16/B374D848`) as a number; None when it is not one."""
    if not value:
        return None
    high, _, low = value.strip().partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class StandbyCheck:
    """What the last check saw: the standby's replay position (None: it serves no reads), and when."""

    replay_lsn: int | None
    checked_at: float


class Standby:
    """The read replica at `url`: its engine, its last check, the primary's recent positions, its breaker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(
            database.sqlalchemy_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True,
            # tcp_user_timeout: a standby host that vanished from the network (no refusal, no answer) fails
            # the next ping in seconds, not after the system's TCP retransmissions (minutes).
            connect_args={**database.connect_args(get_settings().statement_timeout_ms),
                          "connect_timeout": CONNECT_TIMEOUT_S, "tcp_user_timeout": TCP_USER_TIMEOUT_MS},
        )
        self._check: StandbyCheck | None = None
        self._primary_positions: tuple[tuple[float, int], ...] = ()  # (monotonic time, primary's LSN), oldest first
        self._down_until = 0.0
        self._lock = threading.Lock()

    def replay_lsn(self, primary: Engine, max_lag_s: float) -> int | None:
        """How far the standby has replayed, when it may serve reads now; None when it may not."""
        if time.monotonic() < self._down_until:
            return None
        # One request checks; the others meanwhile go on with the last check (none yet: the primary).
        if self._check_due() and self._lock.acquire(blocking=False):
            try:
                if self._check_due():
                    self._check_now(primary, max_lag_s)
            finally:
                self._lock.release()
        check, positions = self._check, self._primary_positions
        if check is None or check.replay_lsn is None:
            return None
        horizon = time.monotonic() - max_lag_s
        if not any(lsn <= check.replay_lsn for noted_at, lsn in positions if noted_at >= horizon):
            return None  # lagging: it has not replayed what the primary had max_lag seconds ago
        return check.replay_lsn

    def _check_due(self) -> bool:
        return self._check is None or time.monotonic() - self._check.checked_at >= CHECK_EVERY_S

    def _check_now(self, primary: Engine, max_lag_s: float) -> None:
        try:
            with self.engine.connect() as conn:
                in_recovery, replay_lsn = conn.execute(text(_STANDBY_SQL)).one()
        except DBAPIError as exc:
            self.mark_down(exc)
            return
        with primary.connect() as conn:
            primary_lsn = conn.execute(text(_PRIMARY_SQL)).scalar_one()
        now = time.monotonic()
        # Replaced whole (never changed in place): requests read the positions without the lock.
        self._primary_positions = (*(p for p in self._primary_positions if p[0] >= now - max_lag_s), (now, primary_lsn))
        if not in_recovery:
            # Promoted, or (a URL of several hosts) connected to the primary while no standby answered:
            # new connections choose again.
            log.warning("the read database %s is not a standby: reads go to the primary", self.url)
            self.engine.dispose()
            replay_lsn = None
        self._check = StandbyCheck(replay_lsn=replay_lsn, checked_at=now)

    def mark_down(self, exc: Exception) -> None:
        """Send every read to the primary for RETRY_AFTER_S seconds."""
        log.warning("the standby is unreachable (%s): reads go to the primary for %g s",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, RETRY_AFTER_S)
        self._down_until = time.monotonic() + RETRY_AFTER_S
        self._check = None

    def dispose(self) -> None:
        self.engine.dispose()


_standby: Standby | None = None
_standby_lock = threading.Lock()


def current_standby() -> Standby | None:
    """The standby of LANDRELEASE_READ_DATABASE_URL (made on first use, remade when the setting changes)."""
    global _standby
    url = get_settings().read_database_url
    with _standby_lock:
        if _standby is not None and _standby.url != url:
            _standby.dispose()
            _standby = None
        if _standby is None and url:
            _standby = Standby(url)
        return _standby


def dispose() -> None:
    global _standby
    with _standby_lock:
        if _standby is not None:
            _standby.dispose()
        _standby = None


def _remembered_s() -> int:
    """How long a write's position matters: past the lag limit, any standby still used has replayed it."""
    return int(get_settings().read_max_lag_s) + 60


_key_writes: dict[str, tuple[int, float]] = {}  # sha256 of a key -> (WAL position of its last write, until)
_key_writes_lock = threading.Lock()


def _key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _note_key_write(secret: str, lsn: int) -> None:
    now = time.monotonic()
    with _key_writes_lock:
        for digest in [d for d, (_, until) in _key_writes.items() if until < now]:
            del _key_writes[digest]
        _key_writes[_key_digest(secret)] = (lsn, now + _remembered_s())


def _key_write(secret: str) -> int | None:
    lsn, until = _key_writes.get(_key_digest(secret), (None, 0.0))
    return lsn if until >= time.monotonic() else None


def written_lsn(request: Request) -> int | None:
    """The WAL position the client's last write reached (cookie, header, or its key's last write here), if any."""
    secret = presented_secret(request)
    positions = [parse_lsn(request.cookies.get(LSN_COOKIE)), parse_lsn(request.headers.get(LSN_HEADER)),
                 _key_write(secret) if secret else None]
    return max((p for p in positions if p is not None), default=None)


def read_engine(request: Request) -> Engine:
    """FastAPI dependency: the engine of a heavy read, the standby's when it may answer this client."""
    primary = database.get_engine()
    standby = current_standby()
    chosen = primary
    if standby is not None:
        replayed = standby.replay_lsn(primary, get_settings().read_max_lag_s)
        needed = written_lsn(request)
        if replayed is not None and (needed is None or needed <= replayed):
            try:
                with standby.engine.connect():  # the pool's ping: a standby that just died is found here
                    chosen = standby.engine
            except DBAPIError as exc:
                standby.mark_down(exc)
        request.state.read_from = "standby" if chosen is standby.engine else "primary"
    return chosen


def get_read_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one session for a heavy read, on the engine `read_engine` chooses."""
    with Session(read_engine(request), expire_on_commit=False) as session:
        yield session


def _written_lsn_now() -> int:
    with database.get_engine().connect() as conn:
        return conn.execute(text(_WRITTEN_SQL)).scalar_one()


async def _give_position(scope: Scope, headers: MutableHeaders) -> None:
    """The WAL position a successful write reached: header, cookie, and the key's memory."""
    try:
        lsn = await to_thread.run_sync(_written_lsn_now)
    except DBAPIError as exc:  # the write is committed, the primary gone since: answer it without a position
        log.warning("no WAL position for a write's answer (%s)", type(exc).__name__)
        return
    secret = presented_secret(Request(scope))
    if secret:
        _note_key_write(secret, lsn)
    headers[LSN_HEADER] = format_lsn(lsn)
    headers.append("Set-Cookie", f"{LSN_COOKIE}={format_lsn(lsn)}; Max-Age={_remembered_s()}; Path=/; HttpOnly; "
                                 "SameSite=Lax")


class ReadRouting:
    """ASGI middleware: the WAL position on successful writes (header and cookie); where a read was served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        is_write = scope["method"] in _WRITE_METHODS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "read_from" in state:
                    headers[READ_FROM_HEADER] = state["read_from"]
                if is_write and 200 <= message["status"] < 400 and get_settings().read_database_url:
                    await _give_position(scope, headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
