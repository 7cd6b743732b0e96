"""The `landrelease` command."""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from app import database, migrate
from app.embedded import EmbeddedCluster, EmbeddedClusterError
from app.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    if args.public_read:
        settings.public_read = True
    host = args.host or settings.host
    port = args.port or settings.port
    with database.open_database(settings, watch=True) as url:
        migrate.upgrade(url)
        database.configure(url, settings)
        if args.demo:
            from app.demo import load_demo_if_empty

            load_demo_if_empty()
        from app.main import app

        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turn them into an orderly
        # exit so that the embedded cluster is stopped on the way out.
        signal.signal(signal.SIGTERM, _exit_quietly)
        signal.signal(signal.SIGINT, _exit_quietly)
        # No `Server: uvicorn` header: what runs the service is nobody's business.
        with contextlib.suppress(SystemExit):
            uvicorn.run(app, host=host, port=port, log_level=settings.log_level, server_header=False)
    return 0


def _exit_quietly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _db(args: argparse.Namespace) -> int:
    with database.open_database() as url:
        if args.action == "upgrade":
            migrate.upgrade(url, args.revision or "head")
        elif args.action == "downgrade":
            migrate.downgrade(url, args.revision)
        else:
            print(migrate.current(url) or "(no revision: the database is empty)")
    return 0


def _db_backup(args: argparse.Namespace) -> int:
    """A dump of the database (the embedded cluster's or DATABASE_URL's), pg_dump custom format."""
    from pathlib import Path

    import psycopg

    from app import backups

    with database.open_database() as url:
        try:
            size = backups.dump(url, Path(args.file))
        except (backups.BackupError, psycopg.Error) as exc:
            print(f"landrelease db backup: {exc}", file=sys.stderr)
            return 1
    print(f"Dumped the database into {args.file} ({size:,} bytes).")
    return 0


def _embedded_cluster(command: str) -> EmbeddedCluster | None:
    settings = get_settings()
    if settings.database_url:
        print(f"landrelease {command}: base backups and point-in-time recovery are for the embedded cluster; "
              "with DATABASE_URL use your server's own (pg_basebackup, archive_command). "
              "`landrelease db backup` and `db restore FILE` work with both.", file=sys.stderr)
        return None
    return EmbeddedCluster(settings.data_dir)


def _db_basebackup(args: argparse.Namespace) -> int:
    """A base backup of the embedded cluster, for point-in-time recovery with the WAL archive."""
    import psycopg

    from app import backups

    cluster = _embedded_cluster("db basebackup")
    if cluster is None:
        return 2
    cluster.start()
    try:
        backup = backups.take_base_backup(cluster, keep=args.keep)
    except (backups.BackupError, psycopg.Error) as exc:
        print(f"landrelease db basebackup: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    print(f"Base backup in {backup.folder} (finished {backup.finished_at.isoformat()}); "
          f"point-in-time recovery can reach any later time the WAL archive covers.")
    return 0


def _db_restore(args: argparse.Namespace) -> int:
    """Restore a dump (all or nothing), or the embedded cluster as it was at a time (--to)."""
    from datetime import UTC, datetime
    from pathlib import Path

    import psycopg

    from app import backups

    if (args.file is None) == (args.to is None):
        print("landrelease db restore: give either a FILE made by `landrelease db backup`, or --to TIME",
              file=sys.stderr)
        return 2
    if args.file is not None:
        with database.open_database() as url:
            try:
                entries = backups.restore_dump(url, Path(args.file))
            except (backups.BackupError, psycopg.Error) as exc:
                print(f"landrelease db restore: {exc}", file=sys.stderr)
                return 1
            migrate.upgrade(url)
        print(f"Restored {args.file} ({entries} entries); the database is at the schema's head revision.")
        return 0
    try:
        target = datetime.fromisoformat(args.to)
    except ValueError:
        print(f"landrelease db restore: --to {args.to!r} is not a time: use e.g. 2026-05-01T14:30:00Z",
              file=sys.stderr)
        return 2
    target = target if target.tzinfo else target.replace(tzinfo=UTC)
    cluster = _embedded_cluster("db restore --to")
    if cluster is None:
        return 2
    try:
        recovery = backups.restore_to_time(cluster, target)
    except (backups.BackupError, psycopg.Error) as exc:
        print(f"landrelease db restore: {exc}", file=sys.stderr)
        return 1
    replayed = recovery.last_replayed_commit.isoformat() if recovery.last_replayed_commit else "none"
    print(f"Restored the cluster to {target.isoformat()} from the base backup {recovery.base_backup.folder} "
          f"(last transaction replayed: committed {replayed}).")
    if recovery.previous_pgdata is not None:
        print(f"The data as it was before the restore is kept in {recovery.previous_pgdata}.")
    return 0


