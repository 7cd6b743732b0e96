"""Backups and restores: logical dumps of any database, base backups and point-in-time recovery of
the embedded cluster.

Rules:
- A dump (`pg_dump -Fc`) is written under a temporary name and renamed when complete: the named file
  is a whole dump or does not exist.
- A dump is restored all or nothing: the file is read through first (a file that is not a whole
  landrelease dump is refused before the database is touched), then `pg_restore --clean --if-exists
  --single-transaction --exit-on-error`, so a restore that fails at any point leaves the database as
  it was. The restore drops and recreates the dump's tables in the configured database itself (no
  second database: a `DATABASE_URL` user need not be allowed to create or rename databases).
  Extensions are left as the server has them (PostGIS is created first when missing); tables of the
  database that the dump does not have stay. A restore waits at most `RESTORE_LOCK_TIMEOUT_MS` for
  a table the running service uses, then fails (and so changes nothing).
- Base backups (`pg_basebackup`, plain, with the WAL they need) go to
  `$LANDRELEASE_DATA_DIR/base-backups/<UTC time>/pgdata`, beside a `backup.json` that says when the
  backup finished by the server's clock: a point in time can be restored from a base backup that
  finished before it, replaying the WAL archive from there. Pruning keeps the newest N base backups
  and the archived WAL the oldest of them needs.
- A point-in-time recovery never deletes data: the current pgdata (if any: on a new machine the
  folder may hold only copied base backups and WAL archive) is moved aside to
  `pg-before-restore-<UTC time>` first. Before that, the running cluster commits a marker
  transaction and archives its current WAL, so everything up to the moment of the restore can be
  replayed. If the recovery fails, the attempt is kept as `pg-failed-restore-<UTC time>` and the
  previous pgdata is put back. The cluster is left running if it was running before.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from app.embedded import (
    PORT,
    SUPERUSER,
    EmbeddedCluster,
    EmbeddedClusterError,
    set_auto_conf,
)

log = logging.getLogger(__name__)

RESTORE_LOCK_TIMEOUT_MS = 30_000
ARCHIVE_WAIT_S = 60.0
RECOVERY_TIMEOUT_S = 600.0
_RECOVERY_SETTINGS = ("restore_command", "recovery_target_time", "recovery_target_action", "recovery_target_timeline")
_EXTENSION_ENTRY = re.compile(r"^\d+; \d+ \d+ (EXTENSION|COMMENT - EXTENSION) ")


class BackupError(RuntimeError):
    """A backup or restore that could not be done; the message says why and what was left as it was."""


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- logical dumps (embedded cluster or DATABASE_URL) -------------------------------------------
def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as a libpq URL, and the environment carrying its password (never on a command line)."""
    parsed = make_url(url)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _client_program(name: str) -> str:
    """pg_dump or pg_restore of the newest PostgreSQL installed: they handle dumps of older servers too."""
    versions = sorted((Path(p) for p in glob.glob(f"/usr/lib/postgresql/*/bin/{name}")),
                      key=lambda p: int(p.parents[1].name) if p.parents[1].name.isdigit() else 0)
    found = str(versions[-1]) if versions else shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: apt-get install postgresql-client (of the server's major "
                          "version or newer)")
    return found


