"""API keys, the role/State rules on every write endpoint, the audit trail and the `keys` CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import access, database
from app.embedded import EmbeddedCluster
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect

ROOT = Path(__file__).resolve().parents[1]
OTHER = "AGO"

# Who asks, as (role, state); None: no key at all; "unknown"/"revoked": a key that does not authenticate.
CALLERS = {
    "anonymous": None,
    "unknown key": "unknown",
    "revoked key": "revoked",
    "viewer KHM": ("viewer", "KHM"),
    "editor KHM": ("editor", "KHM"),
    f"editor {OTHER}": ("editor", OTHER),
    f"viewer {OTHER}": ("viewer", OTHER),
    "committee": ("committee", None),
    "admin": ("admin", None),
}


def _headers(caller: str) -> dict[str, str]:
    spec = CALLERS[caller]
    if spec is None:
        return {}
    if spec == "unknown":
        return auth_headers("lr_not-a-key-anyone-was-given")
    if spec == "revoked":
        secret = make_api_key("editor", "KHM", name="revoked editor")
        with Session(database.get_engine()) as session:
            key = access.authenticate(session, secret)
            access.revoke_key(session, key.id)
        return auth_headers(secret)
    role, state = spec
    return auth_headers(make_api_key(role, state))


def _expected(caller: str, allowed: set[str], ok: int) -> int:
    spec = CALLERS[caller]
    if spec in (None, "unknown", "revoked"):
        return 401
    return ok if caller in allowed else 403


def _expected_by_id(caller: str, allowed: set[str], ok: int) -> int:
    """For a KHM hazard or event named by id: a key of another State is told it does not exist."""
    spec = CALLERS[caller]
    if isinstance(spec, tuple) and spec[1] == OTHER:
        return 404
    return _expected(caller, allowed, ok)


LEDGER_WRITERS = {"editor KHM", "admin"}


@pytest.fixture
def anon(client_as):
    """A client that sends no key of its own: each request carries the caller's headers."""
    return client_as(None)


@pytest.fixture
def khm(client):
    """A KHM hazard with one event, recorded by the admin client."""
    hazard = post_hazard(client, "KHM-ACC-1", rect(0, 0, 100, 100))
    event = post_event(client, hazard["id"], "clearance", "2020-01-01", rect(0, 0, 10, 100))
    return {"hazard": hazard["id"], "event": event["id"]}


@pytest.mark.parametrize("caller", list(CALLERS))
def test_post_hazards_rules(client, anon, caller: str) -> None:
    response = anon.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json=hazard_feature("KHM-NEW-1", rect(0, 0, 50, 50)), headers=_headers(caller))
    expected = _expected(caller, LEDGER_WRITERS, 201)
    assert response.status_code == expected, response.text
    assert response.headers["content-type"].startswith("application/problem+json") == (expected != 201)
    if expected == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    stored = client.get("/api/v1/states/KHM/hazards").json()["numberMatched"]
    assert stored == (1 if expected == 201 else 0)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_post_event_rules(client, anon, khm, caller: str) -> None:
    response = anon.post(f"/api/v1/hazards/{khm['hazard']}/events", params={"crs": UTM48N},
                           json={"kind": "cancellation", "date": "2021-01-01", "geometry": rect(50, 0, 10, 100)},
                           headers=_headers(caller))
    expected = _expected_by_id(caller, LEDGER_WRITERS, 201)
    assert response.status_code == expected, response.text
    events = client.get(f"/api/v1/hazards/{khm['hazard']}").json()["properties"]["events"]
    assert len(events) == (2 if expected == 201 else 1)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_void_event_rules(client, anon, khm, caller: str) -> None:
    response = anon.post(f"/api/v1/events/{khm['event']}/void", json={"reason": "entered twice"},
                           headers=_headers(caller))
    expected = _expected_by_id(caller, LEDGER_WRITERS, 200)
    assert response.status_code == expected, response.text
    events = client.get(f"/api/v1/hazards/{khm['hazard']}").json()["properties"]["events"]
    assert events[0]["voided"] == (expected == 200)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_key_management_rules(client, anon, caller: str) -> None:
    response = anon.post("/api/v1/keys", json={"name": "new field office", "role": "viewer", "state": "KHM"},
                           headers=_headers(caller))
    expected = _expected(caller, {"admin"}, 201)
    assert response.status_code == expected, response.text
    names = [k["name"] for k in client.get("/api/v1/keys").json()["keys"]]
    assert ("new field office" in names) == (expected == 201)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_state_read_rules(anon, khm, caller: str) -> None:
    readers = {"viewer KHM", "editor KHM", "committee", "admin"}
    headers = _headers(caller)
    response = anon.get(f"/api/v1/hazards/{khm['hazard']}", headers=headers)
    assert response.status_code == _expected_by_id(caller, readers, 200), response.text
    response = anon.get("/api/v1/states/KHM/hazards", headers=headers)
    assert response.status_code == _expected(caller, readers, 200), response.text