def _standby(args: argparse.Namespace) -> int:
    """Make (the first time) and start a hot standby of the primary in --data-dir; print its read URL."""
    from pathlib import Path

    from app.standby import EmbeddedStandby

    folder = Path(args.data_dir).resolve()
    if folder == get_settings().data_dir.resolve():
        print("landrelease db standby: --data-dir is the primary's own data folder; give another one", file=sys.stderr)
        return 2
    with database.open_database() as url:
        standby = EmbeddedStandby(folder, url, slot=args.slot)
        if not standby.is_initialised():
            print(f"Copying the primary into {standby.pgdata} (replication slot {standby.slot})...", file=sys.stderr)
        standby.start()
    print(f"The hot standby runs in {standby.pgdata}; it keeps running after this command (stop it with: "
          f"{standby.stop_command()}). Send the heavy reads to it with:", file=sys.stderr)
    print(f"LANDRELEASE_READ_DATABASE_URL={standby.read_url}")
    return 0


def _report(args: argparse.Namespace) -> int:
    """The summary of one State at a date (remaining, land release, Article 5), as a readable table."""
    import json
    from datetime import date

    from app.committee import summaries
    from app.problems import Problem

    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else date.today()
    except ValueError:
        print(f"landrelease report: --as-of {args.as_of!r} is not a date: use YYYY-MM-DD", file=sys.stderr)
        return 2
    with database.open_database() as url:
        migrate.upgrade(url)
        database.configure(url)
        try:
            with database.session() as session:
                summary = summaries.state_summary(session, args.state.upper(), as_of)
        except Problem as exc:
            print(f"landrelease report: {exc.detail}", file=sys.stderr)
            return 1
    print(json.dumps(summary.model_dump(mode="json"), indent=2) if args.json else summaries.summary_table(summary))
    return 0


def _read_state(command: str, state: str, read: Callable[[Any, str], T]) -> T | None:
    """`read(session, ISO3)` on the service's database, after checking the State; None (said why) when refused."""
    from app.ledger import require_state
    from app.problems import Problem

    with database.open_database() as url:
        migrate.upgrade(url)
        database.configure(url)
        try:
            with database.session() as session:
                require_state(session, state.upper())
                return read(session, state.upper())
        except Problem as exc:
            print(f"landrelease {command}: {exc.detail}", file=sys.stderr)
            return None


@contextlib.contextmanager
def _import_session() -> Iterator[Session]:
    """A session on the service's database, migrated to head, for an import run from the command line."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    with database.open_database() as url:
        migrate.upgrade(url)
        engine = create_engine(database.sqlalchemy_url(url), connect_args=database.connect_args())
        try:
            with Session(engine) as session:
                yield session
        finally:
            engine.dispose()


def _print_refusal(command: str, exc: Any) -> None:
    """An import's refusal on stderr: its detail, then each rejected row with what is wrong in it."""
    print(f"landrelease {command}: {exc.detail}", file=sys.stderr)
    for row in exc.extra.get("rejected", []):
        errors = ("; ".join(f"{e['column']}: {e['message']}" for e in row["errors"]) if "errors" in row
                  else row["message"])
        print(f"  row {row['row']} ({row['external_id'] or '-'}): {errors}", file=sys.stderr)


def _overlaps(args: argparse.Namespace) -> int:
    """The pairs of a State's hazards that count the same land (app/ledger/overlaps.py), to clean."""
    import json

    from app.ledger import overlaps

    pairs = _read_state("overlaps", args.state, overlaps.stored_overlaps)
    if pairs is None:
        return 1
    iso3 = args.state.upper()
    if args.json:
        print(json.dumps({"state": iso3, "overlaps": pairs}, indent=2))
    else:
        for p in pairs:
            print(f"{p['external_id']}\t{p['other_external_id']}\t{p['overlap_m2']:.1f} m2\tfrom {p['from']}")
        print(f"{len(pairs)} overlap(s), {sum(p['overlap_m2'] for p in pairs):,.1f} m2 counted twice in {iso3}")
    return 0


