"""The `landrelease` command."""
from __future__ import annotations

import argparse
import logging
import sys

from app import database, migrate
from app.embedded import EmbeddedClusterError
from app.settings import get_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    with database.open_database(settings) as url:
        migrate.upgrade(url)
        database.configure(url, settings)
        if args.demo:
            from app.demo import load_demo_if_empty

            load_demo_if_empty()
        from app.main import app

        uvicorn.run(app, host=host, port=port, log_level=settings.log_level)
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landrelease", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database to head, then serve the API")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default 8000)")
    serve.add_argument("--demo", action="store_true", help="load the demo data set if the database is empty")
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database migrations (Alembic)")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?", help="target revision (upgrade defaults to head)")
    db.set_defaults(func=_db)
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
