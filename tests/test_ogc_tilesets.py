"""OGC API - Tiles metadata: tile matrix sets, tileset lists and documents, TileJSON, and a real client
(GDAL's OGCAPI driver) finding the tiles through them.

Two KHM hazards of the tiles tests (UTM 48N squares near 105 E, 13.1 N) and a THA one 5 km north.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import mapbox_vector_tile
import pytest
from pyproj import Transformer
from sqlalchemy.orm import Session

from app import access, database
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import UTM48N, post_hazard, rect

MVT = "application/vnd.mapbox-vector-tile"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


@pytest.fixture
def ledger(client) -> dict:
    a = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), contamination=["AP_MINE", "AV_MINE"])
    b = post_hazard(client, "KHM-B", rect(1500, 0, 400, 400), classification="CHA")
    t = post_hazard(client, "THA-A", rect(0, 5000, 200, 200), iso3="THA")
    lon, lat = _TO_LL.transform(500_500, 1_450_500)
    return {"a": a, "b": b, "t": t, "lon": lon, "lat": lat}


def link(document: dict, rel: str, type_: str = "application/json") -> str:
    return next(item["href"] for item in document["links"] if item["rel"] == rel and item["type"] == type_)


def mercator_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def crs84_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    span = 180 / 2 ** z
    return int((lon + 180) // span), int((90 - lat) // span)


def external_ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    layers = mapbox_vector_tile.decode(response.content)
    return {f["properties"]["external_id"] for f in layers["hazardous_areas"]["features"]}


def test_tile_matrix_sets_are_listed_and_defined(client) -> None:
    landing = client.get("/").json()
    listing = client.get(link(landing, "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes")).json()
    assert [t["id"] for t in listing["tileMatrixSets"]] == ["WebMercatorQuad", "WorldCRS84Quad"]
    mercator = client.get(link(listing["tileMatrixSets"][0], "self")).json()
    assert mercator["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert mercator["uri"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    first, last = mercator["tileMatrices"][0], mercator["tileMatrices"][-1]
    assert (first["id"], first["matrixWidth"], first["matrixHeight"]) == ("0", 1, 1)
    assert first["cellSize"] == pytest.approx(156543.03392804097)
    assert first["scaleDenominator"] == pytest.approx(559082264.028717)
    assert first["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892])
    assert (last["id"], last["matrixWidth"]) == ("24", 2 ** 24)
    degrees = client.get("/tileMatrixSets/WorldCRS84Quad").json()
    level0 = degrees["tileMatrices"][0]
    assert (level0["matrixWidth"], level0["matrixHeight"], level0["cellSize"]) == (2, 1, pytest.approx(0.703125))
    missing = client.get("/tileMatrixSets/WorldMercatorWGS84Quad")
    assert missing.status_code == 404 and "WebMercatorQuad" in missing.json()["detail"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset" in client.get("/conformance").json()[
        "conformsTo"]


@pytest.mark.parametrize("tms, tile_of", [("WebMercatorQuad", mercator_tile), ("WorldCRS84Quad", crs84_tile)])
def test_the_links_lead_from_a_collection_to_its_tiles(client, ledger, tms, tile_of) -> None:
    """Collection -> tileset list -> tileset -> tile matrix set and tile template -> a tile with the features."""
    collection = client.get("/collections/hazardous_areas").json()
    listing = client.get(link(collection, TILESETS_VECTOR)).json()
    summary = next(t for t in listing["tilesets"] if t["tileMatrixSetURI"].endswith(tms))
    assert summary["dataType"] == "vector"
    tileset = client.get(link(summary, "self")).json()
    assert client.get(link(tileset, TILING_SCHEME)).json()["id"] == tms
    template = link(tileset, "item", MVT)
    assert "{tileMatrix}" in template and "{tileRow}" in template and "{tileCol}" in template
    assert tileset["layers"][0]["id"] == "hazardous_areas"
    assert tileset["layers"][0]["propertiesSchema"]["properties"]["remaining_area_m2"]["type"] == "number"
    column, row = tile_of(ledger["lon"], ledger["lat"], 12)
    tile = client.get(template.replace("{tileMatrix}", "12").replace("{tileCol}", str(column))
                      .replace("{tileRow}", str(row)))
    assert external_ids(tile) == {"KHM-A", "KHM-B"}
    # the limits at each level cover the tiles holding features, and nothing of the world far away
    limits = {limit["tileMatrix"]: limit for limit in tileset["tileMatrixSetLimits"]}
    at_12 = limits["12"]
    assert at_12["minTileCol"] <= column <= at_12["maxTileCol"] and at_12["minTileRow"] <= row <= at_12["maxTileRow"]
    assert at_12["maxTileCol"] - at_12["minTileCol"] <= 1 and len(limits) == 25


def test_the_limits_follow_what_the_key_may_read(client, client_as, ledger) -> None:
    """The THA hazard 5 km north: a KHM viewer's tileset limits stop short of it."""
    everything = {t["tileMatrix"]: t for t in client.get(
        "/collections/hazardous_areas/tiles/WebMercatorQuad").json()["tileMatrixSetLimits"]}
    own = {t["tileMatrix"]: t for t in client_as("viewer", "KHM").get(
        "/collections/hazardous_areas/tiles/WebMercatorQuad").json()["tileMatrixSetLimits"]}
    assert own["16"]["minTileRow"] > everything["16"]["minTileRow"]  # rows count from the north
    assert client_as(None).get("/collections/hazardous_areas/tiles/WebMercatorQuad").status_code == 401


