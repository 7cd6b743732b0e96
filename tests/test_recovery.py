"""Self-healing: the service outlives its embedded PostgreSQL being killed with -9, and says so on /health."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from app import cluster_recovery, database, migrate
from app.embedded import EmbeddedCluster
from app.settings import Settings
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import post_hazard, rect


@pytest.fixture
def own_database() -> Iterator[None]:
    """The test configures the process-wide engine itself; the next test gets the shared one back."""
    database.dispose()
    yield
    database.dispose()


def _wait_for(what: str, condition, seconds: float, every: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what}")


def _compute_for_minutes(cluster: EmbeddedCluster) -> None:
    with psycopg.connect(cluster.conninfo()) as conn, contextlib.suppress(psycopg.OperationalError):
        conn.execute("SELECT count(*) FROM generate_series(1, 10000000000::bigint)")


def _active_backend(cluster: EmbeddedCluster) -> int | None:
    with psycopg.connect(cluster.conninfo()) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 1000%' "
                           "AND state = 'active' AND pid <> pg_backend_pid()").fetchone()
    return row[0] if row else None


def test_service_restarts_its_killed_cluster_and_serves_again(cluster_dir: Path, own_database: None, migrated_cluster,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(LANDRELEASE_DATA_DIR=migrated_cluster(cluster_dir / "data"), DATABASE_URL=None)
    from app.main import create_app

    with database.open_database(settings, watch=True) as url:
        migrate.upgrade(url)
        database.configure(url, settings)
        with TestClient(create_app(), headers=auth_headers(make_api_key("admin"))) as client:
            before = post_hazard(client, "KHM-BEFORE-CRASH", rect(0, 0, 100, 100))
            assert client.get("/health").json()["status"] == "ok"

            # A backend busy computing does not notice its postmaster die: it must not outlive the restart.
            cluster = EmbeddedCluster(settings.data_dir)
            busy = threading.Thread(target=_compute_for_minutes, args=(cluster,), daemon=True)
            busy.start()
            busy_pid = _wait_for("the busy backend", lambda: _active_backend(cluster), 10)

            caplog.clear()
            caplog.set_level(logging.INFO)
            pid = cluster.postmaster_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()

            # Degraded at once, as a 503 problem document, and requests are refused cleanly.
            down = _wait_for("/health degraded", lambda: (r := client.get("/health")).status_code == 503 and r, 5)
            assert down.headers["content-type"].startswith("application/problem+json")
            assert down.json()["health"] == "degraded"
            assert down.json()["database"] in {"restarting", "unreachable"}
            refused = [client.get(f"/api/v1/hazards/{before['id']}").status_code for _ in range(200)]
            assert 503 in refused and set(refused) <= {200, 503}

            # Healed without restarting the app: the same data, and writes work again.
            _wait_for("/health ok", lambda: client.get("/health").status_code == 200, 30, every=0.2)
            healed_after = time.monotonic() - killed
            assert (client.get(f"/api/v1/hazards/{before['id']}").json()["properties"]["external_id"]
                    == "KHM-BEFORE-CRASH")
            post_hazard(client, "KHM-AFTER-CRASH", rect(200, 0, 100, 100))
            listed = client.get("/api/v1/states/KHM/hazards").json()
            assert {f["properties"]["external_id"] for f in listed["features"]} == {"KHM-BEFORE-CRASH",
                                                                                   "KHM-AFTER-CRASH"}
            assert cluster.postmaster_pid() not in (None, pid)
            assert not Path(f"/proc/{busy_pid}/cwd").exists()
            busy.join(timeout=10)
            assert cluster_recovery.cluster_state() is cluster_recovery.ClusterState.RUNNING

    # Hundreds of failed requests, a handful of lines: the crash, the first failure, the count, the return.
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("app")]
    assert len(lines) <= 8, [r.getMessage() for r in lines]
    messages = " | ".join(r.getMessage() for r in lines)
    assert "is gone; restarting it" in messages and "serving again" in messages
    assert "ending 1 server processes left by a postmaster that died" in messages
    assert "database unavailable" in messages
    assert healed_after < 30


def test_an_external_database_is_waited_for_not_restarted(cluster_dir: Path, own_database: None,
                                                         migrated_cluster) -> None:
    """With DATABASE_URL the service restarts nothing: it reports degraded and serves again once the server is back."""
    server = EmbeddedCluster(migrated_cluster(cluster_dir / "external"), fsync=False)
    server.start()
    try:
        settings = Settings(DATABASE_URL=server.url, LANDRELEASE_DATA_DIR=cluster_dir / "unused")
        from app.main import create_app

        with database.open_database(settings, watch=True) as url:
            migrate.upgrade(url)
            database.configure(url, settings)
            with TestClient(create_app()) as client:
                assert client.get("/health").status_code == 200
                server.shut_down()
                down = client.get("/health")
                assert down.status_code == 503 and down.json()["database"] == "unreachable"
                time.sleep(3)  # nobody brings it back on its own
                assert server.postmaster_pid() is None and client.get("/health").status_code == 503
                server.start()
                _wait_for("/health ok", lambda: client.get("/health").status_code == 200, 30, every=0.2)
        assert not (cluster_dir / "unused").exists()
    finally:
        server.shut_down()


def test_a_cluster_held_for_maintenance_is_left_down(cluster_dir: Path, own_database: None, migrated_cluster) -> None:
    """While a point-in-time recovery holds the cluster the watchdog waits, and /health says why."""
    settings = Settings(LANDRELEASE_DATA_DIR=migrated_cluster(cluster_dir / "data"), DATABASE_URL=None)
    from app.main import create_app

    with database.open_database(settings, watch=True) as url:
        database.configure(url, settings)
        with TestClient(create_app()) as client:
            cluster = EmbeddedCluster(settings.data_dir)
            with cluster.maintenance("point-in-time recovery to a test's time"):
                cluster.shut_down()
                _wait_for("the watchdog sees the maintenance", lambda: cluster_recovery.cluster_state()
                          is cluster_recovery.ClusterState.MAINTENANCE, 5)
                time.sleep(2)
                assert cluster.postmaster_pid() is None
                down = client.get("/health")
                assert down.status_code == 503 and down.json()["database"] == "maintenance"
            _wait_for("/health ok", lambda: client.get("/health").status_code == 200, 30, every=0.2)


def test_failures_are_counted_between_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    failures = cluster_recovery.FailureLog(interval=0.2)
    caplog.set_level(logging.ERROR, logger="app.cluster_recovery")
    for _ in range(100):
        failures.record("database unavailable", "connection refused")
    time.sleep(0.25)
    failures.record("database unavailable", "connection refused")  # the interval is over: one line for 100
    for _ in range(9):
        failures.record("database unavailable", "connection refused")
    failures.flush()  # what is left: one line for 9
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "request failed: database unavailable",
        "100 requests failed in the last 0 s: database unavailable",
        "9 requests failed in the last 0 s: database unavailable",
    ]
