"""Hostile and broken input: every answer is problem+json saying what to fix, never a 5xx or a stack trace."""
from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import database
from app.database import get_session
from app.geometry import geodesic_area_m2, polygonal_part
from app.settings import Settings, get_settings
from tests.conftest import auth_headers
from tests.ledger_scenarios import UTM48N, hazard_feature, post_hazard, rect

SQUARE = [[102.90, 13.00], [102.91, 13.00], [102.91, 13.01], [102.90, 13.01], [102.90, 13.00]]
HAZARDS = "/api/v1/states/KHM/hazards"


def _feature(geometry: Any, external_id: str = "KHM-H-1") -> dict[str, Any]:
    return hazard_feature(external_id, geometry)


def _problem(response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    text_ = json.dumps(body).lower()
    for fragment in fragments:
        assert fragment.lower() in text_, (fragment, body)
    assert "traceback" not in text_ and "select " not in text_ and "insert " not in text_
    return body


def _stored(client) -> int:
    return client.get(HAZARDS).json()["numberMatched"]


# --- geometry edge cases --------------------------------------------------------------------------
@pytest.mark.parametrize("raw,fragment", [
    ('[[[102.9, 13.0], [NaN, 13.0], [102.91, 13.01], [102.9, 13.0]]]', "finite"),
    ('[[[102.9, 13.0], [Infinity, 13.0], [102.91, 13.01], [102.9, 13.0]]]', "finite"),
    ('[[[102.9, 13.0], [-Infinity, 13.0], [102.91, 13.01], [102.9, 13.0]]]', "finite"),
])
def test_nan_and_infinite_coordinates(client, raw: str, fragment: str) -> None:
    body = ('{"type": "Feature", "properties": {"external_id": "KHM-NAN", "classification": "SHA", '
            '"recorded_on": "2019-01-01"}, "geometry": {"type": "Polygon", "coordinates": ' + raw + '}}')
    response = client.post(HAZARDS, content=body, headers={"content-type": "application/json"})
    problem = _problem(response, 422, fragment)
    assert problem["invalid_features"][0]["errors"][0]["field"].startswith("geometry.coordinates")
    assert _stored(client) == 0


@pytest.mark.parametrize("geometry,fragment,field", [
    ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "not closed", "geometry.coordinates[0]"),
    ({"type": "Polygon", "coordinates": [[SQUARE[0], SQUARE[1], SQUARE[0]]]}, "at least 4 positions",
     "geometry.coordinates[0]"),
    ({"type": "Polygon", "coordinates": [[[200.0, 13.0], [201.0, 13.0], [201.0, 14.0], [200.0, 13.0]]]},
     "out of range", "geometry.coordinates"),
    # latitude, longitude instead of longitude, latitude (Cambodia): called out as a likely swap.
    ({"type": "Polygon", "coordinates": [[[p[1], p[0]] for p in SQUARE]]}, "longitude first", "geometry.coordinates"),
    # Projected metres sent without naming their CRS.
    ({"type": "Polygon", "coordinates": rect(0, 0, 100, 100)["coordinates"]}, "crs=epsg", "geometry.coordinates"),
    # One ring crossing the antimeridian.
    ({"type": "Polygon", "coordinates": [[[179.9, -17.0], [-179.9, -17.0], [-179.9, -16.9], [179.9, -16.9],
                                          [179.9, -17.0]]]}, "antimeridian", "geometry.coordinates"),
    ({"type": "Polygon", "coordinates": []}, "empty", "geometry.coordinates"),
    ({"type": "MultiPolygon", "coordinates": []}, "empty", "geometry.coordinates"),
    ({"type": "MultiPolygon", "coordinates": [[]]}, "empty", "geometry.coordinates[0]"),
    ({"type": "Polygon"}, "empty", "geometry.coordinates"),
    ({"type": "GeometryCollection", "geometries": [{"type": "Polygon", "coordinates": [SQUARE]}]},
     "geometrycollection", "geometry"),
    ({"type": "Point", "coordinates": [102.9, 13.0]}, "polygon or multipolygon", "geometry.type"),
    ({"type": "Polygon", "coordinates": [[[102.9, 13.0], [102.91], [102.91, 13.01], [102.9, 13.0]]]}, "2 numbers",
     "geometry.coordinates[0][1]"),
    ({"type": "Polygon", "coordinates": [[[102.9, 13.0], ["102.91", 13.0], [102.91, 13.01], [102.9, 13.0]]]},
     "must be numbers", "geometry.coordinates[0][1]"),
    ({"type": "Polygon", "coordinates": [[[102.9, 13.0, 1.0, 2.0], [102.91, 13.0], [102.91, 13.01], [102.9, 13.0]]]},
     "at most 3", "geometry.coordinates[0][0]"),
    # A bow tie: self-intersecting.
    ({"type": "Polygon", "coordinates": [[[102.9, 13.0], [102.91, 13.01], [102.91, 13.0], [102.9, 13.01],
                                          [102.9, 13.0]]]}, "repair=true", "geometry"),
    # All points on a line: invalid (no area).
    ({"type": "Polygon", "coordinates": [[[102.9, 13.0], [102.91, 13.0], [102.92, 13.0], [102.9, 13.0]]]},
     "invalid geometry", "geometry"),
    # A square of 10 cm: less than a square metre after snapping.
    ({"type": "Polygon", "coordinates": [[[102.9, 13.0], [102.900001, 13.0], [102.900001, 13.000001],
                                          [102.9, 13.000001], [102.9, 13.0]]]}, "no area", "geometry"),
    (None, "geojson geometry object is required", "geometry"),
])
def test_geometry_edge_cases_are_refused_with_the_place_and_the_fix(client, geometry, fragment, field) -> None:
    problem = _problem(client.post(HAZARDS, json=_feature(geometry)), 422, fragment)
    errors = problem["invalid_features"][0]["errors"]
    assert errors[0]["field"] == field, errors
    assert _stored(client) == 0


