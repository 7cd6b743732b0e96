"""A map people can read (app/places, app/ogc/tiles.py, the dashboard): every hazard in the tiles at the
world's zoom levels, and the maps' borders and names drawn from the service's own tiles, in headless
Chromium (screenshots in test-artifacts/)."""
from __future__ import annotations

import mapbox_vector_tile
from shapely.geometry import box, mapping

from app import database
from app.demo import load_state
from tests.headless_chromium import Chromium
from tests.ledger_scenarios import hazard_feature

# one small hazard in each of three States, in real provinces: 1 ha, 4 ha, 25 ha
HAZARDS = {
    "KHM": ("KHM-BTB-1", box(102.900, 13.000, 102.901, 13.001)),
    "BIH": ("BIH-SAR-1", box(18.400, 43.850, 18.402, 43.852)),
    "IRQ": ("IRQ-BSR-1", box(47.450, 30.280, 47.455, 30.285)),
}


def _tile(client, collection: str, z: int, x: int, y: int) -> dict:
    response = client.get(f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert response.status_code in (200, 204), response.text
    return mapbox_vector_tile.decode(response.content) if response.status_code == 200 else {}


def test_tiles_at_zoom_0_to_3_hold_every_hazard(client) -> None:
    ids = {}
    for iso3, (external_id, polygon) in HAZARDS.items():
        response = client.post(f"/api/v1/states/{iso3}/hazards", json=hazard_feature(external_id, mapping(polygon)))
        assert response.status_code == 201, response.text
        ids[response.json()["hazards"][0]["id"]] = external_id
    for z in range(4):
        found: dict[str, str] = {}
        for x in range(2 ** z):
            for y in range(2 ** z):
                for feature in _tile(client, "hazardous_areas", z, x, y).get("hazardous_areas", {}).get("features", []):
                    found[feature["properties"]["id"]] = feature["geometry"]["type"]
        assert set(found) == set(ids), (z, found)
        assert set(found.values()) == {"Point"}  # each far smaller than a pixel: a point
    # close up the polygon is a polygon again
    from tests.test_places import _tile_of

    x, y = _tile_of(47.452, 30.282, 14)
    (feature,) = _tile(client, "hazardous_areas", 14, x, y)["hazardous_areas"]["features"]
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")


# --- in a real browser ---------------------------------------------------------------------------
PAGE_READY = "document.body.dataset.loaded"
MAP_IDLE = "document.getElementById('map').dataset.state === 'idle'"


def _load_demo() -> None:
    with database.session() as session:
        for iso3 in ("KHM", "BIH", "IRQ"):
            load_state(iso3, session)
        session.commit()


def test_browser_maps_draw_borders_names_and_every_states_hazards(live_server, admin_key, artifacts_dir) -> None:
    _load_demo()
    with Chromium() as browser:
        # the Committee's world view: the three States' hazards as points, the States named
        browser.open(f"{live_server}/dashboard?as_of=2026-06-30#key={admin_key}")
        assert browser.wait_for(PAGE_READY) == "true", browser.console
        browser.wait_for(MAP_IDLE + " && document.getElementById('map').dataset.countryNames > 0", 90)
        world = browser.evaluate("Object.assign({}, document.getElementById('map').dataset)")
        assert world["hazardStates"] == "BIH,IRQ,KHM", world
        # one point per pixel, standing for the hazards under it: the points stand for every remaining
        # hazard of the three States (the overview's SHA and CHA counts), in fewer features
        counts = browser.evaluate("[...document.querySelectorAll('#overview tbody tr')].map((tr) => "
                                  "[...tr.querySelectorAll('td.num')].slice(0, 4).map((td) => td.textContent))")
        remaining = sum(int(row[1]) + int(row[3]) for row in counts)
        assert int(world["hazardsShown"]) == remaining > 300, (world, counts)
        assert 0 < int(world["hazardFeatures"]) < remaining, world
        names = world["placeNames"].split("|")
        assert {"Cambodia", "Bosnia and Herzegovina", "Iraq"} <= set(names), names
        browser.screenshot(artifacts_dir / "map_world_overview.png")
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations

        # a State's map at a province zoom: province borders and names under the hazards
        browser.open(f"{live_server}/dashboard/KHM?as_of=2026-06-30")
        assert browser.wait_for(PAGE_READY) == "true", browser.console
        browser.wait_for(MAP_IDLE)
        browser.wait_for("document.getElementById('map').dataset.provinceNames > 0", 90)
        state = browser.evaluate("Object.assign({}, document.getElementById('map').dataset)")
        names = set(state["placeNames"].split("|"))
        assert {"Batdâmbâng", "Krong Pailin", "Bântéay Méanchey"} <= names, names
        assert int(state["hazardFeatures"]) > 100, state
        assert int(state["hazardsShown"]) >= int(state["hazardFeatures"]), state
        labels = browser.evaluate("document.querySelectorAll('.place-name.province').length")
        assert labels == int(state["provinceNames"])
        browser.screenshot(artifacts_dir / "map_KHM_provinces.png")
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
    for name in ("map_world_overview.png", "map_KHM_provinces.png"):
        assert (artifacts_dir / name).stat().st_size > 30_000
