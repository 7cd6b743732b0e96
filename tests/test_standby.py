"""A hot standby of the test primary (`landrelease db standby`), and the heavy reads routed to it.

A real streaming replica of the session's primary, in a folder of its own: it replays the writes; with
LANDRELEASE_READ_DATABASE_URL set, the layers and summaries are read from it (the answer's
`Landrelease-Read-From` header says so, and with replay paused the standby's older view shows), a
client that just wrote reads its write from the primary, a lagging standby and a dead one leave the
reads to the primary.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from app import cli, read_routing
from app.settings import get_settings
from app.standby import EmbeddedStandby, libpq_url
from tests.ledger_scenarios import post_hazard, rect

pytestmark = pytest.mark.skipif(bool(__import__("os").environ.get("TEST_DATABASE_URL")),
                                reason="makes a standby of the embedded test cluster")


def wait_until(condition: Callable[[], object], timeout: float = 20.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def on_standby(standby: EmbeddedStandby, sql: str) -> object:
    with psycopg.connect(libpq_url(standby.read_url), autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


@pytest.fixture
def standby(cluster_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Iterator[EmbeddedStandby]:
    """`landrelease db standby` of the test primary, then this test's own (stopped and its slot dropped after)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    made = EmbeddedStandby(cluster_dir, database_url)
    try:
        assert cli.main(["db", "standby", "--data-dir", str(cluster_dir)]) == 0
        assert capsys.readouterr().out.strip() == f"LANDRELEASE_READ_DATABASE_URL={made.read_url}"
        made.started_here = True  # the command leaves it running: this test stops it
        yield made
    finally:
        read_routing.dispose()
        made.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            wait_until(lambda: not conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                                (made.slot,)).fetchone()[0], what="the slot's release")
            conn.execute("SELECT pg_drop_replication_slot(%s)", (made.slot,))