def test_antimeridian_polygon_split_into_a_multipolygon_is_accepted(client) -> None:
    west = [[179.9, -17.0], [180.0, -17.0], [180.0, -16.9], [179.9, -16.9], [179.9, -17.0]]
    east = [[-180.0, -17.0], [-179.9, -17.0], [-179.9, -16.9], [-180.0, -16.9], [-180.0, -17.0]]
    geometry = {"type": "MultiPolygon", "coordinates": [[west], [east]]}
    # Fiji is not in the Article 5 list; the geometry rules are the same for every State. In KHM the polygon lies
    # in FJI: it goes in as a border polygon (app/places).
    response = client.post(HAZARDS, json=_feature(geometry), params={"border": "accept"})
    assert response.status_code == 201, response.text
    expected = geodesic_area_m2(polygonal_part(shape(geometry)))
    assert response.json()["hazards"][0]["baseline_area_m2"] == pytest.approx(expected, rel=1e-4)
    assert expected == pytest.approx(2 * 10.65e3 * 11.06e3, rel=0.05)  # two ~0.1 x 0.1 degree cells near 17 S


def test_polygon_with_a_hole_counts_only_the_ring_between(client) -> None:
    hole = [[102.903, 13.003], [102.903, 13.006], [102.906, 13.006], [102.906, 13.003], [102.903, 13.003]]
    geometry = {"type": "Polygon", "coordinates": [SQUARE, hole]}
    response = client.post(HAZARDS, json=_feature(geometry))
    assert response.status_code == 201, response.text
    outer = geodesic_area_m2(polygonal_part(shape({"type": "Polygon", "coordinates": [SQUARE]})))
    inner = geodesic_area_m2(polygonal_part(shape({"type": "Polygon", "coordinates": [hole]})))
    assert response.json()["hazards"][0]["baseline_area_m2"] == pytest.approx(outer - inner, rel=1e-5)
    assert inner / outer == pytest.approx(0.09, rel=0.01)


def test_3d_coordinates_are_accepted_with_z_dropped_and_said_so(client) -> None:
    geometry = {"type": "Polygon", "coordinates": [[[x, y, 12.5] for x, y in SQUARE]]}
    response = client.post(HAZARDS, json=_feature(geometry))
    assert response.status_code == 201, response.text
    hazard = response.json()["hazards"][0]
    assert any("Z values were dropped" in w for w in hazard["warnings"])
    stored = client.get(f"/api/v1/hazards/{hazard['id']}").json()["geometry"]["coordinates"]
    assert all(len(p) == 2 for part in stored for ring in part for p in ring)


def test_invalid_geometry_is_repaired_only_on_request(client) -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[102.9, 13.0], [102.91, 13.01], [102.91, 13.0], [102.9, 13.01],
                                                   [102.9, 13.0]]]}
    response = client.post(HAZARDS, json=_feature(bow_tie), params={"repair": "true"})
    assert response.status_code == 201, response.text
    repair = response.json()["hazards"][0]["repair"]
    assert "self-intersection" in repair["reason"].lower()
    assert repair["area_after_m2"] > 0


@pytest.mark.parametrize("crs,fragment", [
    ("EPSG:999999", "not a known epsg code"),
    ("EPSG:abc", "not a crs this service understands"),
    ("WGS84; DROP TABLE states", "not a crs this service understands"),
    ("urn:ogc:def:crs:EPSG::0", "not a known epsg code"),
])
def test_unknown_crs(client, crs: str, fragment: str) -> None:
    _problem(client.post(HAZARDS, json=_feature({"type": "Polygon", "coordinates": [SQUARE]}), params={"crs": crs}),
             400, fragment)
    assert _stored(client) == 0


