"""The embedded default: a private PostgreSQL + PostGIS cluster in the data folder.

When `DATABASE_URL` is not set, the service runs its own cluster in `$LANDRELEASE_DATA_DIR/pg`.
It listens only on a unix socket inside the data folder (no TCP port to collide with), runs as an
unprivileged account when started by root (`initdb` and `postgres` refuse root), survives a stale
`postmaster.pid` left by a crash, and is stopped again by whoever started it.

Rules:
- A postmaster killed with -9 may leave server processes behind, attached to the old shared memory;
  they are ended (they are this cluster's only: their working folder is its pgdata) before a restart,
  so that two sets of processes never write one data folder.
- Every start turns on continuous WAL archiving into `$LANDRELEASE_DATA_DIR/wal-archive/`
  (`archive_mode` needs a restart: a cluster created before gets it the next time it starts),
  except for a throwaway cluster run without fsync (the tests'), which a crash may corrupt anyway. A
  segment is copied under a temporary name and renamed, never overwritten: a segment already there
  with the same content counts as archived, a different one makes the archiver retry (and log).
- While `$LANDRELEASE_DATA_DIR/maintenance` exists (a point-in-time recovery is running) nobody
  restarts the cluster on their own; the file says what is going on.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "landrelease"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; the cluster does not listen on TCP
_SOCKET_PATH_MAX = 100  # unix socket paths are limited to 107 bytes
ARCHIVE_TIMEOUT_S = 60  # a quiet cluster still archives its WAL at least once a minute


class EmbeddedClusterError(RuntimeError):
    """The embedded cluster cannot be set up; the message says what to install or fix."""


def find_bindir() -> Path:
    """Server binaries of the installed PostgreSQL (newest major version)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise EmbeddedClusterError(
        "PostgreSQL server binaries not found (no initdb). Install them with: "
        "apt-get install postgresql postgresql-15-postgis-3 (or set DATABASE_URL to an existing PostGIS)"
    )


def postgres_major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False)
    # "postgres (PostgreSQL) 15.18 (Debian ...)"
    version = out.stdout.split(")")[1].strip().split()[0] if ")" in out.stdout else "15"
    return version.split(".")[0]


def check_postgis_installed(bindir: Path) -> None:
    major = postgres_major(bindir)
    sharedir = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False)
    share = Path(sharedir.stdout.strip()) if sharedir.returncode == 0 and sharedir.stdout.strip() else Path(
        f"/usr/share/postgresql/{major}"
    )
    if not (share / "extension" / "postgis.control").exists():
        raise EmbeddedClusterError(
            f"PostGIS is not installed for PostgreSQL {major}. Install it with: "
            f"apt-get install postgresql-{major}-postgis-3"
        )


_CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def memory_bytes() -> int | None:
    """The memory this process may use: the machine's, or a container's limit (cgroup v2 or v1) if lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for limit_file in _CGROUP_MEMORY_LIMITS:
        try:
            value = limit_file.read_text().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value)) if total else int(value)
    return total


def conf_quote(value: str) -> str:
    """A value as a quoted string of postgresql.conf."""
    return "'" + value.replace("'", "''") + "'"


def set_auto_conf(pgdata: Path, settings: dict[str, str | None]) -> None:
    """Set (or, with None, remove) settings in a stopped cluster's postgresql.auto.conf, as ALTER SYSTEM would."""
    conf = pgdata / "postgresql.auto.conf"
    kept = [
        line for line in conf.read_text().splitlines()
        if line.split("=", 1)[0].strip() not in settings
    ]
    kept += [f"{name} = {conf_quote(value)}" for name, value in settings.items() if value is not None]
    with open(conf, "w") as out:  # rewritten in place: the file keeps its owner, the server account
        out.write("\n".join(kept) + "\n")