def _quality(args: argparse.Namespace) -> int:
    """The data-quality report of a State's stored data (app/places/quality.py)."""
    from app.places.quality import quality_report

    report = _read_state("quality", args.state, quality_report)
    if report is None:
        return 1
    iso3 = args.state.upper()
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        for row in report.rows:
            print(f"{row.kind}\t{row.external_id}\t{row.message}")
        print(f"{len(report.rows)} row(s) in {iso3}: "
              + ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n))
    return 0


def _keys(args: argparse.Namespace) -> int:
    """API keys: the same private cluster the running service uses (started briefly when it is not)."""
    import getpass
    import json

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from app import access
    from app.audit import Actor

    with database.open_database() as url:
        migrate.upgrade(url)
        engine = create_engine(database.sqlalchemy_url(url), connect_args=database.connect_args())
        actor = Actor(name=f"cli {getpass.getuser()}")
        try:
            with Session(engine) as session:
                if args.action == "create":
                    try:
                        record, secret = access.create_key(session, name=args.name, role=args.role,
                                                           state_iso3=args.state, actor=actor,
                                                           organisation_id=args.organisation)
                    except access.InvalidKeyRequest as exc:
                        print(f"landrelease keys create: {exc}", file=sys.stderr)
                        return 2
                    print(f"Created {record['role']} key {record['id']} ({record['name']}"
                          + (f", {record['state']}" if record["state"] else "") + ").", file=sys.stderr)
                    print("The key is shown only this once; keep it safe:", file=sys.stderr)
                    print(secret)
                elif args.action == "list":
                    keys = access.list_keys(session)
                    if args.json:
                        print(json.dumps(keys, indent=2))
                    else:
                        print(f"{'id':36}  {'role':9}  {'state':5}  {'prefix':11}  {'revoked':10}  name")
                        for k in keys:
                            print(f"{k['id']:36}  {k['role']:9}  {k['state'] or '-':5}  {k['prefix']:11}  "
                                  f"{(k['revoked_at'] or '-')[:10]:10}  {k['name']}")
                else:
                    revoked = access.revoke_key(session, args.id, actor=actor)
                    if revoked is None:
                        print(f"landrelease keys revoke: no key with id {args.id}", file=sys.stderr)
                        return 1
                    print(f"Revoked key {revoked['id']} ({revoked['name']}).")
        finally:
            engine.dispose()
    return 0


def _import(args: argparse.Namespace) -> int:
    """Import a file of hazards into a State, all or nothing (app/files/)."""
    import getpass
    import json
    from pathlib import Path

    from app.audit import Actor
    from app.files import columns, imports
    from app.problems import Problem

    path = Path(args.file)
    if not path.is_file():
        print(f"landrelease import: no such file: {path}", file=sys.stderr)
        return 2
    try:
        mapping = columns.read_mapping(",".join(args.map or []))
    except Problem as exc:
        print(f"landrelease import: {exc.detail}", file=sys.stderr)
        return 2
    options = imports.ImportOptions(mapping=mapping, layer=args.layer, crs=args.crs, repair=args.repair,
                                        source=path.name, border="accept" if args.accept_border else "refuse")
    with _import_session() as session:
        try:
            result = imports.import_hazards(session, args.state.upper(), path, options,
                                            Actor(name=f"cli {getpass.getuser()}"), clip=args.clip_overlaps)
        except Problem as exc:
            _print_refusal("import", exc)
            return 1
    if len(result["hazards"]) > 20:
        result["hazards"] = result["hazards"][:20] + [{"...": f"{len(result['hazards']) - 20} more"}]
    print(json.dumps(result, indent=2, default=str))
    return 0


