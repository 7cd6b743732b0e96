"""Concurrent writers and a cut database connection, against the real service on a loopback port."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app import database
from app.geometry import MIN_AREA_M2
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import UTM48N, hazard_feature, post_hazard, rect

WRITERS = 8
EVENTS_PER_WRITER = 14
HAZARD_SIDE = 400.0
HAZARDS = 4


def _writer(base: str, secret: str, hazard_ids: list[str], seed: int, out: dict[str, Any]) -> None:
    """Post events on overlapping parts of the shared hazards, back-dated at random; void one of them."""
    rng = random.Random(seed)
    accepted: list[str] = []
    statuses: Counter[int] = Counter()
    voids = 0
    with httpx.Client(base_url=base, headers=auth_headers(secret), timeout=120) as http:
        for n in range(EVENTS_PER_WRITER):
            h = rng.randrange(HAZARDS)
            x = h * (HAZARD_SIDE + 100) + rng.uniform(-30, HAZARD_SIDE - 40)
            y = rng.uniform(-30, HAZARD_SIDE - 40)
            w, d = rng.uniform(40, 160), rng.uniform(40, 160)
            when = date(2016, 1, 1) + timedelta(days=rng.randrange(0, 3000))
            response = http.post(f"/api/v1/hazards/{hazard_ids[h]}/events", params={"crs": UTM48N},
                                 json={"kind": rng.choice(["cancellation", "reduction", "clearance"]),
                                       "date": when.isoformat(), "geometry": rect(x, y, w, d),
                                       "organisation": f"writer {seed}"})
            statuses[response.status_code] += 1
            if response.status_code == 201:
                accepted.append(response.json()["id"])
            if n == EVENTS_PER_WRITER // 2 and accepted:
                voided = http.post(f"/api/v1/events/{accepted[0]}/void", json={"reason": f"writer {seed} mistake"})
                statuses[voided.status_code] += 1
                if voided.status_code == 200:
                    voids += 1
    out[secret] = {"accepted": accepted, "voids": voids, "statuses": statuses}


def test_eight_writers_on_the_same_hazards(client, live_server) -> None:
    hazard_ids = [post_hazard(client, f"KHM-C-{i}", rect(i * (HAZARD_SIDE + 100), 0, HAZARD_SIDE, HAZARD_SIDE),
                              recorded_on="2015-06-01")["id"] for i in range(HAZARDS)]
    secrets = [make_api_key("editor", "KHM", name=f"field team {i}") for i in range(WRITERS)]
    results: dict[str, Any] = {}
    threads = [threading.Thread(target=_writer, args=(live_server, secret, hazard_ids, i, results))
               for i, secret in enumerate(secrets)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(results) == WRITERS, "a writer did not finish"
    statuses = sum((r["statuses"] for r in results.values()), Counter())
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {200, 201, 422}, statuses  # 422: the polygon released nothing at that date
    created = sum(len(r["accepted"]) for r in results.values())
    assert created >= WRITERS * EVENTS_PER_WRITER // 3, statuses
    assert time.monotonic() - started < 600

    with database.get_engine().connect() as conn:
        rows = conn.execute(text(
            """
            SELECT h.id, h.baseline_area_m2, h.remaining_area_m2, h.status,
                   COALESCE(ST_Area(ST_Difference(h.baseline_geom, u.g)::geography, true), h.baseline_area_m2)
                       AS expected_m2,
                   (SELECT COALESCE(sum(released_area_m2), 0) FROM land_release_events e
                    WHERE e.hazard_id = h.id AND e.voided_at IS NULL) AS released_m2,
                   (SELECT count(*) FROM land_release_events e WHERE e.hazard_id = h.id AND e.voided_at IS NULL) AS n
            FROM hazardous_areas h
            LEFT JOIN LATERAL (SELECT ST_Union(e.submitted_geom) AS g FROM land_release_events e
                               WHERE e.hazard_id = h.id AND e.voided_at IS NULL) u ON true
            WHERE h.parent_id IS NULL ORDER BY h.external_id
            """
        )).all()
        assert len(rows) == HAZARDS
        for row in rows:
            # remaining = baseline minus the union of the valid events (within the ledger's 1 m2 sliver rule
            # for each event), and baseline minus the released areas is the remaining area exactly.
            assert row.remaining_area_m2 == pytest.approx(row.expected_m2, abs=MIN_AREA_M2 * (row.n + 1)), row
            assert row.baseline_area_m2 - row.released_m2 == pytest.approx(row.remaining_area_m2, abs=1e-3), row
            assert (row.status == "released") == (row.remaining_area_m2 < MIN_AREA_M2)

        # The audit log has exactly one row per accepted write, under the key that made it.
        audit = {
            (r.key_id and str(r.key_id), r.action): r.n
            for r in conn.execute(text("SELECT key_id, action, count(*) AS n FROM audit_log "
                                       "WHERE table_name = 'land_release_events' GROUP BY key_id, action"))
        }
        keys = dict(conn.execute(text("SELECT name, id::text FROM api_keys")).all())
        valid_events = conn.execute(text("SELECT count(*) FROM land_release_events WHERE voided_at IS NULL")).scalar()
        all_events = conn.execute(text("SELECT count(*) FROM land_release_events")).scalar()
    for i, secret in enumerate(secrets):
        key_id = keys[f"field team {i}"]
        assert audit.get((key_id, "create"), 0) == len(results[secret]["accepted"])
        assert audit.get((key_id, "void"), 0) == results[secret]["voids"]
    # The admin recorded the hazards' setup only; no event rows without an accepted request.
    assert all_events == created
    assert valid_events == created - sum(r["voids"] for r in results.values())


def _terminate_backend_running(request: threading.Thread, condition: str, seconds: float) -> bool:
    """While `request` runs, terminate the database backend whose transaction matches `condition`
    (SQL over pg_stat_activity); True once one was terminated."""
    deadline = time.monotonic() + seconds
    with database.get_engine().connect() as conn:
        conn.execute(text("COMMIT"))
        while time.monotonic() < deadline and request.is_alive():
            pid = conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() "
                f"AND xact_start IS NOT NULL AND {condition} LIMIT 1")).scalar()
            conn.execute(text("COMMIT"))
            if pid is not None:
                terminated = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
                conn.execute(text("COMMIT"))
                return bool(terminated)
            time.sleep(0.01)
    return False


def test_cut_connection_in_the_middle_of_a_large_import(client, live_server, admin_key) -> None:
    """Kill the request's database backend while it inserts: nothing stored, and the service keeps answering."""
    count = 4000
    collection = {"type": "FeatureCollection", "features": [
        hazard_feature(f"KHM-BIG-{i}", rect((i % 80) * 60, (i // 80) * 60, 50, 50)) for i in range(count)]}
    outcome: dict[str, Any] = {}

    def big_import() -> None:
        with httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=300) as http:
            outcome["response"] = http.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N}, json=collection)

    thread = threading.Thread(target=big_import)
    thread.start()
    terminated = _terminate_backend_running(
        thread, "query ILIKE '%INSERT INTO hazardous_areas%' AND now() - xact_start > interval '300 milliseconds'",
        seconds=120)
    thread.join(timeout=300)
    assert terminated, "the import finished before its connection could be cut; make it larger"
    response = outcome["response"]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "unavailable" in response.json()["detail"]

    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazardous_areas")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0

    with httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=60) as http:
        assert http.get("/health").status_code == 200
        small = http.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                          json=hazard_feature("KHM-AFTER-1", rect(0, 0, 100, 100)))
        assert small.status_code == 201, small.text
        assert http.get("/api/v1/states/KHM/hazards").json()["numberMatched"] == 1


