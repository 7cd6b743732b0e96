"""API hygiene (issue 12): no 500 on odd text, limits by route, no server paths, headers, no probing.

Each test reproduces a finding against the real service (real PostGIS, real HTTP) and shows it fixed.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from app.problems import SERVER_PATH, Problem
from tests.ledger_scenarios import hazard_feature, post_hazard, rect

HAZARDS = "/api/v1/states/KHM/hazards"
SURROGATE_FEATURE = ('{"type": "Feature", "properties": {"external_id": "KHM-\\ud800", "classification": "SHA", '
                     '"recorded_on": "2019-01-01"}, "geometry": {"type": "Polygon", "coordinates": '
                     '[[[102.9, 13.0], [102.91, 13.0], [102.91, 13.01], [102.9, 13.0]]]}}')


def _problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    response.content.decode("utf-8")  # always valid UTF-8
    return response.json()


# --- a lone surrogate ------------------------------------------------------------------------------
def test_a_lone_surrogate_in_a_json_body_is_a_422_naming_the_field(client) -> None:
    response = client.post(HAZARDS, content=SURROGATE_FEATURE, headers={"content-type": "application/json"})
    problem = _problem(response, 422)
    assert problem["errors"][0]["field"] == "body/properties/external_id"
    assert "invalid character" in problem["detail"]
    assert client.get(HAZARDS).json()["numberMatched"] == 0


def test_a_lone_surrogate_in_a_key_or_an_event_is_refused_too(client) -> None:
    hazard = post_hazard(client, "KHM-SUR-1", rect(0, 0, 100, 100))
    body = '{"kind": "cancellation", "date": "2020-01-01", "organisation": "x\\udfff"}'
    problem = _problem(client.post(f"/api/v1/hazards/{hazard['id']}/events", content=body,
                                   headers={"content-type": "application/json"}), 422)
    assert problem["errors"][0]["field"] == "body/organisation"
    problem = _problem(client.post("/api/v1/keys", content='{"name": "a", "role": "admin", "\\ud83d": 1}',
                                   headers={"content-type": "application/json"}), 422)
    assert problem["errors"][0]["field"] == "body/\\ud83d"


def test_problem_texts_that_utf8_cannot_encode_are_escaped(client) -> None:
    from app.main import create_app

    app = create_app()

    @app.get("/echo-for-the-test")
    def echo() -> dict:
        raise Problem(422, "external_id 'KHM-\ud800' is not valid", echoed=["\udfff"])

    with TestClient(app) as echo_client:
        problem = _problem(echo_client.get("/echo-for-the-test"), 422)
    assert problem["detail"] == "external_id 'KHM-\\ud800' is not valid" and problem["echoed"] == ["\\udfff"]


def test_a_surrogate_that_reaches_the_database_layer_is_a_422_not_a_500(client) -> None:
    from fastapi import Depends
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.database import get_session
    from app.main import create_app

    app = create_app()

    @app.get("/store-for-the-test")
    def store(session: Session = Depends(get_session)) -> dict:
        session.execute(text("SELECT CAST(:v AS text)"), {"v": "x\ud800"})
        return {}

    with TestClient(app, raise_server_exceptions=False) as store_client:
        assert "invalid character" in _problem(store_client.get("/store-for-the-test"), 422)["detail"]


# --- the body limit goes by the route; JSON routes take JSON ---------------------------------------
def test_the_json_limit_holds_whatever_content_type_the_client_claims(client, monkeypatch) -> None:
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "max_body_bytes", 2000)
    big = b"x" * 5000
    for content_type in ("application/octet-stream", "multipart/form-data; boundary=x", "image/png", ""):
        headers = {"content-type": content_type} if content_type else {}
        problem = _problem(client.post(HAZARDS, content=big, headers=headers), 413)
        assert "limit of 2000 bytes" in problem["detail"], content_type

    def chunks():  # no Content-Length: counted as it streams in
        for _ in range(10):
            yield b"x" * 500

    _problem(client.post(HAZARDS, content=chunks(), headers={"content-type": "application/octet-stream"}), 413)


def test_a_json_route_answers_415_to_another_media_type(client) -> None:
    feature = json.dumps(hazard_feature("KHM-415", rect(0, 0, 100, 100)))
    for content_type in ("application/octet-stream", "text/plain", "application/x-www-form-urlencoded"):
        problem = _problem(client.post(HAZARDS, content=feature, params={"crs": "EPSG:32648"},
                                       headers={"content-type": content_type}), 415)
        assert content_type in problem["detail"] and "application/json" in problem["detail"]
    assert "without a Content-Type" in _problem(client.post(HAZARDS, content=feature), 415)["detail"]
    assert client.post(HAZARDS, content=feature, params={"crs": "EPSG:32648"},
                       headers={"content-type": "application/geo+json"}).status_code == 201


def test_every_route_with_a_json_body_checks_it() -> None:
    from app.bodies import JsonBodyRoute, api_routes, takes_upload
    from app.main import create_app

    body_routes = [r for _, r in api_routes(create_app().routes) if r.body_field is not None]
    assert body_routes
    for route in body_routes:
        assert takes_upload(route) or isinstance(route, JsonBodyRoute), route.path
    assert [r.path for r in body_routes if takes_upload(r)] == ["/api/v1/states/{iso3}/imports",
                                                                "/api/v1/states/{iso3}/history-imports",
                                                                "/api/v1/states/{iso3}/submissions/file",
                                                                "/api/v1/submissions/{submission_id}/file"]


# --- no server paths ---------------------------------------------------------------------------------
def test_problems_never_show_server_paths(client, tmp_path) -> None:
    from app.main import create_app
    from app.settings import get_settings

    app = create_app()
    data_file = get_settings().data_dir.resolve() / "pg" / "postgresql.conf"

    @app.get("/leak-for-the-test")
    def leak() -> dict:
        raise Problem(422, f"cannot open /tmp/landrelease-import-x1y2/hazards.gpkg: broken; also {data_file}",
                      where=str(tmp_path / "f.zip"))

    with TestClient(app) as leak_client:
        problem = _problem(leak_client.get("/leak-for-the-test"), 422)
    text_ = json.dumps(problem)
    assert "/tmp" not in text_ and str(data_file.parent) not in text_ and "landrelease-import" not in text_
    assert problem["detail"] == f"cannot open {SERVER_PATH}: broken; also {SERVER_PATH}"
    assert problem["where"] == SERVER_PATH


# --- another State's ids cannot be probed ----------------------------------------------------------------
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _by_id_requests(hazard: str, event: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"/api/v1/hazards/{hazard}", None),
        ("POST", f"/api/v1/hazards/{hazard}/events", {"kind": "cancellation", "date": "2021-01-01",
                                                       "geometry": rect(50, 0, 10, 100)}),
        ("POST", f"/api/v1/events/{event}/void", {"reason": "probing"}),
        ("GET", f"/collections/hazardous_areas/items/{hazard}", None),
        ("GET", f"/collections/land_release_events/items/{event}", None),
    ]


def test_another_states_hazard_or_event_is_the_same_404_as_an_unknown_id(client, client_as) -> None:
    from tests.ledger_scenarios import post_event

    hazard = post_hazard(client, "KHM-PROBE-1", rect(0, 0, 100, 100))
    event = post_event(client, hazard["id"], "clearance", "2020-01-01", rect(0, 0, 10, 100))
    for role in ("editor", "viewer"):
        other = client_as(role, "AGO")
        known = _by_id_requests(hazard["id"], event["id"])
        unknown = _by_id_requests(UNKNOWN_ID, UNKNOWN_ID)
        for (method, path, body), (_, unknown_path, _) in zip(known, unknown, strict=True):
            answer = other.request(method, path, json=body, params={"crs": "EPSG:32648"} if body else None)
            missing = other.request(method, unknown_path, json=body, params={"crs": "EPSG:32648"} if body else None)
            assert answer.status_code == missing.status_code == 404, (role, path, answer.text)
            assert answer.json()["detail"].replace(hazard["id"], "ID").replace(event["id"], "ID") == \
                missing.json()["detail"].replace(UNKNOWN_ID, "ID"), path
    # A key that may read the hazard but not change it still learns why: 403.
    viewer = client_as("viewer", "KHM")
    assert viewer.get(f"/api/v1/hazards/{hazard['id']}").status_code == 200
    assert viewer.post(f"/api/v1/events/{event['id']}/void", json={"reason": "x"}).status_code == 403
    assert client.get("/api/v1/audit?state=KHM").json()["numberMatched"] == 2  # nothing was written


# --- headers ---------------------------------------------------------------------------------------------
def test_every_response_says_nosniff_and_no_referrer(client, client_as) -> None:
    from app.main import create_app

    app = create_app()

    @app.get("/broken-for-the-test")
    def broken() -> dict:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as broken_client:
        answers = [broken_client.get("/broken-for-the-test")]
    answers += [client.get("/conformance"), client.get("/api/v1/states/KHM/chart.svg"), client.get("/nowhere"),
                client_as(None).get("/api/v1/states/KHM/hazards"), client.get("/dashboard/static/state.js"),
                client.post(HAZARDS, content=b"x" * (11 * 1024 * 1024))]
    assert [a.status_code for a in answers] == [500, 200, 200, 404, 401, 200, 413]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["referrer-policy"] == "no-referrer", answer.request.url


def test_html_pages_carry_a_strict_content_security_policy(client_as) -> None:
    from app.headers import DASHBOARD_POLICY

    anonymous = client_as(None)
    for path in ("/dashboard", "/dashboard/KHM"):
        page = anonymous.get(path)
        assert page.headers["content-security-policy"] == DASHBOARD_POLICY
        assert page.headers["x-frame-options"] == "DENY"
        policy = dict(d.strip().split(" ", 1) for d in DASHBOARD_POLICY.split(";"))
        assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
        assert "unsafe" not in DASHBOARD_POLICY
        assert "<script>" not in page.text and "style=" not in page.text  # nothing inline for the policy to block
    docs = anonymous.get("/docs")
    assert docs.status_code == 200
    assert "https:" not in docs.headers["content-security-policy"]  # Swagger UI is served by the service itself
    assert "https:" not in docs.text and "<script>" not in docs.text
    assert "content-security-policy" not in anonymous.get("/conformance").headers


def test_options_and_405_list_the_methods_of_the_path(client) -> None:
    answer = client.options("/api/v1/states/KHM/hazards")
    assert answer.status_code == 204 and answer.headers["allow"] == "GET, HEAD, OPTIONS, POST"  # HEAD where GET is
    refused = client.delete("/api/v1/states/KHM/hazards")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.options(f"/api/v1/keys/{UNKNOWN_ID}").headers["allow"] == "DELETE, OPTIONS"
    assert client.patch("/api/v1/keys").headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert client.options("/api/v1/nothing-here").status_code == 404


def test_serve_sends_no_server_header_and_prints_the_demo_key_once_outside_the_log(database_url) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    from datetime import date
    from pathlib import Path

    import httpx

    from app import database, ledger
    from app.audit import Actor
    from app.geometry import parse_crs, read_polygonal

    # One hazard: `serve --demo` then loads no demo data (fast), but still creates the admin key.
    with database.session() as session:
        ledger.record_hazards(session, "KHM", [ledger.NewHazard(
            external_id="KHM-SERVE-1", classification="SHA", recorded_on=date(2020, 1, 1),
            geometry=read_polygonal(rect(0, 0, 100, 100), parse_crs("EPSG:32648")))], Actor(name="test"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "LANDRELEASE_DATA_DIR"}
    env.update(DATABASE_URL=database_url, LANDRELEASE_LOG_LEVEL="debug")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
                            cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer.status_code == 200
        assert "server" not in answer.headers and "date" in answer.headers
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    secrets_printed = [line.strip() for line in stdout.splitlines() if line.strip().startswith("lr_")]
    assert len(secrets_printed) == 1, stdout
    assert "DEMO ADMIN API KEY" in stdout
    assert secrets_printed[0] not in stderr and "lr_" not in stderr  # logging (stderr) never shows it
    assert "created an admin API key" in stderr


# --- parameters as OpenAPI declares them -------------------------------------------------------------------
def test_every_iso3_path_parameter_declares_its_pattern(client) -> None:
    from app.params import ISO3_PATTERN

    document = client.get("/openapi.json").json()
    declared = [(path, p["schema"]) for path, item in document["paths"].items() for op in item.values()
                for p in op.get("parameters", []) if p["name"] == "iso3" and p["in"] == "path"]
    assert len(declared) >= 12
    assert all(schema.get("pattern") == ISO3_PATTERN for _, schema in declared), declared
    assert client.get("/api/v1/states/K1/summary").status_code == 422
    assert client.post("/api/v1/states/KHM1/hazards", json={}).status_code == 422


def test_dates_are_iso_dates_not_numbers(client) -> None:
    post_hazard(client, "KHM-DATE-2", rect(0, 0, 100, 100))
    for path in ("/api/v1/states/KHM/summary", "/api/v1/summary", HAZARDS, "/api/v1/states/KHM/chart.json"):
        for number in ("0", "1700000000", "0.5"):
            problem = _problem(client.get(path, params={"as_of": number}), 422)
            assert problem["errors"][0]["field"] == "query/as_of" and "YYYY-MM-DD" in problem["detail"], path
        assert client.get(path, params={"as_of": "2024-01-31"}).status_code == 200, path
    for number in ("0.5", "0", "1700000000"):
        assert "ISO 8601" in _problem(client.get("/api/v1/audit", params={"since": number}), 422)["detail"]
    for instant, matched in (("2000-01-01", 1), ("2000-01-01T00:00:00Z", 1), ("2999-01-01T00:00:00+02:00", 0)):
        assert client.get("/api/v1/audit", params={"since": instant}).json()["numberMatched"] == matched
    feature = hazard_feature("KHM-DATE-3", rect(200, 0, 100, 100), recorded_on=0)
    problem = _problem(client.post(HAZARDS, json=feature, params={"crs": "EPSG:32648"}), 422)
    assert "YYYY-MM-DD" in problem["detail"]


def test_csv_answers_are_declared(client) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/api/v1/summary", "/api/v1/states/{iso3}/report", "/api/v1/states/{iso3}/export"):
        assert "text/csv" in document["paths"][path]["get"]["responses"]["200"]["content"], path
    answer = client.get("/api/v1/summary", params={"format": "csv"})
    assert answer.headers["content-type"].startswith("text/csv")


def test_an_ogc_parameter_given_twice_is_a_400(client) -> None:
    post_hazard(client, "KHM-TWICE-1", rect(0, 0, 100, 100))
    for path, query, name in (("/collections/hazardous_areas/items", "limit=0&limit=", "limit"),
                              ("/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0", "state=KHM&state=LAO",
                               "state")):
        problem = _problem(client.get(f"{path}?{query}"), 400)
        assert problem["invalid_params"][0]["name"] == name and "more than once" in problem["detail"]
    assert client.get("/collections/hazardous_areas/items?limit=1").status_code == 200


def test_numbers_in_bodies_are_json_numbers(client) -> None:
    hazard = post_hazard(client, "KHM-NUM-1", rect(0, 0, 100, 100))
    for items in ({"ap_mines": True}, {"ap_mines": "3"}):
        problem = _problem(client.post(f"/api/v1/hazards/{hazard['id']}/events", params={"crs": "EPSG:32648"},
                                       json={"kind": "clearance", "date": "2020-01-01", "geometry": rect(0, 0, 10, 10),
                                             "items_destroyed": items}), 422)
        assert problem["errors"][0]["field"] == "body/items_destroyed/ap_mines"
    decision = {"kind": "extension", "decided_on": "2020-11-20", "deadline": "2030-01-01"}
    assert client.post("/api/v1/states/KHM/article5/decisions", json=decision).status_code == 201
    for milestone in ({"year": 2026, "area_m2": 5.0, "areas": True}, {"year": "2026", "area_m2": 5.0},
                      {"year": 2026, "area_m2": False}):
        assert client.put("/api/v1/states/KHM/milestones", json=[milestone]).status_code == 422, milestone
    accepted = client.put("/api/v1/states/KHM/milestones", json=[{"year": 2026, "area_m2": 5, "areas": 2}])
    assert accepted.status_code == 200, accepted.text


def test_an_unreadable_upload_names_no_server_path(client) -> None:
    # GDAL's message names the file where the upload was unpacked (/tmp/landrelease-import-*/...).
    # Content that passes the sniffing (it starts as GeoJSON does) so that GDAL itself fails on it.
    files = {"file": ("hazards.geojson", b'{"type": "FeatureCollection", "features": [' + b"\x00garbage" * 100,
                      "application/geo+json")}
    problem = _problem(client.post("/api/v1/states/KHM/imports", files=files), 422)
    text_ = json.dumps(problem)
    assert "hazards.geojson" in text_, text_
    assert "/tmp" not in text_ and "landrelease-import" not in text_, text_


def test_the_api_documentation_opens_without_internet(live_server, artifacts_dir) -> None:
    """/docs in a real browser on this offline machine: Swagger UI comes from the service, draws every
    operation of the OpenAPI document, and the page's policy blocks nothing it needs."""
    from tests.headless_chromium import Chromium

    with Chromium() as browser:
        browser.open(f"{live_server}/docs")
        assert browser.wait_for("document.querySelectorAll('.opblock').length > 20") is True, browser.console
        browser.screenshot(artifacts_dir / "api_docs.png")
        title = browser.evaluate("document.querySelector('.info .title').textContent")
        assert title.startswith("landrelease"), title
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations


def test_an_empty_ogc_standard_parameter_is_a_400(client) -> None:
    post_hazard(client, "KHM-EMPTY-1", rect(0, 0, 100, 100))
    for path, name in (("/collections/hazardous_areas/items", "limit"),
                       ("/collections/hazardous_areas/tiles/WebMercatorQuad/0/0/0", "bbox")):
        problem = _problem(client.get(f"{path}?{name}="), 400)
        assert problem["invalid_params"][0]["name"] == name and "empty" in problem["detail"]
    # this service's own parameters: empty is the parameter left out, as their schemas declare
    assert client.get("/collections/hazardous_areas/items?geometry=&status=").status_code == 200
