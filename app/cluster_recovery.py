"""Self-healing: the embedded cluster is restarted when its PostgreSQL dies, and a storm of failed
requests is logged as a few lines, not one per request.

Rules:
- Only the embedded cluster is restarted, and only by the process that serves (`landrelease serve`,
  or the app's lifespan): the watchdog looks at its postmaster every second and, when it is gone,
  starts it again (ending what the dead postmaster left running), then empties the connection pool so
  no request gets a connection to the dead server. With `DATABASE_URL` nothing is restarted: the pool
  (`pool_pre_ping`) reconnects once the server is back.
- While a point-in-time recovery holds the cluster (its maintenance file) the watchdog waits.
- A restart that fails is retried, waiting twice as long each time (at most 30 s).
- Requests that fail because the database is unavailable are counted: the first failure is logged at
  once, later ones at most once per `FAILURE_LOG_INTERVAL_S` as one line with their number.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from app import database
from app.embedded import EmbeddedCluster

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 1.0
CONFIRM_DELAY_S = 0.2
MAX_RETRY_WAIT_S = 30.0
FAILURE_LOG_INTERVAL_S = 10.0


class ClusterState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    MAINTENANCE = "maintenance"


class ClusterWatchdog:
    """A daemon thread that restarts the embedded cluster when its postmaster is gone."""

    def __init__(self, cluster: EmbeddedCluster, interval: float = CHECK_INTERVAL_S) -> None:
        self.cluster = cluster
        self.interval = interval
        self.state = ClusterState.RUNNING
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cluster-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _watch(self) -> None:
        wait = self.interval
        while not self._stopping.wait(wait):
            try:
                self.check()
                wait = self.interval
            except Exception:
                log.exception("restarting the embedded PostgreSQL failed; retrying in %.0f s", wait * 2)
                wait = min(wait * 2, MAX_RETRY_WAIT_S)

    def check(self) -> None:
        """Restart the cluster if its postmaster is gone (and nobody holds it for maintenance)."""
        if self._postmaster_alive():
            self.state = ClusterState.RUNNING
            return
        reason = self.cluster.maintenance_reason()
        if reason is not None:
            if self.state is not ClusterState.MAINTENANCE:
                log.warning("the embedded PostgreSQL is down for maintenance (%s); not restarting it", reason)
            self.state = ClusterState.MAINTENANCE
            return
        if self.state is not ClusterState.RESTARTING:
            log.error("the embedded PostgreSQL in %s is gone; restarting it", self.cluster.pgdata)
        self.state = ClusterState.RESTARTING
        began = time.monotonic()
        self.cluster.start()
        database.reset_pool()
        self.restarts += 1
        self.state = ClusterState.RUNNING
        log.warning("the embedded PostgreSQL is back after %.1f s (restart %d); serving again",
                    time.monotonic() - began, self.restarts)
        failures.flush()

    def _postmaster_alive(self) -> bool:
        if self.cluster.postmaster_pid() is not None:
            return True
        # A postmaster.pid being written by a starting server reads as none for an instant: look again.
        time.sleep(CONFIRM_DELAY_S)
        return self.cluster.postmaster_pid() is not None


_watchdog: ClusterWatchdog | None = None


def start_watchdog(cluster: EmbeddedCluster) -> ClusterWatchdog:
    global _watchdog
    _watchdog = ClusterWatchdog(cluster)
    _watchdog.start()
    return _watchdog


def stop_watchdog() -> None:
    global _watchdog
    if _watchdog is not None:
        _watchdog.stop()
    _watchdog = None


def cluster_state() -> ClusterState | None:
    """What the watchdog of this process knows of the embedded cluster (None: nothing watched)."""
    return _watchdog.state if _watchdog is not None else None


@dataclass
class _Window:
    count: int = 0
    since: float = 0.0
    last_error: str = ""


class FailureLog:
    """Counts requests that failed for one reason; logs the first at once, then one line per interval."""

    def __init__(self, interval: float = FAILURE_LOG_INTERVAL_S) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def record(self, reason: str, error: object) -> None:
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(reason)
            if window is None:
                self._windows[reason] = _Window(since=now)
                log.error("request failed: %s (%s); further failures are counted, one line per %.0f s",
                          reason, _first_line(error), self.interval)
                return
            window.count += 1
            window.last_error = _first_line(error)
            if now - window.since >= self.interval:
                self._log(reason, window, now)

    def flush(self) -> None:
        """Log what was counted and not yet logged, and start afresh."""
        now = time.monotonic()
        with self._lock:
            for reason, window in self._windows.items():
                if window.count:
                    self._log(reason, window, now)
            self._windows.clear()

    @staticmethod
    def _log(reason: str, window: _Window, now: float) -> None:
        log.error("%d requests failed in the last %.0f s: %s (last: %s)", window.count, now - window.since, reason,
                  window.last_error)
        window.count, window.since = 0, now


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


failures = FailureLog()
