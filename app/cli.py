"""The `landrelease` command."""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from app import database, migrate
from app.embedded import EmbeddedClusterError
from app.settings import get_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    if args.public_read:
        settings.public_read = True
    host = args.host or settings.host
    port = args.port or settings.port
    with database.open_database(settings) as url:
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
        try:
            # No `Server: uvicorn` header: what runs the service is nobody's business.
            uvicorn.run(app, host=host, port=port, log_level=settings.log_level, server_header=False)
        except SystemExit:
            pass
    return 0


def _exit_quietly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _db(args: argparse.Namespace) -> int:
    with database.open_database() as url:
        if args.action == "upgrade":
            migrate.upgrade(url, args.revision or "head")
        elif args.action == "downgrade":
            if not args.revision:
                print("landrelease db downgrade needs a revision, e.g. `base` or `-1`", file=sys.stderr)
                return 2
            migrate.downgrade(url, args.revision)
        else:
            print(migrate.current(url) or "(no revision: the database is empty)")
    return 0


def _report(args: argparse.Namespace) -> int:
    """The summary of one State at a date (remaining, land release, Article 5), as a readable table."""
    import json
    from datetime import date

    from app import summaries
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
    print(json.dumps(summary, indent=2) if args.json else summaries.summary_table(summary))
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
        engine = create_engine(database.sqlalchemy_url(url))
        actor = Actor(name=f"cli {getpass.getuser()}")
        try:
            with Session(engine) as session:
                if args.action == "create":
                    try:
                        record, secret = access.create_key(session, name=args.name, role=args.role,
                                                           state_iso3=args.state, actor=actor)
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
                    record = access.revoke_key(session, args.id, actor=actor)
                    if record is None:
                        print(f"landrelease keys revoke: no key with id {args.id}", file=sys.stderr)
                        return 1
                    print(f"Revoked key {record['id']} ({record['name']}).")
        finally:
            engine.dispose()
    return 0


def _import(args: argparse.Namespace) -> int:
    """Import a file of hazards into a State, all or nothing (app/field_files.py)."""
    import getpass
    import json
    from pathlib import Path

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from app import field_files
    from app.audit import Actor
    from app.problems import Problem

    path = Path(args.file)
    if not path.is_file():
        print(f"landrelease import: no such file: {path}", file=sys.stderr)
        return 2
    try:
        mapping = field_files.read_mapping(",".join(args.map or []))
    except Problem as exc:
        print(f"landrelease import: {exc.detail}", file=sys.stderr)
        return 2
    options = field_files.ImportOptions(mapping=mapping, layer=args.layer, crs=args.crs, repair=args.repair,
                                        source=path.name)
    with database.open_database() as url:
        migrate.upgrade(url)
        engine = create_engine(database.sqlalchemy_url(url))
        try:
            with Session(engine) as session:
                try:
                    result = field_files.import_hazards(session, args.state.upper(), path, options,
                                                        Actor(name=f"cli {getpass.getuser()}"))
                except Problem as exc:
                    print(f"landrelease import: {exc.detail}", file=sys.stderr)
                    for row in exc.extra.get("rejected", []):
                        errors = "; ".join(f"{e['column']}: {e['message']}" for e in row["errors"])
                        print(f"  row {row['row']} ({row['external_id'] or '-'}): {errors}", file=sys.stderr)
                    return 1
        finally:
            engine.dispose()
    if len(result["hazards"]) > 20:
        result["hazards"] = result["hazards"][:20] + [{"...": f"{len(result['hazards']) - 20} more"}]
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

    db = sub.add_parser("db", help="database migrations (Alembic)")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?", help="target revision (upgrade defaults to head)")
    db.set_defaults(func=_db)

    report = sub.add_parser("report", help="print a State's summary (remaining, land release, Article 5) at a date")
    report.add_argument("state", help="ISO 3166 alpha-3 code of the State, e.g. KHM")
    report.add_argument("--as-of", default=None, help="the date (YYYY-MM-DD); default today")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.set_defaults(func=_report)

    keys = sub.add_parser("keys", help="API keys: create (printed once), list, revoke")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--role", required=True, choices=["editor", "viewer", "committee", "admin"])
    create.add_argument("--state", default=None, help="ISO3 of the State (editor and viewer keys)")
    create.add_argument("--name", required=True, help="who holds the key, e.g. 'CMAA field office'")
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
    imp.set_defaults(func=_import)
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