def test_cut_connection_in_the_middle_of_a_file_import(client, live_server, admin_key) -> None:
    """The same through the bulk file import (COPY straight into hazardous_areas and audit_log)."""
    import json

    from tests.ledger_scenarios import rect_lonlat

    count = 12000
    collection = {"type": "FeatureCollection", "features": [
        hazard_feature(f"KHM-FILE-{i}", rect_lonlat((i % 100) * 60, (i // 100) * 60, 50, 50)) for i in range(count)]}
    payload = json.dumps(collection).encode()
    outcome: dict[str, Any] = {}

    def big_import() -> None:
        with httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=300) as http:
            outcome["response"] = http.post("/api/v1/states/KHM/imports",
                                            files={"file": ("big.geojson", payload, "application/geo+json")})

    thread = threading.Thread(target=big_import)
    thread.start()
    terminated = _terminate_backend_running(
        thread, "(query ILIKE 'COPY hazardous_areas%' OR query ILIKE 'COPY audit_log%')", seconds=180)
    thread.join(timeout=300)
    assert terminated, "the import finished before its connection could be cut"
    response = outcome["response"]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")

    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazardous_areas")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0
    with httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=60) as http:
        assert http.get("/health").status_code == 200
        again = http.post("/api/v1/states/KHM/imports",
                          files={"file": ("one.geojson", json.dumps({"type": "FeatureCollection",
                                                                      "features": collection["features"][:1]}),
                                          "application/geo+json")})
        assert again.status_code == 201, again.text
