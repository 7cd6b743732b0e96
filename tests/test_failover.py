"""Failover with pg_auto_failover (Debian: pg-auto-failover-cli, postgresql-15-auto-failover): the service follows.

A monitor and two PostGIS nodes on loopback ports, each run by its own `pg_autoctl`, and the service
configured with the formation's hosts as docs/operations.md says: writes with
`target_session_attrs=read-write`, heavy reads with `prefer-standby`. After `pg_autoctl perform
failover` the service writes to the new primary without a restart, answering 503 only while no node
is primary; every hazard it acknowledged is on the new primary, and the heavy reads go to the old
primary, back as the standby.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import database, migrate, read_routing
from app.embedded import find_bindir
from app.settings import get_settings
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import UTM48N, hazard_feature, rect


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Formation:
    """A pg_auto_failover monitor and two data nodes under `folder`, run as the postgres account."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.monitor_port, *self.node_ports = (free_port() for _ in range(3))
        self.processes: list[subprocess.Popen[bytes]] = []
        shutil.chown(folder, "postgres", "postgres")
        folder.chmod(0o755)

    def _command(self, *args: str) -> list[str]:
        # Its own HOME and XDG folders (pg_autoctl keeps its state there), its own socket folder.
        env = {"PATH": f"{find_bindir()}:/usr/bin:/bin", "HOME": str(self.folder),
               "XDG_CONFIG_HOME": str(self.folder / "config"), "XDG_DATA_HOME": str(self.folder / "share"),
               "XDG_RUNTIME_DIR": str(self.folder / "run"), "PG_REGRESS_SOCK_DIR": str(self.folder),
               "PGHOST": str(self.folder)}
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "env",
                *(f"{k}={v}" for k, v in env.items()), "pg_autoctl", *args]

    def _run(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        self.processes.append(subprocess.Popen(self._command(*args), stdout=log, stderr=subprocess.STDOUT))

    def states(self) -> dict[str, str]:
        """Each node's state as its pg_autoctl last reported it to the monitor."""
        try:
            with psycopg.connect(f"host=localhost port={self.monitor_port} user=autoctl_node "
                                 "dbname=pg_auto_failover", connect_timeout=2) as conn:
                rows = conn.execute("SELECT nodename, reportedstate::text FROM pgautofailover.node").fetchall()
        except psycopg.Error:
            return {}
        return dict(rows)

    def node_url(self, port: int) -> str:
        return f"host=localhost port={port} user=postgres dbname=landrelease"

    def start(self) -> None:
        (self.folder / "run").mkdir()
        shutil.chown(self.folder / "run", "postgres", "postgres")
        self._run("monitor", "create", "monitor", "--pgdata", str(self.folder / "monitor"),
                  "--pgport", str(self.monitor_port), "--hostname", "localhost", "--auth", "trust", "--no-ssl", "--run")
        monitor = f"postgres://autoctl_node@localhost:{self.monitor_port}/pg_auto_failover?sslmode=disable"
        wait_until(self._monitor_up, 60, "the monitor's start")
        for n, port in enumerate(self.node_ports, start=1):
            self._run(f"node{n}", "create", "postgres", "--pgdata", str(self.folder / f"node{n}"),
                      "--pgport", str(port), "--hostname", "localhost", "--name", f"node{n}", "--dbname", "landrelease",
                      "--monitor", monitor, "--auth", "trust", "--no-ssl", "--run")
            if n == 1:
                wait_until(lambda: self.states().get("node1") == "single", 60, "the first node's start")
        # The secondary's base backup waits for a checkpoint on the primary: ask for it rather than wait 5 min.
        with psycopg.connect(self.node_url(self.node_ports[0]), autocommit=True) as primary:
            def both_up() -> bool:
                primary.execute("CHECKPOINT")
                return self.states() == {"node1": "primary", "node2": "secondary"}

            wait_until(both_up, 120, "the secondary's start")

    def _monitor_up(self) -> bool:
        try:
            with psycopg.connect(f"host=localhost port={self.monitor_port} user=autoctl_node "
                                 "dbname=pg_auto_failover", connect_timeout=2) as conn:
                conn.execute("SELECT count(*) FROM pgautofailover.node")
                return True
        except psycopg.Error:
            return False

    def perform_failover(self) -> subprocess.Popen[bytes]:
        log = (self.folder / "failover.log").open("ab")
        return subprocess.Popen(self._command("perform", "failover", "--pgdata", str(self.folder / "monitor")),
                                stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for process in reversed(self.processes):  # the nodes first, the monitor last
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def formation(cluster_dir: Path, database_url: str) -> Iterator[Formation]:
    made = Formation(cluster_dir)
    try:
        made.start()
        yield made
    finally:
        read_routing.dispose()
        database.configure(database_url)  # back to the session's primary for the tests that follow
        made.stop()


def server_port() -> int | str:
    """The port of the server the service's engine writes to now (or why it cannot connect)."""
    try:
        with database.get_engine().connect() as conn:
            return conn.execute(text("SELECT inet_server_port()")).scalar_one()
    except Exception as exc:  # noqa: BLE001 - during the failover: no primary
        return type(exc).__name__


def test_the_service_follows_a_pg_auto_failover_failover(formation: Formation,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = "&".join(f"host=localhost:{port}" for port in formation.node_ports)
    write_url = f"postgresql+psycopg://postgres@/landrelease?{hosts}&target_session_attrs=read-write&connect_timeout=2"
    read_url = f"postgresql+psycopg://postgres@/landrelease?{hosts}&target_session_attrs=prefer-standby&connect_timeout=2"
    migrate.upgrade(write_url)
    database.configure(write_url)
    monkeypatch.setattr(get_settings(), "read_database_url", read_url)
    from app.main import create_app

    writer = TestClient(create_app(), headers=auth_headers(make_api_key("admin")))
    reader = TestClient(create_app(), headers=auth_headers(make_api_key("admin")))
    with writer, reader:
        def post(external_id: str, x: float) -> int:
            return writer.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                               json=hazard_feature(external_id, rect(x, 0, 100, 100))).status_code

        def layer_read_from() -> str:
            response = reader.get("/collections/hazardous_areas/items")
            assert response.status_code == 200, response.text
            return response.headers["Landrelease-Read-From"]

        assert post("KHM-BEFORE", 0) == 201
        wait_until(lambda: layer_read_from() == "standby", 20, "the reads on the secondary")
        first_primary = server_port()
        assert first_primary == formation.node_ports[0]

        failover = formation.perform_failover()
        acknowledged, statuses, started = ["KHM-BEFORE"], [], time.monotonic()
        while time.monotonic() - started < 60:
            external_id = f"KHM-DURING-{len(statuses)}"
            statuses.append(post(external_id, 200.0 * (len(statuses) + 1)))
            if statuses[-1] == 201:
                acknowledged.append(external_id)
                if server_port() == formation.node_ports[1]:
                    break
            time.sleep(0.2)
        assert failover.wait(timeout=60) == 0
        assert server_port() == formation.node_ports[1], statuses
        assert set(statuses) <= {201, 503}, statuses  # no other error while no node was primary

        with psycopg.connect(formation.node_url(formation.node_ports[1])) as new_primary:
            stored = {row[0] for row in new_primary.execute("SELECT external_id FROM hazardous_areas")}
        assert set(acknowledged) <= stored  # nothing acknowledged was lost
        # The old primary rejoins as the secondary, and the heavy reads go to it.
        wait_until(lambda: formation.states() == {"node1": "secondary", "node2": "primary"}, 60, "the rejoin")
        wait_until(lambda: layer_read_from() == "standby", 20, "the reads on the new secondary")
