"""HTTP hygiene: compression (gzip, brotli) of pages, documents and tiles; ETag and 304; HEAD; CORS."""
from __future__ import annotations

import gzip
import http.client
import json
import math
from typing import Any
from urllib.parse import urlsplit

import brotli
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import create_engine, text

from tests.conftest import auth_headers
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect

_TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def post_many(client, n: int) -> list[dict]:
    features = [hazard_feature(f"H-{i:05d}", rect(i * 100.0, -5000.0, 50.0, 50.0)) for i in range(n)]
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json={"type": "FeatureCollection", "features": features})
    assert response.status_code == 201, response.text
    return response.json()["hazards"]


def tile_of(x: float, y: float, z: int) -> tuple[int, int]:
    """The WebMercatorQuad tile at zoom z holding a UTM 48N position."""
    lon, lat = _TO_LL.transform(x, y)
    return (int((lon + 180) / 360 * 2 ** z),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z))


def raw_get(live_server: str, key: str, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
    """The bytes as they come over the wire (http.client decodes nothing)."""
    parts = urlsplit(live_server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", path, headers={**auth_headers(key), **headers})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def without_timestamp(document: bytes) -> dict:
    body = json.loads(document)
    body.pop("timeStamp")
    return body


def test_an_items_page_goes_compressed_with_its_length_and_the_same_features(client, live_server, admin_key) -> None:
    post_many(client, 300)
    path = "/collections/hazardous_areas/items?limit=300"
    plain_response, plain = raw_get(live_server, admin_key, path, **{"Accept-Encoding": "identity"})
    gzip_response, gzipped = raw_get(live_server, admin_key, path, **{"Accept-Encoding": "gzip"})
    br_response, brotlied = raw_get(live_server, admin_key, path, **{"Accept-Encoding": "gzip;q=0.5, br"})
    assert plain_response.getheader("content-encoding") is None
    assert gzip_response.getheader("content-encoding") == "gzip"
    assert br_response.getheader("content-encoding") == "br"
    for response, body in ((plain_response, plain), (gzip_response, gzipped), (br_response, brotlied)):
        assert response.status == 200 and int(response.getheader("content-length")) == len(body)
        assert "Accept-Encoding" in response.getheader("vary")
    document = without_timestamp(plain)
    assert without_timestamp(gzip.decompress(gzipped)) == document
    assert without_timestamp(brotli.decompress(brotlied)) == document
    assert document["numberReturned"] == 300
    assert len(gzipped) < len(plain) / 4 and len(brotlied) < len(gzipped)


def test_a_compressed_page_keeps_the_memory_bound(client, monkeypatch) -> None:
    """Past SPOOL_MEMORY_BYTES the page, and its compressed copy, wait on disk; the copy comes out whole."""
    from app.ogc import collections, pages, params
    from app.ogc import items as features

    post_many(client, 300)
    monkeypatch.setattr(pages, "SPOOL_MEMORY_BYTES", 1000)
    query = params.ItemsQuery(collection=collections.COLLECTIONS["hazardous_areas"], limit=300)
    page = features.make_page(query, lambda *link_args: [])
    assert page.spool._rolled
    compressed = page.encoded("gzip")
    assert page.spool.closed and compressed.spool._rolled and compressed.encoding == "gzip"
    body = b"".join(compressed.chunks())
    assert len(body) == compressed.size and compressed.spool.closed
    assert json.loads(gzip.decompress(body))["numberReturned"] == 300


def test_documents_tiles_and_single_items_are_compressed(client, live_server, admin_key) -> None:
    hazard = post_many(client, 40)[0]  # a row of 40 squares 5 km south of the UTM 48N origin, 4 km long
    x, y = tile_of(502_000, 1_445_000, 10)
    for path in ("/collections", "/collections/hazardous_areas", "/api", "/tileMatrixSets/WebMercatorQuad",
                 f"/collections/hazardous_areas/items/{hazard['id']}",
                 f"/collections/hazardous_areas/tiles/WebMercatorQuad/10/{x}/{y}"):
        plain_response, plain = raw_get(live_server, admin_key, path)
        response, body = raw_get(live_server, admin_key, path, **{"Accept-Encoding": "gzip"})
        assert response.status == 200, path
        assert response.getheader("content-encoding") == "gzip", path
        assert int(response.getheader("content-length")) == len(body) < len(plain), path
        assert gzip.decompress(body) == plain, path
    # streams (the packaged files, exports) and small answers are left as they are
    for path, status in (("/dashboard/static/vendor/maplibre-gl.js", 200), ("/collections/minefields", 404)):
        response, body = raw_get(live_server, admin_key, path, **{"Accept-Encoding": "gzip"})
        assert response.status == status and response.getheader("content-encoding") is None, path


def test_etag_and_304_until_the_ledger_changes(client) -> None:
    hazard = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    paths = ["/collections", "/collections/hazardous_areas", "/collections/hazardous_areas/items?limit=5",
             f"/collections/hazardous_areas/items/{hazard['id']}", "/collections/hazardous_areas/tiles/WebMercatorQuad",
             "/collections/hazardous_areas/tiles/WebMercatorQuad/12/{}/{}".format(*tile_of(500_500, 1_450_500, 12))]
    tags = {}

    def revalidated(path: str) -> tuple[str, Any]:
        """A GET and its revalidation. A weak ETag is of the database's snapshot, which any commit in the cluster
        moves (autovacuum's ANALYZE too): when one came between the two requests, the pair is taken again."""
        for _ in range(3):
            first = client.get(path)
            assert first.status_code == 200, path
            again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
            if again.status_code == 304:
                break
        return first, again

    for path in paths:
        first, again = revalidated(path)
        tag = tags[path] = first.headers["etag"]
        # a single feature of the ledger's layers has a strong ETag (If-Match on its writes: tests/test_ogc_part4.py)
        assert tag.startswith('"' if "/items/" in path else 'W/"') and first.headers["cache-control"] == "no-cache"
        assert "Authorization" in first.headers["vary"]
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag, path
        assert client.get(path, headers={"If-None-Match": f'"other", {tag}'}).status_code == 304
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert "last-modified" in client.get("/collections").headers
    post_event(client, hazard["id"], "clearance", "2020-01-01", rect(0, 0, 400, 1000))
    for path in paths:
        changed = client.get(path, headers={"If-None-Match": tags[path]})
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != tags[path]
    remaining = client.get(f"/collections/hazardous_areas/items/{hazard['id']}").json()["properties"]
    assert remaining["remaining_area_m2"] < 1_000_000 * 0.7


def test_a_tile_etag_changes_after_a_write_the_service_did_not_make(client, database_url) -> None:
    # the validator is the database's snapshot: a write by another process (another service instance, a
    # script, psql) changes it as one through this service does
    hazard = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    path = "/collections/hazardous_areas/tiles/WebMercatorQuad/12/{}/{}".format(*tile_of(500_500, 1_450_500, 12))
    tag = client.get(path).headers["etag"]
    assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE hazardous_areas SET name = 'renamed elsewhere' WHERE id = :id"),
                         {"id": hazard["id"]})
    finally:
        engine.dispose()
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    layer = mapbox_vector_tile.decode(changed.content)["hazardous_areas"]
    assert [f["properties"]["name"] for f in layer["features"]] == ["renamed elsewhere"]


def test_the_etag_belongs_to_the_request_and_the_key(client, client_as) -> None:
    post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    viewer = client_as("viewer", "KHM")
    admin_tag = client.get("/collections/hazardous_areas").headers["etag"]
    viewer_answer = viewer.get("/collections/hazardous_areas", headers={"If-None-Match": admin_tag})
    assert viewer_answer.status_code == 200 and viewer_answer.headers["etag"] != admin_tag
    assert "last-modified" not in viewer_answer.headers  # a State's key does not learn when others wrote
    page = client.get("/collections/hazardous_areas/items", params={"limit": 5}).headers["etag"]
    other_page = client.get("/collections/hazardous_areas/items", params={"limit": 6}).headers["etag"]
    assert page != other_page


def test_head_answers_as_get_without_the_body(client, live_server, admin_key) -> None:
    post_many(client, 50)
    for path in ("/", "/conformance", "/collections", "/collections/hazardous_areas/items?limit=50", "/api",
                 "/dashboard", "/health"):
        answers = {}
        for method in ("GET", "HEAD"):
            parts = urlsplit(live_server)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            # a page's timeStamp may change between the two: its gzip length with it, its plain length never
            encoding = "identity" if "/items" in path else "gzip"
            conn.request(method, path, headers={**auth_headers(admin_key), "Accept-Encoding": encoding})
            response = conn.getresponse()
            answers[method] = (response.status, response.getheader("content-type"),
                               response.getheader("content-length"), response.getheader("content-encoding"),
                               response.read())
            conn.close()
        assert answers["HEAD"][:4] == answers["GET"][:4] and answers["GET"][0] == 200, path
        assert answers["HEAD"][4] == b"" and len(answers["GET"][4]) > 0, path
    allow = client.options("/collections/hazardous_areas/items").headers["allow"]
    assert "HEAD" in allow.split(", ") and "GET" in allow.split(", ")
    assert client.head("/collections/hazardous_areas/items/not-a-uuid").status_code == 404


@pytest.fixture
def cors_client(limits, admin_key):
    def make(origins: str) -> TestClient:
        from app.main import create_app

        limits(cors_origins=origins)
        return TestClient(create_app(), headers=auth_headers(admin_key))

    return make


def test_cors_only_for_the_configured_origins(cors_client) -> None:
    closed = cors_client("")
    assert "access-control-allow-origin" not in closed.get("/collections",
                                                           headers={"Origin": "https://maps.example.org"}).headers
    open_to_one = cors_client("https://maps.example.org")
    read = open_to_one.get("/collections", headers={"Origin": "https://maps.example.org"})
    assert read.headers["access-control-allow-origin"] == "https://maps.example.org"
    assert "ETag" in read.headers["access-control-expose-headers"]
    preflight = open_to_one.options("/collections/hazardous_areas/items", headers={
        "Origin": "https://maps.example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert preflight.status_code == 200 and "GET" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["x-content-type-options"] == "nosniff"
    other = open_to_one.get("/collections", headers={"Origin": "https://elsewhere.example.com"})
    assert "access-control-allow-origin" not in other.headers
    anyone = cors_client("*").get("/collections", headers={"Origin": "https://elsewhere.example.com"})
    assert anyone.headers["access-control-allow-origin"] == "*"
    # a plain OPTIONS (no preflight) still says what the path allows
    assert "GET" in open_to_one.options("/collections").headers["allow"]
