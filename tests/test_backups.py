"""Backups that are tested: dump and restore (DATABASE_URL and embedded), base backups, point-in-time recovery."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import backups, cluster_recovery, database, migrate
from app.embedded import EmbeddedCluster
from app.settings import Settings
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import post_hazard, rect

ROOT = Path(__file__).resolve().parents[1]


def landrelease(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600, check=False)


def stored_external_ids() -> set[str]:
    with database.get_engine().connect() as conn:
        return set(conn.execute(text("SELECT external_id FROM hazardous_areas")).scalars())


def server_clock() -> datetime:
    with database.get_engine().connect() as conn:
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()


def test_dump_and_restore_through_database_url(client, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    dump = tmp_path / "ledger.dump"
    post_hazard(client, "KHM-KEPT", rect(0, 0, 100, 100))
    backed_up = landrelease("db", "backup", str(dump), env=env)
    assert backed_up.returncode == 0, backed_up.stderr
    assert dump.stat().st_size > 0 and not list(tmp_path.glob("*.partial"))
    post_hazard(client, "KHM-AFTER-BACKUP", rect(200, 0, 100, 100))

    restored = landrelease("db", "restore", str(dump), env=env)
    assert restored.returncode == 0, restored.stderr
    assert stored_external_ids() == {"KHM-KEPT"}
    assert client.get("/health").status_code == 200
    post_hazard(client, "KHM-AFTER-RESTORE", rect(400, 0, 100, 100))  # ids and sequences work on

    # A truncated dump and a file that is no dump change nothing.
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    not_a_dump = tmp_path / "notes.txt"
    not_a_dump.write_text("not a dump\n")
    for bad in (truncated, not_a_dump):
        refused = landrelease("db", "restore", str(bad), env=env)
        assert refused.returncode == 1, refused.stdout
        assert "landrelease db restore:" in refused.stderr
        assert stored_external_ids() == {"KHM-KEPT", "KHM-AFTER-RESTORE"}


@pytest.fixture
def embedded(cluster_dir: Path, migrated_cluster) -> Iterator[EmbeddedCluster]:
    """An embedded cluster of the test's own, migrated, as the process-wide database, watched as a
    serving process watches it: restores run under a live service."""
    settings = Settings(LANDRELEASE_DATA_DIR=migrated_cluster(cluster_dir / "data"), DATABASE_URL=None)
    database.dispose()
    try:
        with database.open_database(settings, watch=True) as url:
            migrate.upgrade(url)
            database.configure(url, settings)
            yield EmbeddedCluster(settings.data_dir)
    finally:
        database.dispose()


def test_point_in_time_recovery_and_dump_of_the_embedded_cluster(embedded: EmbeddedCluster) -> None:
    from app.main import create_app

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LANDRELEASE_DATA_DIR"] = str(embedded.data_dir)
    dump = embedded.data_dir.parent / "ledger.dump"
    with TestClient(create_app(), headers=auth_headers(make_api_key("admin"))) as client:
        too_early = server_clock()
        based = landrelease("db", "basebackup", "--keep", "2", env=env)
        assert based.returncode == 0, based.stderr
        assert len(backups.base_backups(embedded)) == 1

        post_hazard(client, "KHM-A", rect(0, 0, 100, 100))
        assert landrelease("db", "backup", str(dump), env=env).returncode == 0
        between = server_clock()  # after A committed, before B began
        time.sleep(0.05)
        post_hazard(client, "KHM-B", rect(200, 0, 100, 100))
        post_hazard(client, "KHM-C", rect(400, 0, 100, 100))
        backups.archive_current_wal(embedded)

        # A time before the only base backup cannot be reached: refused, nothing changed.
        refused = landrelease("db", "restore", "--to", too_early.isoformat(), env=env)
        assert refused.returncode == 1 and "no base backup finished before" in refused.stderr
        assert stored_external_ids() == {"KHM-A", "KHM-B", "KHM-C"}

        # Disaster recovery on a new machine: only the base backups and the WAL archive were copied there.
        elsewhere = embedded.data_dir.parent / "new-machine"
        elsewhere.mkdir()
        for folder in (embedded.base_backups, embedded.wal_archive):
            subprocess.run(["cp", "-a", str(folder), str(elsewhere)], check=True)
        rebuilt = landrelease("db", "restore", "--to", between.isoformat(),
                              env={**env, "LANDRELEASE_DATA_DIR": str(elsewhere)})
        assert rebuilt.returncode == 0, rebuilt.stderr + rebuilt.stdout
        assert "kept in" not in rebuilt.stdout  # there was nothing to keep
        new_machine = EmbeddedCluster(elsewhere, fsync=False)
        assert new_machine.postmaster_pid() is None  # left stopped, as it was found
        new_machine.start()
        try:
            with psycopg.connect(new_machine.conninfo()) as conn:
                assert {r[0] for r in conn.execute("SELECT external_id FROM hazardous_areas")} == {"KHM-A"}
        finally:
            new_machine.stop()

        recovered = landrelease("db", "restore", "--to", between.isoformat(), env=env)
        assert recovered.returncode == 0, recovered.stderr + recovered.stdout
        assert stored_external_ids() == {"KHM-A"}
        kept = list(embedded.data_dir.glob("pg-before-restore-*"))
        assert len(kept) == 1 and (kept[0] / "PG_VERSION").exists()
        assert embedded.maintenance_reason() is None
        assert cluster_recovery.cluster_state() is cluster_recovery.ClusterState.RUNNING
        with database.get_engine().connect() as conn:
            assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one() is False
            assert conn.execute(text("SHOW recovery_target_time")).scalar_one() == ""
        # The restored cluster takes writes and archives them, on a timeline of its own.
        post_hazard(client, "KHM-D", rect(600, 0, 100, 100))
        backups.archive_current_wal(embedded)
        assert (embedded.wal_archive / "00000002.history").exists()

        # The dump taken after A brings back exactly A.
        restored = landrelease("db", "restore", str(dump), env=env)
        assert restored.returncode == 0, restored.stderr
        assert stored_external_ids() == {"KHM-A"}
        assert client.get("/health").json()["status"] == "ok"


def _segments(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if re.fullmatch(r"[0-9A-F]{24}", p.name))


def _markers() -> int:
    with database.get_engine().connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'marker'")).scalar_one()


def _write_marker() -> None:
    with database.get_engine().begin() as conn:
        conn.execute(text("INSERT INTO audit_log (actor, table_name, row_id, action) "
                          "VALUES ('test', 't', '1', 'marker')"))


def test_pruning_keeps_what_recovery_needs_and_a_failed_recovery_puts_the_data_back(
        embedded: EmbeddedCluster) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LANDRELEASE_DATA_DIR"] = str(embedded.data_dir)
    assert landrelease("db", "basebackup", env=env).returncode == 0
    time.sleep(1.1)  # one base backup per second
    pruned = landrelease("db", "basebackup", "--keep", "1", env=env)
    assert pruned.returncode == 0, pruned.stderr
    [kept] = backups.base_backups(embedded)
    assert _segments(embedded.wal_archive)[0] >= kept.start_wal

    _write_marker()
    target = server_clock()
    _write_marker()
    backups.archive_current_wal(embedded)
    # The archive loses the WAL written after the base backup: the target cannot be reached.
    last_in_backup = _segments(kept.pgdata / "pg_wal")[-1]
    for segment in _segments(embedded.wal_archive):
        if segment > last_in_backup:
            (embedded.wal_archive / segment).unlink()

    failed = landrelease("db", "restore", "--to", target.isoformat(), env=env)
    assert failed.returncode == 1, failed.stdout
    assert "recovery ended before configured recovery target was reached" in failed.stderr
    assert "the previous data is back in place" in failed.stderr
    assert len(list(embedded.data_dir.glob("pg-failed-restore-*"))) == 1
    assert not list(embedded.data_dir.glob("pg-before-restore-*"))
    assert embedded.maintenance_reason() is None
    assert _markers() == 2  # running again, as it was, with everything