def shared_buffers_mb() -> int:
    """A quarter of the memory (of the machine, or of its container), between PostgreSQL's default 128 MB and 4 GB."""
    total = memory_bytes()
    if not total:
        return 128
    return int(min(max(total // 4 // 2**20, 128), 4096))


class EmbeddedCluster:
    """A private cluster under `data_dir/pg`, reachable through a unix socket."""

    def __init__(self, data_dir: Path, *, fsync: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pg"
        self.fsync = fsync
        self.bindir = find_bindir()
        self.started_here = False
        self._run_as = self._unprivileged_account()

    # --- accounts and folders -------------------------------------------------------------
    @staticmethod
    def _unprivileged_account() -> pwd.struct_passwd | None:
        """The account the server runs as when we are root; None when we are not root."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise EmbeddedClusterError("running as root needs an unprivileged 'postgres' account "
                                   "(apt-get install postgresql)")

    def _cmd(self, *args: str) -> list[str]:
        if self._run_as is None:
            return list(args)
        return ["setpriv", f"--reuid={self._run_as.pw_uid}", f"--regid={self._run_as.pw_gid}", "--init-groups", *args]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False,
                              env={**os.environ, "LC_ALL": "C.UTF-8"})
        if check and proc.returncode != 0:
            raise EmbeddedClusterError(f"{Path(args[0]).name} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def run_as_server(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command as the server account (PostgreSQL's programs: `self.program(name)`)."""
        return self._run(*args, check=check)

    def program(self, name: str) -> str:
        """A PostgreSQL program of this cluster's version (pg_dump, pg_basebackup, ...)."""
        return str(self.bindir / name)

    def server_folder(self, path: Path) -> Path:
        """Create a folder the server account owns (the WAL archive, base backups)."""
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._give_to_server_account(path)
        return path

    def _give_to_server_account(self, path: Path) -> None:
        if self._run_as is None:
            return
        os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        # The server account must be able to walk down to the data folder.
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                log.info("granting traverse permission on %s so the server account can reach its data", parent)
                os.chmod(parent, mode | 0o001)

    @property
    def socket_dir(self) -> Path:
        preferred = self.data_dir / "run"
        if len(str(preferred)) + len(f"/.s.PGSQL.{PORT}.lock") <= _SOCKET_PATH_MAX:
            return preferred
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"landrelease-{digest}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{DATABASE_NAME}?host={self.socket_dir}&port={PORT}"

    def conninfo(self, dbname: str = DATABASE_NAME) -> str:
        return f"host={self.socket_dir} port={PORT} user={SUPERUSER} dbname={dbname}"

    @property
    def wal_archive(self) -> Path:
        return self.data_dir / "wal-archive"

    @property
    def base_backups(self) -> Path:
        return self.data_dir / "base-backups"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    # --- maintenance ------------------------------------------------------------------------
    @property
    def _maintenance_file(self) -> Path:
        return self.data_dir / "maintenance"

    def maintenance_reason(self) -> str | None:
        """What the cluster is down for on purpose (None: it is not), as its maintainer wrote it."""
        try:
            return self._maintenance_file.read_text().strip() or "maintenance"
        except OSError:
            return None

    @contextmanager
    def maintenance(self, reason: str) -> Iterator[None]:
        """Keep watchdogs from restarting the cluster while it is taken down on purpose."""
        if self.maintenance_reason() is not None:
            raise EmbeddedClusterError(
                f"the cluster is already under maintenance ({self.maintenance_reason()}); "
                f"if nothing is running any more, check the cluster and remove {self._maintenance_file}"
            )
        self._maintenance_file.write_text(f"{reason} (pid {os.getpid()})\n")
        try:
            yield
        finally:
            self._maintenance_file.unlink(missing_ok=True)

    # --- life cycle ---------------------------------------------------------------------
    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        check_postgis_installed(self.bindir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._give_to_server_account(self.pgdata)
        log.info("initialising a private PostGIS cluster in %s", self.pgdata)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )
        with open(self.pgdata / "postgresql.auto.conf", "a") as conf:
            conf.write("listen_addresses = ''\n")
            conf.write("unix_socket_permissions = 0700\n")
            conf.write("max_connections = 100\n")
            # PostgreSQL's default of 128 MB keeps little of a national ledger in memory; a quarter of the
            # machine's memory (the usual advice), at most 4 GB, holds the hazards a layer is paged from
            conf.write(f"shared_buffers = '{shared_buffers_mb()}MB'\n")
            conf.write("jit = off\n")  # as the service's connections have it (app.database.NO_JIT)

    def postmaster_pid(self) -> int | None:
        """The pid of this cluster's live postmaster, from postmaster.pid (None: it is not running)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return None if self._pid_file_is_stale() else pid

    def _pid_file_is_stale(self) -> bool:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            return True
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True  # no such process
        # After a reboot the pid may belong to another program, or to another PostgreSQL cluster:
        # only this cluster's own postmaster (started with `-D <this pgdata>`) counts as alive.
        return str(self.pgdata).encode() not in cmdline.split(b"\0")

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists() or self._pid_file_is_stale():
            return False
        try:
            with psycopg.connect(self.conninfo("postgres"), connect_timeout=3):
                return True
        except psycopg.OperationalError:
            return False

    def _leftover_server_processes(self) -> list[int]:
        """Server processes working in this pgdata (a killed postmaster's children)."""
        postgres = (self.bindir / "postgres").resolve()
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if Path(os.readlink(proc / "cwd")) == self.pgdata and Path(os.readlink(proc / "exe")) == postgres:
                    pids.append(int(proc.name))
            except OSError:
                continue  # gone meanwhile, or not ours to look at
        return pids

    def _end_leftover_server_processes(self, timeout: float = 15.0) -> None:
        """End what a killed postmaster left running: they would share the data folder with a new server."""
        leftovers = self._leftover_server_processes()
        if not leftovers:
            return
        log.warning("ending %d server processes left by a postmaster that died: %s", len(leftovers), leftovers)
        for pid in leftovers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self._leftover_server_processes():
            if time.monotonic() > deadline:
                raise EmbeddedClusterError(f"server processes of the dead postmaster do not exit: {leftovers}")
            time.sleep(0.05)

    def _clear_stale_locks(self) -> None:
        if self._pid_file_is_stale():
            self._end_leftover_server_processes()
            log.warning("removing stale postmaster.pid left by a previous crash")
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def start(self, timeout: float = 60.0) -> None:
        """Start the cluster (initialising it the first time); reuse it when it already runs."""
        if not self.is_initialised():
            self.init()
        else:
            check_postgis_installed(self.bindir)
        if self.is_running():
            log.info("reusing the running private cluster in %s", self.pgdata)
        else:
            self.launch(timeout)
        self._wait_ready(timeout)
        self._create_database()

    def launch(self, timeout: float = 60.0) -> None:
        """Start the server of an initialised, stopped cluster (after a crash too), with WAL archiving on."""
        self.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._give_to_server_account(self.socket_dir)
        self._clear_stale_locks()
        self._configure_archiving()
        options = f"-c unix_socket_directories='{self.socket_dir}' -p {PORT}"
        if not self.fsync:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self.log_file.touch()
        self._give_to_server_account(self.log_file)
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
        )
        self.started_here = True

    def _configure_archiving(self) -> None:
        if not self.fsync:
            set_auto_conf(self.pgdata, {"archive_mode": "off"})
            return
        archive = shlex.quote(str(self.server_folder(self.wal_archive)))
        segment, partial = f"{archive}/%f", f"{archive}/%f.tmp"
        set_auto_conf(self.pgdata, {
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_timeout": f"{ARCHIVE_TIMEOUT_S}s",
            "archive_command": (f"test ! -f {segment} && cp %p {partial} && sync {partial} && mv {partial} {segment}"
                                f" || cmp -s %p {segment}"),
        })

    def restore_command(self) -> str:
        """The restore_command that reads this cluster's WAL archive (for a point-in-time recovery)."""
        return f"cp {shlex.quote(str(self.wal_archive))}/%f %p"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo("postgres"), connect_timeout=3):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise EmbeddedClusterError(f"the private cluster did not accept connections: {exc}") from exc
                time.sleep(0.2)

    def _create_database(self) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        with psycopg.connect(self.conninfo(DATABASE_NAME), autocommit=True) as conn:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.Error as exc:
                major = postgres_major(self.bindir)
                raise EmbeddedClusterError(
                    f"cannot create the PostGIS extension ({exc}). Install it with: "
                    f"apt-get install postgresql-{major}-postgis-3"
                ) from exc

    def stop(self) -> None:
        """Stop the cluster if this process started it."""
        if not self.started_here:
            return
        self.shut_down()

    def shut_down(self) -> None:
        """Stop the cluster whoever started it (for maintenance)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)
        self.started_here = False
