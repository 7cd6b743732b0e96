"""Tests run against real PostGIS: a throwaway embedded cluster, or TEST_DATABASE_URL when given."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from app import database, migrate
from app.embedded import EmbeddedCluster

# Tables that hold reference data seeded by the migrations; every other table is emptied before each test.
REFERENCE_TABLES = {"states", "alembic_version", "spatial_ref_sys",
                    "countries", "provinces", "country_parts", "province_parts"}  # boundaries: 0008
SEEDED_REFERENCE_TABLES = ("states",)  # not emptied, but seeded again when changed (seed_reference_data)


@pytest.fixture(scope="session")
def migrated_pgdata() -> Iterator[Path]:
    """The data folder of a stopped cluster, migrated to head: made once per session (initdb and every
    migration, 0008's boundaries included) and copied by `migrated_cluster` wherever a test needs one."""
    folder = _private_cluster_folder()
    template = EmbeddedCluster(folder, fsync=False)
    template.start()
    try:
        migrate.upgrade(template.url)
    finally:
        template.shut_down()
    yield template.pgdata
    shutil.rmtree(folder, ignore_errors=True)


def copy_cluster(pgdata: Path, data_dir: Path) -> None:
    """Put a copy of a stopped cluster's data folder in `data_dir/pg` (owners and modes kept)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(pgdata), str(data_dir / "pg")], check=True)


@pytest.fixture
def migrated_cluster(migrated_pgdata: Path) -> Callable[[Path], Path]:
    """`migrated_cluster(data_dir)`: a stopped cluster, migrated to head, in `data_dir/pg` (returns data_dir)."""
    def _copy(data_dir: Path) -> Path:
        copy_cluster(migrated_pgdata, data_dir)
        return data_dir

    return _copy


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        url = database.sqlalchemy_url(given)
        migrate.upgrade(url)
        yield url
        return
    folder = _private_cluster_folder()
    copy_cluster(request.getfixturevalue("migrated_pgdata"), folder)
    cluster = EmbeddedCluster(folder, fsync=False)
    cluster.start()
    try:
        yield cluster.url
    finally:
        database.dispose()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _private_cluster_folder() -> Path:
    # Not under pytest's own temp folder: pytest resets /tmp/pytest-of-<user> to mode 0700 whenever a
    # session starts, which would lock the server account (postgres) out of a running cluster.
    return Path(tempfile.mkdtemp(prefix="landrelease-test-"))


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A fresh folder for an embedded cluster of a test's own (removed afterwards)."""
    folder = _private_cluster_folder()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# Each table's fingerprint: its rows, its newest row version and the values of its identity sequences. A
# table whose fingerprint is the one the last reset left was not written since (an update makes a newer row
# version, a delete leaves fewer rows, an insert more rows or a newer version, and draws from its sequence).
Fingerprint = tuple[int, int | None, tuple[int | None, ...]]
_SEQUENCES = text("""
    SELECT t.relname, s.last_value FROM pg_sequences s
    JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = to_regnamespace(s.schemaname)
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    JOIN pg_class t ON t.oid = d.refobjid
    WHERE s.schemaname = 'public' ORDER BY s.sequencename""")
# What the last reset of each database left: the fingerprint of each table.
_reset_left: dict[str, dict[str, Fingerprint]] = {}


def _fingerprints(conn: Connection, tables: list[str]) -> dict[str, Fingerprint]:
    sequences: dict[str, list[int | None]] = {}
    for table, last_value in conn.execute(_SEQUENCES):
        sequences.setdefault(table, []).append(last_value)
    rows = conn.execute(text(" UNION ALL ".join(
        f"SELECT CAST('{table}' AS text), count(*), max(CAST(CAST(xmin AS text) AS bigint)) FROM \"{table}\""
        for table in tables)))
    return {table: (count, newest, tuple(sequences.get(table, []))) for table, count, newest in rows}


def reset_database() -> None:
    """Bring the schema back to its freshly migrated state: empty the tables written since the last reset
    (their identity sequences restarted), and seed the reference data again if it was changed."""
    try:
        from app.committee.article5 import seed_reference_data
    except ImportError:
        seed_reference_data = None
    engine = database.get_engine()
    with engine.begin() as conn:
        public = [row[0] for row in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
        tables = [table for table in public if table not in REFERENCE_TABLES]
        watched = tables + [table for table in SEEDED_REFERENCE_TABLES if table in public]
        left = _reset_left.get(str(engine.url), {})
        now = _fingerprints(conn, watched)
        written = [table for table in tables if now[table] != left.get(table)]
        if written:
            conn.execute(text(f"TRUNCATE {', '.join(written)} RESTART IDENTITY CASCADE"))
            now = _fingerprints(conn, watched)
        seeded = [table for table, (count, _, _) in left.items() if count]
        if seed_reference_data and (not left or any(now[table] != left[table] for table in seeded)):
            refilled = [table for table in seeded if table in tables]
            if refilled:
                conn.execute(text(f"TRUNCATE {', '.join(refilled)} RESTART IDENTITY CASCADE"))
            seed_reference_data(conn)
            now = _fingerprints(conn, watched)
        _reset_left[str(engine.url)] = now


@pytest.fixture(autouse=True)
def clean_database(database_url: str) -> Iterator[None]:
    if not database.is_configured():
        database.configure(database_url)
    reset_database()
    yield


def make_api_key(role: str = "admin", state: str | None = None, name: str | None = None) -> str:
    """Create an API key in the test database and return its secret (see app/access.py for the roles)."""
    from sqlalchemy.orm import Session

    from app.access import create_key

    with Session(database.get_engine()) as session:
        _, secret = create_key(session, name=name or f"test {role} {state or 'all'}", role=role, state_iso3=state)
    return secret


def auth_headers(secret: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"} if secret else {}


@pytest.fixture
def admin_key(clean_database: None) -> str:
    return make_api_key("admin", name="test admin")


@pytest.fixture
def client(clean_database: None, admin_key: str) -> Iterator[TestClient]:
    """A client that sends an admin key with every request (use `client_as` for other roles)."""
    from app.main import create_app

    with TestClient(create_app(), headers=auth_headers(admin_key)) as test_client:
        yield test_client


@pytest.fixture
def client_as(clean_database: None) -> Iterator:
    """`client_as(role, state)`: a client with a fresh key of that role (role None: no key at all)."""
    from app.main import create_app

    clients: list[TestClient] = []

    def _make(role: str | None, state: str | None = None) -> TestClient:
        secret = make_api_key(role, state) if role else None
        test_client = TestClient(create_app(), headers=auth_headers(secret))
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield _make
    for test_client in clients:
        test_client.__exit__(None, None, None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(clean_database: None, admin_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The service on a real loopback port, for real clients (GDAL, browsers).

    GDAL clients started by the test send the admin key (GDAL_HTTP_HEADERS); other clients pass
    `auth_headers(admin_key)` themselves.
    """
    import uvicorn

    monkeypatch.setenv("GDAL_HTTP_HEADERS", f"Authorization: Bearer {admin_key}")

    from app.main import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch):
    """`limits(max_features=..., ...)`: set limits on the live settings object for one test."""
    from app.settings import get_settings

    settings = get_settings()

    def _set(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setattr(settings, name, value)

    return _set


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parents[1] / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
