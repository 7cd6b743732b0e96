"""A CQL2 filter, the queryables' parameters and datetime on vector tiles: the same features as the items with
the same filter, and the filter in the tile's ETag."""
from __future__ import annotations

import mapbox_vector_tile
from pyproj import Transformer

from tests.ledger_scenarios import UTM48N, post_event, post_hazard, rect
from tests.test_tiles import tile_of

_TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def tile_ids(client, collection: str, z: int, x: int, y: int, **params) -> set[str]:
    response = client.get(f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}", params=params)
    if response.status_code == 204:
        return set()
    assert response.status_code == 200, response.text
    return {f["properties"]["external_id"] for f in mapbox_vector_tile.decode(response.content)[collection]["features"]}


def item_ids(client, collection: str, **params) -> set[str]:
    response = client.get(f"/collections/{collection}/items", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return {f["properties"]["external_id"] for f in response.json()["features"]}


def test_a_filter_on_tiles_returns_fewer_features_as_the_items_do(client) -> None:
    a = post_hazard(client, "KHM-TF-A", rect(0, 0, 1000, 1000), priority="high", recorded_on="2015-01-01")
    post_hazard(client, "KHM-TF-B", rect(1500, 0, 400, 400), priority="low", recorded_on="2019-01-01")
    post_hazard(client, "KHM-TF-C", rect(0, 1500, 400, 400), recorded_on="2015-01-01")
    post_event(client, a["id"], "clearance", "2018-03-01", rect(0, 0, 400, 1000), external_id="KHM-TF-E1")
    post_event(client, a["id"], "cancellation", "2019-03-01", rect(400, 0, 100, 1000), external_id="KHM-TF-E2")
    x, y = tile_of(*_TO_LL.transform(500_500, 1_450_500), 11)
    everything = tile_ids(client, "hazardous_areas", 11, x, y)
    assert everything == {"KHM-TF-A", "KHM-TF-B", "KHM-TF-C"}
    for params in ({"filter": "priority = 'high'"},
                   {"filter": "priority IN ('high', 'low') AND recorded_on < DATE('2018-01-01')"},
                   {"filter": '{"op": "=", "args": [{"property": "priority"}, "low"]}', "filter-lang": "cql2-json"},
                   {"priority": "low"},
                   {"datetime": "2016-01-01"}):
        filtered = tile_ids(client, "hazardous_areas", 11, x, y, **params)
        assert filtered == item_ids(client, "hazardous_areas", **params), params
        assert 0 < len(filtered) < len(everything), params
    events = tile_ids(client, "land_release_events", 11, x, y, filter="released_area_m2 > 150000")
    assert events == {"KHM-TF-E1"} == item_ids(client, "land_release_events", filter="released_area_m2 > 150000")
    assert tile_ids(client, "land_release_events", 11, x, y, datetime="../2018-12-31") == {"KHM-TF-E1"}

    # the filter is in the tile's ETag: the unfiltered tile's tag does not validate the filtered one
    path = f"/collections/hazardous_areas/tiles/WebMercatorQuad/11/{x}/{y}"
    plain = client.get(path)
    filtered = client.get(path, params={"filter": "priority = 'high'"})
    assert plain.headers["etag"] != filtered.headers["etag"]
    assert client.get(path, params={"filter": "priority = 'high'"},
                      headers={"If-None-Match": filtered.headers["etag"]}).status_code == 304
    assert client.get(path, params={"filter": "priority = 'low'"},
                      headers={"If-None-Match": filtered.headers["etag"]}).status_code == 200

    bad = client.get(path, params={"filter": "priority = "})
    assert bad.status_code == 400 and "filter" in bad.json()["detail"]
    bad = client.get(path, params={"filter": "colour = 'red'"})
    assert bad.status_code == 400 and "colour" in bad.json()["detail"]
