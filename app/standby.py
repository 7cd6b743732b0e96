"""A hot standby of the primary: a streaming replica in a data folder of its own.

`landrelease db standby --data-dir DIR` copies the primary with `pg_basebackup -R -X stream` into
`DIR/pg` (the same layout as the embedded primary's data folder: its socket in `DIR/run`, its log in
`DIR/postgres.log`) and starts it as a hot standby: read-only, replaying the primary's WAL as it
streams in. The primary is the embedded cluster of `LANDRELEASE_DATA_DIR` (over its unix socket;
initdb's pg_hba already trusts local replication) or the server of `DATABASE_URL` (whose role needs
the REPLICATION attribute and a `replication` line in the server's pg_hba.conf).

Rules:
- The standby streams through a physical replication slot on the primary (`pg_basebackup -C -S`), so
  the primary keeps the WAL a stopped or slow standby has not received yet: a standby never falls
  behind beyond WAL retention. The price: a standby that is gone for good must have its slot dropped
  (`SELECT pg_drop_replication_slot('<slot>')` on the primary), or the primary keeps WAL forever.
- `hot_standby_feedback` is on: the primary does not vacuum away rows a long read on the standby still
  sees, so heavy reads are not cancelled by replication conflicts.
- Running the command again on the same folder starts the existing standby (no new copy).
- The standby listens on a unix socket in its own folder only (no TCP port to collide with).
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import psycopg

from app.embedded import DATABASE_NAME, EmbeddedCluster, EmbeddedClusterError


def slot_name(data_dir: Path) -> str:
    """A replication slot name of this standby's folder: one slot per standby, stable across restarts."""
    folder = Path(data_dir).resolve()
    stem = re.sub(r"[^a-z0-9_]", "_", folder.name.lower())[:30]
    return f"landrelease_standby_{stem}_{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL of the primary (`postgresql+psycopg://...`) as libpq (pg_basebackup) reads it."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


class EmbeddedStandby(EmbeddedCluster):
    """A hot standby of `primary_url` under `data_dir/pg`, made by `pg_basebackup` the first time it starts."""

    def __init__(self, data_dir: Path, primary_url: str, *, slot: str | None = None, fsync: bool = True) -> None:
        super().__init__(data_dir, fsync=fsync)
        self.primary_url = primary_url
        self.slot = slot or slot_name(self.data_dir)

    def init(self) -> None:
        """Copy the primary (base backup, WAL streamed alongside) and configure the copy as its standby."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._give_to_server_account(self.pgdata)
        args = [str(self.bindir / "pg_basebackup"), "-d", libpq_url(self.primary_url), "-D", str(self.pgdata),
                "-R", "-X", "stream", "-C", "-S", self.slot, "--checkpoint=fast"]
        if not self.fsync:
            args.append("--no-sync")
        try:
            self._run(*args)
        except EmbeddedClusterError as exc:
            shutil.rmtree(self.pgdata, ignore_errors=True)  # a half copy is no standby: the next try starts over
            if "already exists" in str(exc):
                raise EmbeddedClusterError(
                    f"{exc}. The replication slot {self.slot} belongs to an earlier standby of this folder: drop it "
                    f"on the primary (SELECT pg_drop_replication_slot('{self.slot}')) or pass --slot NAME"
                ) from exc
            raise
        with open(self.pgdata / "postgresql.auto.conf", "a") as conf:
            # After the primary's own settings (copied with the data), so these win.
            conf.write("hot_standby = on\n")
            conf.write("hot_standby_feedback = on\n")

    def _create_database(self) -> None:
        """Nothing to create: the standby is read-only and has the primary's databases."""

    @property
    def read_url(self) -> str:
        """The URL to give the service as LANDRELEASE_READ_DATABASE_URL (the standby's unix socket)."""
        return self.url

    def stop_command(self) -> str:
        """The shell command that stops this standby (as the server's account when we are root)."""
        return " ".join(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "stop"))

    def is_in_recovery(self) -> bool:
        with psycopg.connect(self.conninfo(DATABASE_NAME), connect_timeout=3) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

