"""Vector tiles (ST_AsMVT) decoded back with mapbox-vector-tile."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import pytest
from pyproj import Transformer
from sqlalchemy import text

from app import database
from app.ogc.collections import COLLECTIONS
from app.ogc.params import read_items_query
from app.ogc.tiles import BUFFER, EXTENT, tile_sql
from app.ogc.tilesets import TILE_MATRIX_SETS
from tests.ledger_scenarios import UTM48N, post_event, post_hazard, rect

MVT = "application/vnd.mapbox-vector-tile"
_TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture
def ledger(client) -> dict:
    a = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), contamination=["AP_MINE", "AV_MINE"])
    b = post_hazard(client, "KHM-B", rect(1500, 0, 400, 400), classification="CHA")
    e = post_event(client, a["id"], "clearance", "2018-03-01", rect(0, 0, 400, 1000), items_destroyed={"ap_mines": 7})
    lon, lat = _TO_LL.transform(500_500, 1_450_500)
    return {"a": a, "b": b, "e": e, "lon": lon, "lat": lat}


def get_tile(client, collection: str, z: int, x: int, y: int, **params):
    return client.get(f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}", params=params)


def decode(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    return mapbox_vector_tile.decode(response.content)


def test_hazard_tile_holds_the_features_and_their_properties(client, ledger) -> None:
    x, y = tile_of(ledger["lon"], ledger["lat"], 12)
    layers = decode(get_tile(client, "hazardous_areas", 12, x, y))
    features = layers["hazardous_areas"]["features"]
    by_ext = {f["properties"]["external_id"]: f for f in features}
    assert set(by_ext) == {"KHM-A", "KHM-B"}
    a = by_ext["KHM-A"]
    assert a["properties"]["contamination"] == "AP_MINE,AV_MINE"
    assert a["properties"]["classification"] == "SHA" and a["properties"]["id"] == ledger["a"]["id"]
    assert a["properties"]["remaining_area_m2"] == pytest.approx(ledger["e"]["remaining_area_m2"], rel=1e-6)
    assert a["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert layers["hazardous_areas"]["extent"] == 4096


def test_remaining_and_baseline_geometry_differ_in_size(client, ledger) -> None:
    # zoom 13 (tiles ~4.9 km wide) holds the whole 1 km hazard in one tile
    corners = {tile_of(*_TO_LL.transform(500_000 + dx, 1_450_000 + dy), 13) for dx in (0, 1000) for dy in (0, 1000)}
    assert len(corners) == 1
    (x, y), = corners

    def span(response) -> float:
        feature = next(f for f in decode(response)["hazardous_areas"]["features"]
                       if f["properties"]["external_id"] == "KHM-A")
        coords = feature["geometry"]["coordinates"]
        rings = coords if feature["geometry"]["type"] == "Polygon" else [r for p in coords for r in p]
        xs = [p[0] for ring in rings for p in ring]
        return max(xs) - min(xs)

    remaining = span(get_tile(client, "hazardous_areas", 13, x, y))
    baseline = span(get_tile(client, "hazardous_areas", 13, x, y, geometry="baseline"))
    # 600 m remain of the 1000 m width
    assert remaining / baseline == pytest.approx(0.6, rel=0.05)


def test_filters_apply_to_tiles(client, ledger) -> None:
    x, y = tile_of(ledger["lon"], ledger["lat"], 12)
    cha = decode(get_tile(client, "hazardous_areas", 12, x, y, classification="CHA"))
    assert [f["properties"]["external_id"] for f in cha["hazardous_areas"]["features"]] == ["KHM-B"]
    assert get_tile(client, "hazardous_areas", 12, x, y, state="THA").status_code == 204
    assert get_tile(client, "hazardous_areas", 12, x, y, datetime="2010-01-01").status_code == 204
    events = decode(get_tile(client, "land_release_events", 12, x, y))["land_release_events"]["features"]
    assert len(events) == 1 and events[0]["properties"]["kind"] == "clearance"
    assert events[0]["properties"]["ap_mines"] == 7
    assert get_tile(client, "land_release_events", 12, x, y, kind="reduction").status_code == 204
    bad = get_tile(client, "hazardous_areas", 12, x, y, status="closed")
    assert bad.status_code == 400 and "status" in bad.json()["detail"]


def test_empty_tile_is_204(client, ledger) -> None:
    assert get_tile(client, "hazardous_areas", 10, 0, 0).status_code == 204
    x, y = tile_of(ledger["lon"], ledger["lat"], 8)
    assert get_tile(client, "hazardous_areas", 8, x, y).status_code == 200
    # at zoom 0 a 1 km hazard is a tenth of a tile unit: it is drawn as a point, so the world view shows it
    world = decode(get_tile(client, "hazardous_areas", 0, 0, 0))["hazardous_areas"]["features"]
    assert [f["geometry"]["type"] for f in world] == ["Point"]


def test_a_point_stands_for_every_hazard_under_its_pixel(client, ledger) -> None:
    # KHM-C, 30 km east of KHM-A and KHM-B (1 km apart): one pixel (156 km) at zoom 0 and two at zoom 5
    # (4.9 km: A and B in one, C in the next); at zoom 12 each is a polygon of its own
    post_hazard(client, "KHM-C", rect(30_000, 0, 100, 100))

    def drawn(z: int) -> list[tuple[str, str, int]]:
        x, y = tile_of(ledger["lon"], ledger["lat"], z)
        features = decode(get_tile(client, "hazardous_areas", z, x, y))["hazardous_areas"]["features"]
        return sorted((f["properties"]["external_id"], f["geometry"]["type"], f["properties"]["point_count"])
                      for f in features)

    # the point of a pixel is its largest hazard's (A: 600 m x 1 km remain), with its properties
    assert drawn(0) == [("KHM-A", "Point", 3)]
    assert drawn(5) == [("KHM-A", "Point", 2), ("KHM-C", "Point", 1)]
    assert drawn(12) == [("KHM-A", "Polygon", 1), ("KHM-B", "Polygon", 1)]
    x, y = tile_of(ledger["lon"], ledger["lat"], 0)
    world = decode(get_tile(client, "hazardous_areas", 0, x, y, classification="CHA"))["hazardous_areas"]
    # a filter applies before the pixels are counted: B alone is CHA
    assert [(f["properties"]["external_id"], f["properties"]["point_count"]) for f in world["features"]] == \
        [("KHM-B", 1)]


def test_bad_tile_address_is_400(client) -> None:
    for z, x, y, name in ((25, 0, 0, "z"), (-1, 0, 0, "z"), (3, 8, 0, "x"), (3, 0, 8, "y"), ("a", 0, 0, "z"),
                          (3, 0, "b", "y")):
        response = client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert response.status_code == 400, (z, x, y)
        assert response.json()["invalid_params"][0]["name"] == name
    assert client.get("/collections/minefields/tiles/WebMercatorQuad/0/0/0").status_code == 404


def test_a_world_tile_of_provinces_reads_the_features_it_draws_by_their_index(client) -> None:
    # A tile reads what it draws again by id (app.ogc.tiles); a boundary's id is made from its code, and
    # migration 0022 indexes it: without the index each of the province points of the world was a scan of
    # every province (8.7 s instead of 0.26 s for the world tile).
    tms = TILE_MATRIX_SETS["WebMercatorQuad"]
    x1, y1, x2, y2 = tms.envelope(0, 0, 0)
    with database.session() as session:
        sql, params = tile_sql(read_items_query(COLLECTIONS["provinces"], {}, session.connection(), paging=False),
                               tms)
        plan = session.execute(text("EXPLAIN (FORMAT JSON) " + sql),
                               {**params, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                                "margin": tms.tile_span(0) * BUFFER / EXTENT}).scalar_one()
        drawn = session.execute(text(sql), {**params, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                                            "margin": tms.tile_span(0) * BUFFER / EXTENT}).scalar_one()

    def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    assert "ix_provinces_feature_id" in {n.get("Index Name") for n in nodes(plan[0]["Plan"])}
    assert len(mapbox_vector_tile.decode(bytes(drawn))["provinces"]["features"]) > 1000