@pytest.fixture
def read_from(standby: EmbeddedStandby, monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Send the heavy reads to the standby; `read_from(max_lag_s)` sets the lag limit (default 30 s)."""
    monkeypatch.setattr(get_settings(), "read_database_url", standby.read_url)

    def set_max_lag(seconds: float) -> None:
        monkeypatch.setattr(get_settings(), "read_max_lag_s", seconds)

    set_max_lag(30.0)
    return set_max_lag


def layer(client: TestClient) -> tuple[str, set[str]]:
    """Who served the hazards layer, and the external ids in it."""
    response = client.get("/collections/hazardous_areas/items")
    assert response.status_code == 200, response.text
    return (response.headers["Landrelease-Read-From"],
            {f["properties"]["external_id"] for f in response.json()["features"]})


def served_by(client: TestClient, path: str, expect: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == expect, response.text
    return response.headers["Landrelease-Read-From"]


def test_db_standby_makes_a_hot_standby_that_replays_the_primarys_writes(standby: EmbeddedStandby,
                                                                         client: TestClient, database_url: str,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert standby.is_in_recovery()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        assert conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                            (standby.slot,)).fetchone() == (True,)
    post_hazard(client, "KHM-REPLAYED", rect(0, 0, 100, 100))
    wait_until(lambda: on_standby(standby, "SELECT count(*) FROM hazardous_areas "
                                           "WHERE external_id = 'KHM-REPLAYED'") == 1, what="the replay")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        on_standby(standby, "DELETE FROM hazardous_areas")
    # Again on the same folder: the running standby is kept, not copied again.
    assert cli.main(["db", "standby", "--data-dir", str(standby.data_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"LANDRELEASE_READ_DATABASE_URL={standby.read_url}"
    assert standby.is_in_recovery()


def test_heavy_reads_go_to_the_standby_and_a_writer_reads_its_writes(
        read_from: Callable[[float], None], standby: EmbeddedStandby, client: TestClient,
        client_as: Callable[..., TestClient]) -> None:
    writer, reader = client, client_as("admin")
    post_hazard(writer, "KHM-A", rect(0, 0, 100, 100))
    wait_until(lambda: layer(reader) == ("standby", {"KHM-A"}), what="the reads on the standby")
    wait_until(lambda: layer(writer) == ("standby", {"KHM-A"}), what="the writer's reads on the standby")
    for path in ("/api/v1/states/KHM/summary", "/api/v1/summary", "/api/v1/states/KHM/report?year=2020",
                 "/collections", "/api/v1/states/KHM/export?format=geojson", "/api/v1/states/KHM/chart.json"):
        assert served_by(reader, path) == "standby", path
    assert "Landrelease-Read-From" not in reader.get("/api/v1/states").headers  # a light read: the primary's

    on_standby(standby, "SELECT pg_wal_replay_pause()")
    wait_until(lambda: on_standby(standby, "SELECT pg_get_wal_replay_pause_state()") == "paused", what="the pause")
    written = writer.post("/api/v1/states/KHM/hazards", params={"crs": "EPSG:32648"}, json={
        "type": "Feature", "geometry": rect(500, 0, 100, 100),
        "properties": {"external_id": "KHM-B", "classification": "SHA", "recorded_on": "2015-01-01"}})
    assert written.status_code == 201, written.text
    assert read_routing.parse_lsn(written.headers["Landrelease-Wal-Lsn"]) is not None
    # The writer reads its write at once, from the primary; others see the standby's view (within the lag limit).
    assert layer(writer) == ("primary", {"KHM-A", "KHM-B"})
    assert layer(reader) == ("standby", {"KHM-A"})
    assert served_by(reader, "/api/v1/states/KHM/summary") == "standby"
    assert served_by(writer, "/api/v1/states/KHM/summary") == "primary"
    # What carries the writer's position: the cookie, the header sent back, and the key that wrote.
    position = written.headers["Landrelease-Wal-Lsn"]
    assert writer.cookies[read_routing.LSN_COOKIE] == position
    for carrier in ({"Cookie": f"{read_routing.LSN_COOKIE}={position}"}, {"Landrelease-Wal-Lsn": position}):
        response = reader.get("/collections/hazardous_areas/items", headers=carrier)
        assert response.headers["Landrelease-Read-From"] == "primary", carrier
        assert len(response.json()["features"]) == 2
    writer.cookies.clear()
    assert layer(writer) == ("primary", {"KHM-A", "KHM-B"})

    # Replay still paused: once the standby is further behind than the limit, every read is the primary's.
    read_from(0.5)
    wait_until(lambda: layer(reader) == ("primary", {"KHM-A", "KHM-B"}), timeout=5, what="the fall back")

    on_standby(standby, "SELECT pg_wal_replay_resume()")
    wait_until(lambda: layer(reader) == ("standby", {"KHM-A", "KHM-B"}), what="the standby's catching up")
    wait_until(lambda: layer(writer) == ("standby", {"KHM-A", "KHM-B"}), what="the writer's reads back on it")
    # Caught up and nothing written: never lagging, however long it stays idle (the lag limit is still 0.5 s).
    time.sleep(1.5)
    assert layer(reader) == ("standby", {"KHM-A", "KHM-B"})


def unreachable_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("the standby is unreachable" in record.getMessage() for record in caplog.records)


def test_a_dead_standby_leaves_the_reads_to_the_primary_without_delay(
        read_from: Callable[[float], None], standby: EmbeddedStandby, client: TestClient,
        caplog: pytest.LogCaptureFixture) -> None:
    post_hazard(client, "KHM-A", rect(0, 0, 100, 100))
    wait_until(lambda: layer(client) == ("standby", {"KHM-A"}), what="the reads on the standby")
    standby._run(str(standby.bindir / "pg_ctl"), "-D", str(standby.pgdata), "-m", "immediate", "-w", "stop")

    started = time.monotonic()
    for _ in range(10):
        assert layer(client) == ("primary", {"KHM-A"})
        # (a 100 m square is a point in the world tile: every hazard shows at zoom 0, app/places)
        assert served_by(client, "/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0", expect=200) == "primary"
        assert served_by(client, "/api/v1/states/KHM/summary") == "primary"
    elapsed = time.monotonic() - started
    # The breaker: the standby was tried once, then left alone for RETRY_AFTER_S (not once per read).
    assert 1 <= unreachable_warnings(caplog) <= 1 + int(elapsed // read_routing.RETRY_AFTER_S)

    standby.start()  # back: the reads return to it once the breaker lets it be tried again
    wait_until(lambda: layer(client) == ("standby", {"KHM-A"}), what="the reads back on the standby")


def test_a_standby_that_never_answers_holds_one_request_only(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # A port that takes connections (the kernel's backlog) and never answers: a hung or cut-off host.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        monkeypatch.setattr(get_settings(), "read_database_url", "postgresql+psycopg://postgres@127.0.0.1:"
                                                               f"{silent.getsockname()[1]}/landrelease?sslmode=disable")
        try:
            post_hazard(client, "KHM-A", rect(0, 0, 100, 100))
            client.cookies.clear()
            timings = []
            for _ in range(10):
                started = time.monotonic()
                assert layer(client) == ("primary", {"KHM-A"})
                timings.append(time.monotonic() - started)
        finally:
            read_routing.dispose()
    assert timings[0] < read_routing.CONNECT_TIMEOUT_S + 1.5  # the one that tried: the connect timeout
    assert max(timings[1:]) < 1.0, timings  # the others did not wait for the standby
    assert unreachable_warnings(caplog) == 1