def test_unknown_hazard_or_event_is_404_for_a_valid_key(anon) -> None:
    headers = auth_headers(make_api_key("editor", "KHM"))
    missing = "00000000-0000-4000-8000-000000000000"
    assert anon.post(f"/api/v1/hazards/{missing}/events", headers=headers,
                     json={"kind": "clearance", "date": "2021-01-01", "geometry": rect(0, 0, 1, 1)}).status_code == 404
    assert anon.post(f"/api/v1/events/{missing}/void", headers=headers, json={"reason": "x"}).status_code == 404


def test_keys_are_stored_only_as_hashes(client) -> None:
    with Session(database.get_engine()) as session:
        record, secret = access.create_key(session, name="CMAA field office", role="editor", state_iso3="khm")
        assert record["state"] == "KHM" and record["role"] == "editor"
        assert secret.startswith(record["prefix"]) and len(secret) > 40
        rows = session.execute(text("SELECT api_keys::text FROM api_keys")).scalars().all()
        assert not any(secret in row for row in rows)
        key = access.authenticate(session, secret)
        assert key is not None and key.name == "CMAA field office" and key.state_iso3 == "KHM"
        assert access.authenticate(session, secret + "x") is None
        access.revoke_key(session, key.id)
        assert access.authenticate(session, secret) is None
        listed = {k["id"]: k for k in access.list_keys(session)}
        assert listed[record["id"]]["revoked_at"] is not None


@pytest.mark.parametrize("role,state,message", [
    ("editor", None, "belongs to one State"),
    ("viewer", "XXX", "unknown State"),
    ("committee", "KHM", "not bound to a State"),
    ("superuser", None, "unknown role"),
])
def test_key_requests_that_make_no_sense_are_refused(client, role, state, message) -> None:
    with Session(database.get_engine()) as session, pytest.raises(access.InvalidKeyRequest, match=message):
        access.create_key(session, name="x", role=role, state_iso3=state)