def test_a_tile_is_read_with_the_keys_scope_and_a_revoked_key_is_refused_at_once(client, ledger) -> None:
    """The tile looks its key up on its own connection, on every request."""
    secret = make_api_key("viewer", "KHM")
    x, y = mercator_tile(ledger["lon"], ledger["lat"], 10)  # the KHM squares and the THA one 5 km north
    path = f"/collections/hazardous_areas/tiles/WebMercatorQuad/10/{x}/{y}"
    assert external_ids(client.get(path)) == {"KHM-A", "KHM-B", "THA-A"}
    assert external_ids(client.get(path, headers=auth_headers(secret))) == {"KHM-A", "KHM-B"}
    with Session(database.get_engine()) as session:
        key = access.authenticate(session, secret)
        assert key is not None
        access.revoke_key(session, key.id)
    refused = client.get(path, headers=auth_headers(secret))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert client.get(path, headers=auth_headers("lr_not-a-key-anyone-was-given")).status_code == 401


def test_tilejson_carries_the_template_with_the_filters_and_the_fields(client, ledger) -> None:
    document = client.get("/collections/hazardous_areas/tiles/WebMercatorQuad/tilejson.json",
                          params={"classification": "CHA"}).json()
    assert document["tilejson"] == "3.0.0" and document["scheme"] == "xyz"
    fields = document["vector_layers"][0]["fields"]
    assert fields["external_id"] == "String" and fields["remaining_area_m2"] == "Number"
    assert fields["point_count"] == "Number"  # how many features a drawn feature stands for
    x, y = mercator_tile(ledger["lon"], ledger["lat"], 12)
    (template,) = document["tiles"]
    assert template.endswith("/{z}/{x}/{y}?classification=CHA")
    assert external_ids(client.get(template.replace("{z}", "12").replace("{x}", str(x))
                                   .replace("{y}", str(y)))) == {"KHM-B"}
    west, south, east, north = document["bounds"]
    assert west < ledger["lon"] < east and south < ledger["lat"] < north
    assert client.get("/collections/hazardous_areas/tiles/WebMercatorQuad/tilejson.json",
                      params={"classification": "XYZ"}).status_code == 400


def test_unknown_tile_matrix_set_and_tiles_outside_it(client, ledger) -> None:
    assert client.get("/collections/hazardous_areas/tiles/GoogleCRS84Quad").status_code == 404
    assert client.get("/collections/hazardous_areas/tiles/GoogleCRS84Quad/0/0/0").status_code == 404
    assert client.get("/collections/minefields/tiles").status_code == 404
    # WorldCRS84Quad has two columns at level 0, WebMercatorQuad one (a 1 km hazard is below a level-0 tile's
    # resolution: the tile may be empty, but it is a tile)
    assert client.get("/collections/hazardous_areas/tiles/WorldCRS84Quad/0/1/0").status_code in (200, 204)
    outside = client.get("/collections/hazardous_areas/tiles/WebMercatorQuad/0/1/0")
    assert outside.status_code == 400 and "outside 0..0" in outside.json()["detail"]
    assert client.get("/collections/hazardous_areas/tiles/WorldCRS84Quad/0/0/1").status_code == 400


_READ_WITH_PYOGRIO = """
import json, sys
import pyogrio
url = sys.argv[1]
frame = pyogrio.read_dataframe(url, layer="Zoom level 14")
print(json.dumps({"layers": [name for name, _ in pyogrio.list_layers(url)],
                  "features": [{**{k: row[k] for k in ("external_id", "classification", "contamination")},
                                "bounds": list(row.geometry.bounds)} for _, row in frame.iterrows()]}))
"""


def test_gdal_ogcapi_driver_reads_the_features_from_the_tiles(client, ledger, live_server, limits) -> None:
    """GDAL 3.12 (the pyogrio wheel) opens the collection through OGC API - Tiles: it follows
    tilesets-vector, picks WorldCRS84Quad, reads the limits, and a zoom level's layer holds the features.
    (Debian's GDAL 3.6 fetches the same documents but its OGCAPI driver is built without its vector-tile
    code, so it opens no layer from any server.) GDAL runs in a process of its own: pyogrio holds the
    interpreter while it reads, which would stop the live server's threads in this one."""
    limits(public_read=True)  # this GDAL sent no GDAL_HTTP_HEADERS key with its OGCAPI requests (401)
    url = f"OGCAPI:{live_server}/collections/hazardous_areas"
    run = subprocess.run([sys.executable, "-c", _READ_WITH_PYOGRIO, url], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["layers"] == [f"Zoom level {z}" for z in range(25)]
    assert {f["external_id"] for f in result["features"]} == {"KHM-A", "KHM-B", "THA-A"}
    pieces = [f for f in result["features"] if f["external_id"] == "KHM-A"]  # one per tile it lies in
    assert {(f["classification"], f["contamination"]) for f in pieces} == {("SHA", "AP_MINE,AV_MINE")}
    west, south = min(f["bounds"][0] for f in pieces), min(f["bounds"][1] for f in pieces)
    east, north = max(f["bounds"][2] for f in pieces), max(f["bounds"][3] for f in pieces)
    assert west < ledger["lon"] < east and south < ledger["lat"] < north  # in CRS84 degrees
    assert east - west == pytest.approx(1000 / 108_000, rel=0.05)  # 1 km at 13 N in degrees of longitude