# --- limits -------------------------------------------------------------------------------------
def test_vertices_per_geometry_limit(client, limits) -> None:
    limits(max_vertices_per_geometry=10)
    ring = [[102.9 + 0.001 * i, 13.0] for i in range(10)] + [[102.91, 13.01], [102.9, 13.01], [102.9, 13.0]]
    _problem(client.post(HAZARDS, json=_feature({"type": "Polygon", "coordinates": [ring]})), 422,
             "13 vertices", "limit is 10")
    assert client.post(HAZARDS, json=_feature({"type": "Polygon", "coordinates": [SQUARE]})).status_code == 201


def test_vertices_limit_applies_to_events_too(client, limits) -> None:
    hazard = post_hazard(client, "KHM-V-1", rect(0, 0, 100, 100))
    limits(max_vertices_per_geometry=4)
    response = client.post(f"/api/v1/hazards/{hazard['id']}/events", params={"crs": UTM48N},
                           json={"kind": "clearance", "date": "2020-01-01", "geometry": rect(0, 0, 10, 10)})
    _problem(response, 422, "5 vertices", "limit is 4")


def test_features_per_request_limit(client, limits) -> None:
    limits(max_features_per_request=2)
    collection = {"type": "FeatureCollection", "features": [
        hazard_feature(f"KHM-F-{i}", rect(200 * i, 0, 100, 100)) for i in range(3)]}
    _problem(client.post(HAZARDS, json=collection, params={"crs": UTM48N}), 413, "3 features", "limit is 2")
    assert _stored(client) == 0


def test_json_body_size_limit_declared_length(client, limits) -> None:
    limits(max_body_bytes=2000)
    collection = {"type": "FeatureCollection", "features": [
        hazard_feature(f"KHM-B-{i}", rect(200 * i, 0, 100, 100)) for i in range(20)]}
    problem = _problem(client.post(HAZARDS, json=collection, params={"crs": UTM48N}), 413, "limit of 2000 bytes",
                       "request body")
    assert problem["limit_bytes"] == 2000
    assert _stored(client) == 0


def test_json_body_size_limit_streamed_without_length(client, limits) -> None:
    limits(max_body_bytes=2000)
    payload = json.dumps({"type": "FeatureCollection", "features": [
        hazard_feature(f"KHM-S-{i}", rect(200 * i, 0, 100, 100)) for i in range(20)]}).encode()

    def chunks():
        for i in range(0, len(payload), 500):
            yield payload[i:i + 500]

    response = client.post(HAZARDS, content=chunks(), params={"crs": UTM48N},
                           headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _problem(response, 413, "limit of 2000 bytes")
    assert _stored(client) == 0


def test_default_limits_are_the_documented_ones() -> None:
    settings = Settings()
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.max_upload_bytes == 200 * 1024 * 1024
    assert settings.public_read is False


def test_upload_size_limit(client, limits) -> None:
    limits(max_body_bytes=1000, max_upload_bytes=5000)
    files = {"file": ("hazards.geojson", b"x" * 6000, "application/geo+json")}
    _problem(client.post("/api/v1/states/KHM/imports", files=files), 413, "upload", "limit of 5000 bytes")
    # A multipart body under the upload limit passes the size check even though it is over the JSON limit.
    small = client.post("/api/v1/states/KHM/imports", files={"file": ("h.geojson", b"x" * 2000, "text/plain")})
    assert small.status_code != 413


def test_page_size_limit(client) -> None:
    problem = _problem(client.get(HAZARDS, params={"limit": 100_000}), 422, "limit")
    assert problem["errors"][0]["field"] == "query/limit"
    _problem(client.get(HAZARDS, params={"offset": -1}), 422, "offset")


# --- malformed requests -------------------------------------------------------------------------
@pytest.mark.parametrize("content,status,fragment", [
    ('{"type": "Feature", ', 422, "json"),
    ("[]", 422, "valid dictionary"),
    ('"just a string"', 422, "body"),
    ('{"type": "FeatureCollection", "features": []}', 422, "no features"),
    ('{"type": "FeatureCollection", "features": [42]}', 422, "each item must be a geojson feature"),
    ("[" * 100_000 + "]" * 100_000, 400, "error parsing the body"),
])
def test_malformed_bodies(client, content: str, status: int, fragment: str) -> None:
    response = client.post(HAZARDS, content=content, headers={"content-type": "application/json"})
    _problem(response, status, fragment)


def test_property_validation_names_the_field(client) -> None:
    feature = hazard_feature("x" * 300, {"type": "Polygon", "coordinates": [SQUARE]}, classification="XYZ",
                             recorded_on="2019-02-30")
    problem = _problem(client.post(HAZARDS, json=feature), 422)
    fields = {e["field"] for e in problem["invalid_features"][0]["errors"]}
    assert {"properties.external_id", "properties.classification", "properties.recorded_on"} <= fields


def test_event_body_validation_names_the_field(client) -> None:
    hazard = post_hazard(client, "KHM-E-1", rect(0, 0, 100, 100))
    response = client.post(f"/api/v1/hazards/{hazard['id']}/events", params={"crs": UTM48N},
                           json={"kind": "demolition", "date": "2020-13-01", "geometry": rect(0, 0, 10, 10),
                                 "items_destroyed": {"ap_mines": -1}})
    problem = _problem(response, 422)
    fields = {e["field"] for e in problem["errors"]}
    assert {"body/kind", "body/date", "body/items_destroyed/ap_mines"} <= fields


def test_numbers_too_large_for_the_database_are_422(client) -> None:
    hazard = post_hazard(client, "KHM-N-1", rect(0, 0, 100, 100))
    response = client.post(f"/api/v1/hazards/{hazard['id']}/events", params={"crs": UTM48N},
                           json={"kind": "clearance", "date": "2020-01-01", "geometry": rect(0, 0, 10, 10),
                                 "items_destroyed": {"ap_mines": 10 ** 30}})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]) == 0