def test_x_api_key_header_and_bearer_both_work(anon) -> None:
    secret = make_api_key("viewer", "KHM")
    anonymous = anon
    if True:
        assert anonymous.get("/api/v1/states/KHM/hazards").status_code == 401
        assert anonymous.get("/api/v1/states/KHM/hazards", headers={"X-API-Key": secret}).status_code == 200
        assert anonymous.get("/api/v1/states/KHM/hazards",
                             headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert anonymous.get("/api/v1/states/KHM/hazards",
                             headers={"Authorization": f"Basic {secret}"}).status_code == 401
        # Open endpoints stay open.
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200
        assert anonymous.get("/docs").status_code == 200


def test_audit_log_records_the_key_of_every_write(client, client_as) -> None:
    editor = client_as("editor", "KHM")
    hazard = post_hazard(editor, "KHM-AUD-1", rect(0, 0, 100, 100))
    event = post_event(editor, hazard["id"], "reduction", "2020-06-01", rect(0, 0, 20, 100))
    assert editor.post(f"/api/v1/events/{event['id']}/void", json={"reason": "wrong polygon"}).status_code == 200
    post_hazard(client, "AGO-AUD-1", rect(0, 0, 100, 100), iso3=OTHER)

    with Session(database.get_engine()) as session:
        editor_key = session.execute(text("SELECT id, name FROM api_keys WHERE role = 'editor'")).one()
    entries = client.get("/api/v1/audit", params={"state": "KHM"}).json()["entries"]
    assert [(e["table"], e["action"]) for e in entries] == [
        ("hazardous_areas", "create"), ("land_release_events", "create"), ("land_release_events", "void")]
    assert all(e["key_id"] == str(editor_key.id) and e["actor"] == editor_key.name for e in entries)
    assert entries[2]["detail"] == {"reason": "wrong polygon"}

    everything = client.get("/api/v1/audit").json()
    assert everything["numberMatched"] == 4
    since = entries[-1]["at"]
    later = client.get("/api/v1/audit", params={"since": since}).json()["entries"]
    assert {e["state"] for e in later} <= {"KHM", OTHER} and len(later) >= 1
    assert client.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}).json()["entries"] == []

    assert client_as("committee").get("/api/v1/audit").status_code == 200
    assert editor.get("/api/v1/audit").status_code == 403
    assert client_as("viewer", "KHM").get("/api/v1/audit").status_code == 403
    assert client_as(None).get("/api/v1/audit").status_code == 401
    bad = client.get("/api/v1/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query/since"


def test_key_management_over_http_is_audited(client, client_as) -> None:
    created = client.post("/api/v1/keys", json={"name": "HALO Trust KHM", "role": "editor", "state": "KHM"})
    assert created.status_code == 201
    secret = created.json()["key"]
    anon = client_as(None)
    assert anon.get("/api/v1/states/KHM/hazards", headers=auth_headers(secret)).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{created.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert anon.get("/api/v1/states/KHM/hazards", headers=auth_headers(secret)).status_code == 401
    actions = [(e["table"], e["action"], e["actor"]) for e in client.get("/api/v1/audit").json()["entries"]]
    assert actions == [("api_keys", "create", "test admin"), ("api_keys", "revoke", "test admin")]
    refused = client.post("/api/v1/keys", json={"name": "x", "role": "committee", "state": "KHM"})
    assert refused.status_code == 422 and "not bound to a State" in refused.json()["detail"]


# --- the CLI ------------------------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "keys", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=180)


def _database_url_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LANDRELEASE_DATA_DIR"}
    env["DATABASE_URL"] = database_url
    return env


def test_cli_keys_create_list_revoke(client, anon, database_url: str) -> None:
    env = _database_url_env(database_url)
    created = _cli("create", "--role", "editor", "--state", "KHM", "--name", "CMAA field office", env=env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("lr_") and "shown only this once" in created.stderr
    assert anon.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N}, headers=auth_headers(secret),
                     json=hazard_feature("KHM-CLI-1", rect(0, 0, 50, 50))).status_code == 201
    listed = _cli("list", env=env)
    assert listed.returncode == 0 and "CMAA field office" in listed.stdout and secret not in listed.stdout
    key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "CMAA field office" in line)
    revoked = _cli("revoke", key_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert anon.get("/api/v1/states/KHM/hazards", headers=auth_headers(secret)).status_code == 401
    assert _cli("revoke", "not-an-id", env=env).returncode == 1
    refused = _cli("create", "--role", "editor", "--name", "no state", env=env)
    assert refused.returncode == 2 and "belongs to one State" in refused.stderr
    actors = client.get("/api/v1/audit", params={"state": "KHM"}).json()["entries"]
    assert [e["action"] for e in actors if e["table"] == "api_keys"] == ["create", "revoke"]
    assert all(e["actor"].startswith("cli ") for e in actors if e["table"] == "api_keys")


def test_cli_keys_with_the_embedded_cluster_running_or_not(cluster_dir: Path, migrated_cluster) -> None:
    tmp_path = cluster_dir
    migrated_cluster(tmp_path / "data")  # installed before, and stopped
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LANDRELEASE_DATA_DIR"] = str(tmp_path / "data")
    # Not running: the command starts the private cluster briefly, and stops it again.
    created = _cli("create", "--role", "admin", "--name", "first admin", env=env)
    assert created.returncode == 0, created.stderr
    cluster = EmbeddedCluster(tmp_path / "data", fsync=False)
    assert not cluster.is_running()
    # Running (as when the service is up): the command reuses it and leaves it running.
    cluster.start()
    try:
        listed = _cli("list", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "first admin" in listed.stdout
        assert cluster.is_running()
    finally:
        cluster.stop()


# --- reads of the OGC layers: keyed by default, open with LANDRELEASE_PUBLIC_READ -------------------
@pytest.fixture
def two_states(client):
    khm = post_hazard(client, "KHM-OGC-1", rect(0, 0, 100, 100))
    ago = post_hazard(client, "AGO-OGC-1", rect(0, 0, 100, 100), iso3=OTHER)
    return {"KHM": khm["id"], OTHER: ago["id"]}


def _states_in(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(f["properties"]["state"] for f in response.json()["features"])


def test_ogc_layers_need_a_key_by_default_and_are_scoped_to_its_state(two_states, anon) -> None:
    items = "/collections/hazardous_areas/items"
    assert anon.get(items).status_code == 401
    assert anon.get("/collections").status_code == 401
    assert anon.get("/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0").status_code == 401
    # Landing page, conformance and the API description stay open.
    for path in ("/", "/conformance", "/openapi.json", "/health"):
        assert anon.get(path).status_code == 200, path

    viewer = auth_headers(make_api_key("viewer", "KHM"))
    assert _states_in(anon.get(items, headers=viewer)) == ["KHM"]
    assert _states_in(anon.get(items, params={"state": "khm"}, headers=viewer)) == ["KHM"]
    assert anon.get(items, params={"state": OTHER}, headers=viewer).status_code == 403
    assert anon.get(f"{items}/{two_states['KHM']}", headers=viewer).status_code == 200
    assert anon.get(f"{items}/{two_states[OTHER]}", headers=viewer).status_code == 404
    assert anon.get("/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0", headers=viewer,
                    params={"state": OTHER}).status_code == 403

    committee = auth_headers(make_api_key("committee"))
    assert _states_in(anon.get(items, headers=committee)) == [OTHER, "KHM"]
    assert _states_in(anon.get(items, params={"state": OTHER}, headers=committee)) == [OTHER]
    assert anon.get(items, headers=auth_headers("lr_wrong")).status_code == 401


def test_ogc_layers_are_open_with_public_read(two_states, anon, monkeypatch) -> None:
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "public_read", True)
    items = "/collections/hazardous_areas/items"
    assert _states_in(anon.get(items)) == [OTHER, "KHM"]
    assert anon.get(f"{items}/{two_states[OTHER]}").status_code == 200
    assert anon.get("/collections").status_code == 200
    assert anon.get("/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0").status_code in (200, 204)
    # Open reads do not open writes, nor the ledger's own API.
    assert anon.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                     json=hazard_feature("KHM-PUB-1", rect(0, 0, 50, 50))).status_code == 401
    assert anon.get("/api/v1/states/KHM/hazards").status_code == 401
    # A bad key is still refused rather than treated as anonymous.
    assert anon.get(items, headers=auth_headers("lr_wrong")).status_code == 401


def test_public_read_setting_comes_from_the_environment(monkeypatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv("LANDRELEASE_PUBLIC_READ", "true")
    assert Settings().public_read is True
    monkeypatch.setenv("LANDRELEASE_PUBLIC_READ", "false")
    assert Settings().public_read is False


# --- Article 5 decisions, milestones and the summaries ------------------------------------------
COMMITTEE_WRITERS = {"committee", "admin"}


@pytest.mark.parametrize("caller", list(CALLERS))
def test_article5_decision_rules(client, anon, caller: str) -> None:
    before = len(client.get("/api/v1/states/KHM").json()["decisions"])
    response = anon.post("/api/v1/states/KHM/article5/decisions", headers=_headers(caller),
                         json={"kind": "extension", "decided_on": "2025-11-20", "deadline": "2028-12-31",
                               "meeting": "test meeting", "source": "APLC/MSP.22/2025/test"})
    expected = _expected(caller, COMMITTEE_WRITERS, 201)
    assert response.status_code == expected, response.text
    after = len(client.get("/api/v1/states/KHM").json()["decisions"])
    assert after == before + (1 if expected == 201 else 0)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_milestone_rules(client, anon, caller: str) -> None:
    response = anon.put("/api/v1/states/KHM/milestones", headers=_headers(caller),
                        json=[{"year": 2025, "area_m2": 12_500_000, "areas": 140}])
    expected = _expected(caller, COMMITTEE_WRITERS, 200)
    assert response.status_code == expected, response.text
    with database.get_engine().connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM work_plan_milestones WHERE state_iso3 = 'KHM'")).scalar()
    assert stored == (1 if expected == 200 else 0)


def test_article5_writes_are_audited_with_the_committee_key(client, client_as) -> None:
    committee = client_as("committee")
    assert committee.post("/api/v1/states/KHM/article5/decisions",
                          json={"kind": "extension", "decided_on": "2025-11-20", "deadline": "2028-12-31"}
                          ).status_code == 201
    entries = client.get("/api/v1/audit", params={"state": "KHM"}).json()["entries"]
    assert entries and entries[-1]["actor"] == "test committee all" and entries[-1]["key_id"]


@pytest.mark.parametrize("caller", list(CALLERS))
def test_summary_read_rules(client, anon, caller: str) -> None:
    headers = _headers(caller)
    readers = {"viewer KHM", "editor KHM", "committee", "admin"}
    for path in ("/api/v1/states/KHM/summary", "/api/v1/states/KHM/report?year=2024"):
        response = anon.get(path, headers=headers)
        assert response.status_code == _expected(caller, readers, 200), (path, response.text)
    overview = anon.get("/api/v1/summary", headers=headers)
    if CALLERS[caller] in (None, "unknown", "revoked"):
        assert overview.status_code == 401
    else:
        assert overview.status_code == 200
        states = {row["state"] for row in overview.json()["states"]}
        spec = CALLERS[caller]
        if spec[0] in ("editor", "viewer"):
            assert states == {spec[1]}
        else:
            assert {"KHM", OTHER} <= states


def test_summaries_are_open_with_public_read(client, anon, monkeypatch) -> None:
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "public_read", True)
    assert anon.get("/api/v1/states/KHM/summary").status_code == 200
    assert anon.get(f"/api/v1/states/{OTHER}/report", params={"year": 2024}).status_code == 200
    assert len(anon.get("/api/v1/summary").json()["states"]) > 20
    assert anon.post("/api/v1/states/KHM/article5/decisions",
                     json={"kind": "completion", "decided_on": "2025-11-20"}).status_code == 401


# --- nothing is left open by accident -------------------------------------------------------------
OPEN_PATHS = {"/", "/conformance", "/api", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
              "/dashboard", "/dashboard/{iso3}",
              "/tileMatrixSets", "/tileMatrixSets/{tileMatrixSetId}"}  # the tile grids' definitions: no data
PLACEHOLDERS = {"iso3": "KHM", "collectionId": "hazardous_areas", "z": "0", "x": "0", "y": "0"}


def test_every_endpoint_but_the_open_ones_needs_a_key(anon) -> None:
    import re

    from app.main import create_app

    checked = 0
    for template, operations in create_app().openapi()["paths"].items():
        if template in OPEN_PATHS:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS.get(m.group(1), "00000000-0000-4000-8000-000000000000"),
                      template)
        for method in operations:
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            response = anon.request(method.upper(), path)
            assert response.status_code == 401, (method, template, response.status_code, response.text)
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("caller", list(CALLERS))
def test_file_import_rules(client, anon, caller: str) -> None:
    from tests.ledger_scenarios import rect_lonlat

    collection = {"type": "FeatureCollection", "features": [
        hazard_feature("KHM-IMP-1", rect_lonlat(0, 0, 100, 100))]}
    response = anon.post("/api/v1/states/KHM/imports", headers=_headers(caller),
                         files={"file": ("hazards.geojson", json.dumps(collection).encode(), "application/geo+json")})
    expected = _expected(caller, LEDGER_WRITERS, 201)
    assert response.status_code == expected, response.text
    assert client.get("/api/v1/states/KHM/hazards").json()["numberMatched"] == (1 if expected == 201 else 0)
    if expected == 201:
        entries = client.get("/api/v1/audit", params={"state": "KHM"}).json()["entries"]
        assert entries[-1]["key_id"] and entries[-1]["actor"].startswith("test ")


