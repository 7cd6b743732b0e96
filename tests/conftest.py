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
from sqlalchemy import text

from app import database, migrate
from app.embedded import EmbeddedCluster

# Tables that hold reference data seeded by the migrations; every other table is emptied before each test.
REFERENCE_TABLES = {"states", "alembic_version", "spatial_ref_sys",
                    "countries", "provinces", "country_parts", "province_parts"}  # boundaries: 0008


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


def reset_database() -> None:
    """Bring the schema back to its freshly migrated state."""
    engine = database.get_engine()
    with engine.begin() as conn:
        tables = [
            row[0]
            for row in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            if row[0] not in REFERENCE_TABLES
        ]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        try:
            from app.committee.article5 import seed_reference_data
        except ImportError:
            return
        seed_reference_data(conn)


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