def test_identifiers_never_reach_sql_as_text(client) -> None:
    _problem(client.get("/api/v1/states/KHM'; DROP TABLE hazardous_areas; --/hazards"), 422, "path/iso3")
    _problem(client.get("/api/v1/states/XYZ/hazards"), 404, "unknown state")
    _problem(client.get("/api/v1/hazards/1 OR 1=1"), 422, "hazard_id")
    _problem(client.get(HAZARDS, params={"classification": "SHA' OR '1'='1"}), 422, "classification")
    _problem(client.get("/api/v1/audit", params={"state": "KHM' --"}), 422, "state")
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM states")).scalar_one() > 20


# --- the database side --------------------------------------------------------------------------
def test_every_connection_has_the_statement_timeout(client) -> None:
    with database.get_engine().connect() as conn:
        value = conn.execute(text("SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'")).scalar_one()
    assert value == get_settings().statement_timeout_ms


def test_a_query_over_the_statement_timeout_is_cancelled_and_answered_503(database_url: str) -> None:
    from app.main import create_app
    from tests.conftest import make_api_key

    secret = make_api_key("admin")
    database.configure(database_url, Settings(LANDRELEASE_STATEMENT_TIMEOUT_MS=300))
    try:
        app = create_app()

        @app.get("/slow-for-the-test")
        def slow(session: Session = Depends(get_session)) -> dict:
            session.execute(text("SELECT pg_sleep(3)"))
            return {}

        with TestClient(app, headers=auth_headers(secret)) as slow_client:
            _problem(slow_client.get("/slow-for-the-test"), 503, "took too long")
            assert slow_client.get("/health").status_code == 200
    finally:
        database.configure(database_url)


def test_unexpected_errors_show_no_internals(client) -> None:
    from app.main import create_app

    app = create_app()

    @app.get("/broken-for-the-test")
    def broken() -> dict:
        raise RuntimeError("secret internal detail /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as broken_client:
        response = broken_client.get("/broken-for-the-test")
    body = _problem(response, 500, "unexpected error")
    assert "secret internal detail" not in json.dumps(body)


@pytest.mark.parametrize("path", ["/api/v1/summary?as_of=0001-01-02", "/api/v1/states/KHM/summary?as_of=0001-01-02",
                                  "/api/v1/states/KHM/summary?as_of=9999-12-31"])
def test_extreme_dates_are_4xx_not_5xx(client, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
    if response.status_code != 200:
        _problem(response, response.status_code)


def test_ogc_identifiers_and_filters_are_whitelisted(client) -> None:
    _problem(client.get("/collections/hazardous_areas;DROP TABLE states/items"), 404)
    _problem(client.get("/collections/pg_catalog.pg_user/items"), 404)
    _problem(client.get("/collections/hazardous_areas/items", params={"status": "active' OR '1'='1"}), 400, "status")
    _problem(client.get("/collections/hazardous_areas/items", params={"state": "KHM'--"}), 400, "state")
    _problem(client.get("/collections/hazardous_areas/items", params={"external_id; DROP": "x"}), 400)
    _problem(client.get("/collections/hazardous_areas/items", params={"bbox": "1,2,3,NaN"}), 400, "bbox")
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM states")).scalar_one() > 20


def test_audit_since_accepts_a_plain_date(client) -> None:
    post_hazard(client, "KHM-DATE-1", rect(0, 0, 100, 100))
    assert client.get("/api/v1/audit", params={"since": "2000-01-01"}).json()["numberMatched"] == 1
    assert client.get("/api/v1/audit", params={"since": "2999-01-01"}).json()["numberMatched"] == 0