@pytest.mark.parametrize("caller", list(CALLERS))
def test_export_rules(anon, client, caller: str) -> None:
    readers = {"viewer KHM", "editor KHM", "committee", "admin"}
    response = anon.get("/api/v1/states/KHM/export", params={"format": "geojson"}, headers=_headers(caller))
    assert response.status_code == _expected(caller, readers, 200), response.text


def _serve(database_url: str, *flags: str, env_extra: dict[str, str] | None = None):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _database_url_env(database_url)
    env.pop("LANDRELEASE_PUBLIC_READ", None)
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), *flags], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{port}"


def _wait_up(proc, base: str) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not start")


@pytest.mark.parametrize("flags,env_extra,open_", [
    ((), None, False),
    (("--public-read",), None, True),
    ((), {"LANDRELEASE_PUBLIC_READ": "true"}, True),
])
def test_serve_public_read_from_the_cli_or_the_environment(two_states, database_url, flags, env_extra, open_) -> None:
    import httpx

    proc, base = _serve(database_url, *flags, env_extra=env_extra)
    try:
        _wait_up(proc, base)
        items = httpx.get(f"{base}/collections/hazardous_areas/items", timeout=30)
        summary = httpx.get(f"{base}/api/v1/states/KHM/summary", timeout=30)
        write = httpx.post(f"{base}/api/v1/states/KHM/hazards", json=hazard_feature("KHM-X", rect(0, 0, 9, 9)),
                           params={"crs": UTM48N}, timeout=30)
        assert items.status_code == (200 if open_ else 401)
        assert summary.status_code == (200 if open_ else 401)
        assert write.status_code == 401
        if open_:
            assert len(items.json()["features"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