def _run(args: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise BackupError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def dump(url: str, file: Path) -> int:
    """Dump the database into `file` (pg_dump custom format); the size in bytes."""
    conninfo, env = _libpq(url)
    partial = file.with_name(file.name + ".partial")
    try:
        _run([_client_program("pg_dump"), "-Fc", "-f", str(partial), "-d", conninfo], env, "pg_dump")
        partial.rename(file)
    finally:
        partial.unlink(missing_ok=True)
    return file.stat().st_size


def restore_dump(url: str, file: Path) -> int:
    """Replace the dump's tables in the database by the dump's, all or nothing; the number of entries restored."""
    conninfo, env = _libpq(url)
    pg_restore = _client_program("pg_restore")
    contents = _run([pg_restore, "-l", str(file)], env, f"reading {file}").stdout
    if not re.search(r" TABLE public alembic_version ", contents):
        raise BackupError(f"{file} is not a landrelease dump (it has no alembic_version table); nothing was changed")
    # Reading every entry's data proves the file whole before the database is touched.
    _run([pg_restore, "-f", os.devnull, str(file)], env, f"reading {file} through")
    entries = [line for line in contents.splitlines() if not _EXTENSION_ENTRY.match(line)]
    try:
        with psycopg.connect(conninfo, autocommit=True, password=env.get("PGPASSWORD")) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        raise BackupError(f"cannot prepare the database for the restore ({exc}); nothing was changed") from exc
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as listing:
        listing.write("\n".join(entries) + "\n")
    env["PGOPTIONS"] = f"-c lock_timeout={RESTORE_LOCK_TIMEOUT_MS}"
    try:
        _run([pg_restore, "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner",
              "--no-privileges", "-L", listing.name, "-d", conninfo, str(file)], env,
             "pg_restore (rolled back: the database is as it was)")
    finally:
        os.unlink(listing.name)
    return sum(1 for line in entries if line and not line.startswith(";"))


# --- base backups and the WAL archive (embedded cluster) ---------------------------------------
@dataclass(frozen=True)
class BaseBackup:
    folder: Path
    finished_at: datetime
    start_wal: str

    @property
    def pgdata(self) -> Path:
        return self.folder / "pgdata"


def _server_clock(cluster: EmbeddedCluster) -> datetime:
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def take_base_backup(cluster: EmbeddedCluster, keep: int | None = None) -> BaseBackup:
    """A base backup of the running cluster; with `keep`, only the newest `keep` base backups stay."""
    folder = cluster.base_backups / _stamp()
    if folder.exists():
        raise BackupError(f"{folder} exists already: one base backup per second")
    cluster.server_folder(cluster.base_backups)
    cluster.server_folder(folder)
    cluster.run_as_server(cluster.program("pg_basebackup"), "-h", str(cluster.socket_dir), "-p", str(PORT),
                          "-U", SUPERUSER, "--no-password", "-D", str(folder / "pgdata"), "-Fp", "-X", "stream",
                          "--checkpoint=fast")
    label = (folder / "pgdata" / "backup_label").read_text()
    start_wal = re.search(r"START WAL LOCATION: \S+ \(file (\w+)\)", label)
    if start_wal is None:
        raise BackupError(f"the base backup in {folder} has no readable backup_label")
    backup = BaseBackup(folder=folder, finished_at=_server_clock(cluster), start_wal=start_wal.group(1))
    (folder / "backup.json").write_text(json.dumps({"finished_at": backup.finished_at.isoformat(),
                                                    "start_wal": backup.start_wal}, indent=2) + "\n")
    log.info("base backup %s taken (WAL from %s)", folder, backup.start_wal)
    if keep is not None:
        prune_base_backups(cluster, keep)
    return backup


def base_backups(cluster: EmbeddedCluster) -> list[BaseBackup]:
    """The complete base backups, oldest first (a backup without backup.json did not finish)."""
    found = []
    for info in cluster.base_backups.glob("*/backup.json"):
        meta = json.loads(info.read_text())
        found.append(BaseBackup(folder=info.parent, finished_at=datetime.fromisoformat(meta["finished_at"]),
                                start_wal=meta["start_wal"]))
    return sorted(found, key=lambda b: b.finished_at)


def prune_base_backups(cluster: EmbeddedCluster, keep: int) -> list[Path]:
    """Remove all but the newest `keep` base backups and the archived WAL older than the oldest kept one."""
    if keep < 1:
        raise BackupError("keep at least one base backup")
    backups = base_backups(cluster)
    removed = [b.folder for b in backups[:-keep]]
    for folder in removed:
        shutil.rmtree(folder)
        log.info("removed base backup %s (keeping the newest %d)", folder, keep)
    oldest = backups[-keep:][0]
    cluster.run_as_server(cluster.program("pg_archivecleanup"), str(cluster.wal_archive), oldest.start_wal)
    return removed


def archive_current_wal(cluster: EmbeddedCluster, timeout: float = ARCHIVE_WAIT_S) -> str:
    """Commit a marker transaction, switch to a new WAL segment and wait until the archive has the old one."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT txid_current()")  # a commit record: recovery to any earlier time has one to stop at
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment: str = row[0]
        deadline = time.monotonic() + timeout
        while True:
            archived = conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
            assert archived is not None
            if archived[0] is not None and archived[0] >= segment:
                return segment
            if time.monotonic() > deadline:
                raise BackupError(f"WAL segment {segment} was not archived within {timeout:.0f} s (last failed: "
                                  f"{archived[1]}); see {cluster.log_file}")
            time.sleep(0.1)


# --- point-in-time recovery (embedded cluster) -------------------------------------------------
@dataclass(frozen=True)
class PointInTimeRecovery:
    target: datetime
    base_backup: BaseBackup
    previous_pgdata: Path | None  # None: there was no cluster (a new machine)
    last_replayed_commit: datetime | None


def base_backup_before(cluster: EmbeddedCluster, target: datetime) -> BaseBackup:
    backups = base_backups(cluster)
    usable = [b for b in backups if b.finished_at <= target]
    if not usable:
        earliest = f"the earliest finished at {backups[0].finished_at.isoformat()}" if backups else "there is none"
        raise BackupError(f"no base backup finished before {target.isoformat()} ({earliest}); "
                          f"take them with `landrelease db basebackup`")
    return usable[-1]


def restore_to_time(cluster: EmbeddedCluster, target: datetime,
                    timeout: float = RECOVERY_TIMEOUT_S) -> PointInTimeRecovery:
    """Bring the cluster back to how it was at `target` (see the module's rules)."""
    if target.tzinfo is None:
        raise BackupError("give the time with its zone, e.g. 2026-05-01T14:30:00+00:00")
    if target >= datetime.now(UTC):
        raise BackupError(f"{target.isoformat()} is not in the past; nothing was changed")
    base = base_backup_before(cluster, target)
    was_running = cluster.is_running()
    stamp = _stamp()
    previous: Path | None = None
    with cluster.maintenance(f"point-in-time recovery to {target.isoformat()}"):
        if cluster.is_initialised():  # else a new machine: only the base backups and the archive were copied here
            cluster.start()  # a crashed cluster recovers first, so that its WAL reaches the archive too
            archive_current_wal(cluster)
            cluster.shut_down()
            previous = cluster.data_dir / f"pg-before-restore-{stamp}"
            cluster.pgdata.rename(previous)
            log.warning("point-in-time recovery to %s: the previous pgdata is kept in %s", target.isoformat(),
                        previous)
        log_offset: int | None = None
        try:
            _lay_base_backup(cluster, base)
            set_auto_conf(cluster.pgdata, {
                "restore_command": cluster.restore_command(),
                "recovery_target_time": target.isoformat(),
                "recovery_target_action": "promote",
                "recovery_target_timeline": "latest",
            })
            cluster.run_as_server("touch", str(cluster.pgdata / "recovery.signal"))
            log_offset = cluster.log_file.stat().st_size if cluster.log_file.exists() else 0
            cluster.launch(timeout)
            last_replayed = _wait_promoted(cluster, timeout)
        except Exception as exc:
            complaint = _server_complaint(cluster, log_offset) if log_offset is not None else None
            cluster.shut_down()
            failed = cluster.data_dir / f"pg-failed-restore-{stamp}"
            if cluster.pgdata.exists():
                cluster.pgdata.rename(failed)
            if previous is not None:
                previous.rename(cluster.pgdata)
            if was_running:
                cluster.start()
            put_back = "the previous data is back in place" if previous is not None else "there was no cluster before"
            raise BackupError(f"the point-in-time recovery failed ({complaint or exc}); {put_back}, the attempt is "
                              f"kept in {failed}") from exc
        with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
            for setting in _RECOVERY_SETTINGS:
                conn.execute(f"ALTER SYSTEM RESET {setting}")
        cluster.shut_down()  # recovery settings are read at start only: restarted, none stays in force
        if was_running:
            cluster.start()
    return PointInTimeRecovery(target=target, base_backup=base, previous_pgdata=previous,
                               last_replayed_commit=last_replayed)


def _server_complaint(cluster: EmbeddedCluster, since: int) -> str | None:
    """The last FATAL line the server logged after byte `since` of its log (why a recovery stopped)."""
    try:
        with open(cluster.log_file, "rb") as log_file:
            log_file.seek(since)
            lines = log_file.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    fatal = [line.split("FATAL:", 1)[1].strip() for line in lines if "FATAL:" in line]
    fatal = [line for line in fatal if "is starting up" not in line and "not yet accepting" not in line]
    return fatal[-1] if fatal else None


def _lay_base_backup(cluster: EmbeddedCluster, base: BaseBackup) -> None:
    cluster.server_folder(cluster.pgdata)
    os.chmod(cluster.pgdata, 0o700)
    cluster.run_as_server("cp", "-a", f"{base.pgdata}/.", f"{cluster.pgdata}/")


def _wait_promoted(cluster: EmbeddedCluster, timeout: float) -> datetime | None:
    """Wait until recovery reached its target and the server took writes; the last replayed commit's time."""
    deadline = time.monotonic() + timeout
    while True:
        if cluster.postmaster_pid() is None:
            raise EmbeddedClusterError(f"the server stopped during recovery; see {cluster.log_file}")
        try:
            with psycopg.connect(cluster.conninfo("postgres"), autocommit=True, connect_timeout=3) as conn:
                row = conn.execute("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()").fetchone()
                assert row is not None
                if not row[0]:
                    return row[1]
        except psycopg.OperationalError:
            pass  # still starting up
        if time.monotonic() > deadline:
            raise EmbeddedClusterError(f"recovery did not finish within {timeout:.0f} s; see {cluster.log_file}")
        time.sleep(0.2)
