"""The embedded cluster life cycle, migrations round trip, health and problem responses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app import database, migrate
from app.embedded import (
    EmbeddedCluster,
    EmbeddedClusterError,
    check_postgis_installed,
    find_bindir,
    shared_buffers_mb,
)

ROOT = Path(__file__).resolve().parents[1]


def _count_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM marker")).scalar_one()
    finally:
        engine.dispose()


def test_embedded_cluster_life_cycle(cluster_dir: Path) -> None:
    data_dir = cluster_dir / "data"
    cluster = EmbeddedCluster(data_dir, fsync=False)
    cluster.start()
    assert cluster.started_here
    assert (data_dir / "pg" / "PG_VERSION").exists()
    engine = create_engine(cluster.url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT postgis_lib_version()")).scalar_one().startswith("3")
        # sized for the machine: a quarter of its memory, within 128 MB..4 GB
        shared = conn.execute(text("SELECT setting::bigint * 8 / 1024 FROM pg_settings "
                                   "WHERE name = 'shared_buffers'")).scalar_one()
        assert shared == shared_buffers_mb() and 128 <= shared <= 4096
        # no JIT (app.database.NO_JIT): compiling the ledger's PostGIS statements cost more than running them
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
        conn.execute(text("CREATE TABLE marker (id int)"))
        conn.execute(text("INSERT INTO marker VALUES (1)"))
    engine.dispose()

    # A second user of the same data folder reuses the running cluster and does not stop it.
    second = EmbeddedCluster(data_dir)
    second.start()
    assert not second.started_here
    second.stop()
    assert cluster.is_running()

    # Stopping and starting again keeps the data.
    cluster.stop()
    assert not cluster.is_running()
    again = EmbeddedCluster(data_dir, fsync=False)
    again.start()
    assert again.started_here
    assert _count_rows(again.url) == 1

    # A crash leaves a postmaster.pid behind: kill the server hard, then start again.
    pid = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        subprocess.run(["sleep", "0.05"])
    assert (data_dir / "pg" / "postmaster.pid").exists()
    # Children of the killed postmaster may linger briefly; the next start must still succeed.
    after_crash = EmbeddedCluster(data_dir, fsync=False)
    after_crash.start(timeout=60)
    assert after_crash.started_here
    assert _count_rows(after_crash.url) == 1
    after_crash.stop()
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_shared_buffers_follow_a_container_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import embedded

    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(embedded, "_CGROUP_MEMORY_LIMITS", (v2, v1))
    unlimited = embedded.shared_buffers_mb()  # no cgroup files: the machine's memory
    v2.write_text("max\n")  # cgroup v2 without a limit
    assert embedded.shared_buffers_mb() == unlimited
    v1.write_text(f"{2 * 1024 ** 3}\n")  # a 2 GB container: a quarter of it
    assert embedded.shared_buffers_mb() == 512
    v2.write_text(f"{256 * 1024 ** 2}\n")  # a tiny one: never below PostgreSQL's default
    assert embedded.shared_buffers_mb() == 128


def test_stale_pid_file_from_another_process_is_ignored(cluster_dir: Path, migrated_cluster) -> None:
    tmp_path = cluster_dir
    migrated_cluster(tmp_path / "data")
    cluster = EmbeddedCluster(tmp_path / "data", fsync=False)
    cluster.start()
    cluster.stop()
    pid_file = tmp_path / "data" / "pg" / "postmaster.pid"
    # After a reboot the old pid may name any live process: this test's own, or another program
    # called postgres (another cluster's server).
    impostor = subprocess.Popen(["bash", "-c", "exec -a postgres sleep 60"])
    try:
        for pid in (os.getpid(), impostor.pid):
            pid_file.write_text(f"{pid}\n{tmp_path}\n")
            if os.geteuid() == 0:
                os.chown(pid_file, *_owner(tmp_path / "data" / "pg"))
            cluster = EmbeddedCluster(tmp_path / "data", fsync=False)
            cluster.start()
            assert cluster.is_running()
            cluster.stop()
    finally:
        impostor.kill()


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


def test_missing_postgis_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = find_bindir()
    monkeypatch.setattr(Path, "exists", lambda self: False if self.name == "postgis.control" else os.path.exists(self))
    with pytest.raises(EmbeddedClusterError, match=r"apt-get install postgresql-\d+-postgis-3"):
        check_postgis_installed(bindir)


def test_migrations_round_trip(database_url: str) -> None:
    engine = create_engine(database_url)

    def tables() -> set[str]:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))}

    try:
        migrate.upgrade(database_url, "head")
        assert {"hazardous_areas", "land_release_events", "audit_log", "states"} <= tables()
        migrate.downgrade(database_url, "base")
        assert tables() <= {"alembic_version", "spatial_ref_sys"}
        migrate.upgrade(database_url, "head")
        assert {"hazardous_areas", "land_release_events", "audit_log", "states"} <= tables()
        assert "head" in migrate.current(database_url)
    finally:
        engine.dispose()


def test_health_reports_postgis(client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["postgis"].startswith("3.")


def test_the_service_connections_run_without_jit(database_url: str) -> None:
    """On a server of its own too (DATABASE_URL, JIT on by PostgreSQL's default): the service turns it off."""
    engine = create_engine(database.sqlalchemy_url(database_url), connect_args=database.connect_args(60_000))
    with engine.connect() as conn:
        jit, source = conn.execute(text("SELECT setting, source FROM pg_settings WHERE name = 'jit'")).one()
        assert (jit, source) == ("off", "client")  # the connection's own, whatever the server's configuration
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1min"
    engine.dispose()


def test_health_is_503_when_database_unreachable(client, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import database

    broken = create_engine("postgresql+psycopg://nobody@/nowhere?host=/nonexistent&port=1")
    monkeypatch.setattr(database, "get_engine", lambda: broken)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "unreachable" in response.json()["detail"]


def test_unknown_route_is_problem_json(client) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_cli_db_current_against_database_url(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    out = subprocess.run([sys.executable, "-m", "app.cli", "db", "current"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(head)" in out.stdout


def _wait_for_health(url: str, proc: subprocess.Popen, seconds: float = 120) -> dict:
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "serve exited"
        try:
            return httpx.get(url + "/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("the service did not answer /health")


def test_serve_starts_own_cluster_stops_it_and_keeps_data(cluster_dir: Path) -> None:
    tmp_path = cluster_dir
    from tests.conftest import _free_port

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LANDRELEASE_DATA_DIR"] = str(tmp_path / "data")
    url = f"http://127.0.0.1:{port}"
    for run in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert _wait_for_health(url, proc)["database"] == "ok"
            engine = create_engine(EmbeddedCluster(tmp_path / "data").url)
            with engine.begin() as conn:
                if run == 0:
                    conn.execute(text("INSERT INTO audit_log (actor, table_name, row_id, action) "
                                      "VALUES ('test', 't', '1', 'marker')"))
                else:
                    assert conn.execute(text("SELECT count(*) FROM audit_log "
                                             "WHERE action = 'marker'")).scalar_one() == 1
            engine.dispose()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists(), "the cluster was left running"


def test_migration_0005_clears_key_names_from_decision_sources(database_url: str) -> None:
    """Decisions stored with the old default source "recorded by <key name>" lose it; a real source stays."""
    engine = create_engine(database_url)
    try:
        migrate.downgrade(database_url, "0004_summary_indexes")
        with engine.begin() as conn:
            ids = [conn.execute(text(
                "INSERT INTO article5_decisions (state_iso3, kind, decided_on, deadline, source) "
                "VALUES ('KHM', 'extension', :on, '2031-12-31', :source) RETURNING id"),
                {"on": date(2026, 11, day), "source": source}).scalar_one()
                for day, source in ((1, "recorded by secretariat key"),
                                    (2, "recorded by the 22MSP, APLC/MSP.22/2024/12"))]
            conn.execute(text("INSERT INTO audit_log (state_iso3, actor, table_name, row_id, action) "
                              "VALUES ('KHM', 'secretariat key', 'article5_decisions', :id, 'create')"),
                         {"id": str(ids[0])})
        migrate.upgrade(database_url, "head")
        with engine.begin() as conn:
            sources = [conn.execute(text("SELECT source FROM article5_decisions WHERE id = :id"),
                                    {"id": i}).scalar_one()
                       for i in ids]
            conn.execute(text("DELETE FROM article5_decisions WHERE id = ANY(:ids)"), {"ids": ids})
            conn.execute(text("DELETE FROM audit_log WHERE actor = 'secretariat key'"))
        assert sources == [None, "recorded by the 22MSP, APLC/MSP.22/2024/12"]
    finally:
        migrate.upgrade(database_url, "head")
        engine.dispose()


def test_orm_models_match_the_migrated_schema(database_url: str) -> None:
    """The typed models and the migrations describe the same tables and columns."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.models import Base

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    # Only tables and columns count here: indexes and constraints are spelled out in the migrations.
    drift = [d for d in diff if isinstance(d, tuple) and d[0] in ("add_table", "remove_table", "add_column",
                                                                    "remove_column")]
    drift = [d for d in drift if not (d[0] == "remove_table" and d[1].name == "spatial_ref_sys")]
    assert drift == []