class _ProgressBar:
    """A one-line progress bar on stderr: the phase, a bar and rows done of the total (redrawn at most 5 times a
    second, and at each new phase)."""

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._phase, self._drawn, self._started = "", 0.0, self._clock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self._clock()
        if phase == self._phase and now - self._drawn < 0.2 and done < total:
            return
        if phase != self._phase and self._phase:
            sys.stderr.write("\n")
        self._phase, self._drawn = phase, now
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{phase:<20} [{bar:<30}] {done:>9,}/{total:<9,} {now - self._started:7.1f} s")
        sys.stderr.flush()

    def close(self) -> None:
        if self._phase:
            sys.stderr.write("\n")


def _import_history(args: argparse.Namespace) -> int:
    """Import hazards with their land-release history (or events onto stored hazards), all or nothing."""
    import getpass
    import json
    from pathlib import Path

    from app.audit import Actor
    from app.files import columns, history
    from app.problems import Problem

    events = Path(args.events)
    hazards = Path(args.hazards) if args.hazards else None
    for path in (events, hazards):
        if path is not None and not path.is_file():
            print(f"landrelease import-history: no such file: {path}", file=sys.stderr)
            return 2
    try:
        options = history.HistoryOptions(
            events=events, hazards=hazards, events_only=args.events_only,
            hazards_layer=args.hazards_layer,
            events_layer=args.events_layer, mapping=columns.read_mapping(",".join(args.map or [])),
            event_mapping=columns.read_mapping(",".join(args.map_event or []), columns.EVENT_FIELDS), crs=args.crs,
            repair=args.repair, border="accept" if args.accept_border else "refuse")
    except Problem as exc:
        print(f"landrelease import-history: {exc.detail}", file=sys.stderr)
        return 2
    bar = _ProgressBar()
    with _import_session() as session:
        try:
            result = history.import_history(session, args.state.upper(), options,
                                            Actor(name=f"cli {getpass.getuser()}"), progress=bar)
        except Problem as exc:
            bar.close()
            _print_refusal("import-history", exc)
            return 1
    bar.close()
    print(json.dumps(result, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landrelease", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database to head, then serve the API")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default 8000)")
    serve.add_argument("--demo", action="store_true", help="load the demo data set if the database is empty")
    serve.add_argument("--public-read", action="store_true",
                       help="open the reads of the OGC layers, tiles and summaries to anyone "
                            "(same as LANDRELEASE_PUBLIC_READ=true); writes still need a key")
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="the database: migrations (Alembic), backups and restores")
    db_sub = db.add_subparsers(dest="action", required=True)
    upgrade = db_sub.add_parser("upgrade", help="migrate to a revision (default head)")
    upgrade.add_argument("revision", nargs="?", help="target revision")
    downgrade = db_sub.add_parser("downgrade", help="migrate down to a revision")
    downgrade.add_argument("revision", help="target revision, e.g. `base` or `-1`")
    current = db_sub.add_parser("current", help="print the current revision")
    for migration in (upgrade, downgrade, current):
        migration.set_defaults(func=_db)
    backup = db_sub.add_parser("backup", help="dump the database into FILE (pg_dump custom format)")
    backup.add_argument("file", help="the dump to write, e.g. landrelease-2026-05-01.dump")
    backup.set_defaults(func=_db_backup)
    basebackup = db_sub.add_parser("basebackup", help="a base backup of the embedded cluster, for --to restores")
    basebackup.add_argument("--keep", type=int, default=None, metavar="N",
                            help="then remove all but the newest N base backups and the WAL they no longer need")
    basebackup.set_defaults(func=_db_basebackup)
    restore = db_sub.add_parser("restore", help="restore a dump (all or nothing), or the embedded cluster "
                                                "as it was at a time")
    restore.add_argument("file", nargs="?", help="a dump made by `landrelease db backup`")
    restore.add_argument("--to", default=None, metavar="TIME",
                         help="point-in-time recovery of the embedded cluster, e.g. 2026-05-01T14:30:00Z (UTC unless "
                              "the time says its zone)")
    restore.set_defaults(func=_db_restore)
    standby = db_sub.add_parser("standby", help="make (the first time) and start a hot standby of the primary "
                                                "for the heavy reads")
    standby.add_argument("--data-dir", required=True, help="the standby's own folder (copied from the primary "
                                                           "the first time, started again later)")
    standby.add_argument("--slot", default=None, help="the replication slot on the primary (default: named "
                                                      "after the folder)")
    standby.set_defaults(func=_standby)

    report = sub.add_parser("report", help="print a State's summary (remaining, land release, Article 5) at a date")
    report.add_argument("state", help="ISO 3166 alpha-3 code of the State, e.g. KHM")
    report.add_argument("--as-of", default=None, help="the date (YYYY-MM-DD); default today")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.set_defaults(func=_report)

    overlaps = sub.add_parser("overlaps", help="list the pairs of a State's hazards that count the same land")
    overlaps.add_argument("state", help="ISO 3166 alpha-3 code of the State, e.g. KHM")
    overlaps.add_argument("--json", action="store_true", help="print JSON")
    overlaps.set_defaults(func=_overlaps)

    quality = sub.add_parser("quality", help="print the data-quality report of a State's stored data")
    quality.add_argument("state", help="ISO 3166 alpha-3 code of the State, e.g. KHM")
    quality.add_argument("--json", action="store_true", help="print JSON")
    quality.set_defaults(func=_quality)

    keys = sub.add_parser("keys", help="API keys: create (printed once), list, revoke")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--role", required=True, choices=["editor", "viewer", "committee", "admin", "operator"])
    create.add_argument("--state", default=None, help="ISO3 of the State (editor, viewer and operator keys)")
    create.add_argument("--name", required=True, help="who holds the key, e.g. 'CMAA field office'")
    create.add_argument("--organisation", type=uuid.UUID, default=None,
                        help="the organisation of an operator key (its id in the State's register)")
    listing = keys_sub.add_parser("list", help="list the keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id", help="the key's id (from `landrelease keys list`)")
    keys.set_defaults(func=_keys)

    imp = sub.add_parser("import", help="import hazards from a GeoPackage, zipped Shapefile, GeoJSON, KML or CSV file")
    imp.add_argument("file", help="the file (a Shapefile zipped with its .shx, .dbf and .prj)")
    imp.add_argument("--state", required=True, help="ISO 3166 alpha-3 code of the State, e.g. KHM")
    imp.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                     help="which column holds a field (external_id, classification, recorded_on, contamination, "
                          "name, region); repeat for several")
    imp.add_argument("--layer", default=None, help="the layer of a multi-layer file")
    imp.add_argument("--crs", default=None, help="CRS of a file that does not say its own, e.g. EPSG:32648")
    imp.add_argument("--repair", action="store_true", help="repair invalid geometries and report it")
    imp.add_argument("--accept-border", action="store_true",
                     help="record hazards beyond the State's boundary flagged (border minefields; default: refuse "
                          "the file, naming where each lies)")
    imp.add_argument("--clip-overlaps", action="store_true",
                     help="record hazards that overlap land another hazard of the State counts clipped to the "
                          "land not already counted (default: refuse the file)")
    imp.set_defaults(func=_import)

    hist = sub.add_parser("import-history", help="import hazards with their whole land-release history from files "
                                                 "(a GeoPackage of both layers, two CSVs, or events alone)")
    hist.add_argument("events", help="the events file, or a GeoPackage with the hazards and events layers")
    hist.add_argument("--state", required=True, help="ISO 3166 alpha-3 code of the State, e.g. KHM")
    hist.add_argument("--hazards", default=None, help="the hazards file, when they are in a file of their own")
    hist.add_argument("--events-only", action="store_true",
                      help="the GeoPackage holds events only, onto hazards already stored")
    hist.add_argument("--hazards-layer", default=None, help="the hazards' layer (default hazardous_areas)")
    hist.add_argument("--events-layer", default=None, help="the events' layer (default land_release_events)")
    hist.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="a hazards' column; repeat for several")
    hist.add_argument("--map-event", action="append", metavar="FIELD=COLUMN",
                      help="an events' column (e.g. hazard_external_id=HAZ_REF); repeat for several")
    hist.add_argument("--crs", default=None, help="CRS of files that do not say their own, e.g. EPSG:32648")
    hist.add_argument("--repair", action="store_true", help="repair invalid geometries and report it")
    hist.add_argument("--accept-border", action="store_true",
                      help="record hazards beyond the State's boundary flagged (default: refuse the files)")
    hist.set_defaults(func=_import_history)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=get_settings().log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except EmbeddedClusterError as exc:
        print(f"landrelease: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
