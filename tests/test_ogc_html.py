"""The OGC API as HTML: chosen by f=html or a browser's Accept, JSON the default; the items page (a map
and a table, next/prev) in a real browser (headless Chromium), photographed into test-artifacts/."""
from __future__ import annotations

import re

from tests.conftest import auth_headers
from tests.headless_chromium import Chromium
from tests.ledger_scenarios import UTM48N, hazard_feature, post_hazard, rect

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def post_many(client, n: int) -> list[dict]:
    features = [hazard_feature(f"H-{i:03d}", rect(i * 100.0, 0.0, 50.0, 50.0), classification="CHA" if i % 2 else "SHA")
                for i in range(n)]
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json={"type": "FeatureCollection", "features": features})
    assert response.status_code == 201, response.text
    return response.json()["hazards"]


def test_html_is_chosen_by_f_or_a_browser_and_json_stays_the_default(client) -> None:
    hazard = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    paths = ["/", "/conformance", "/collections", "/collections/hazardous_areas",
             "/collections/hazardous_areas/items", f"/collections/hazardous_areas/items/{hazard['id']}"]
    for path in paths:
        for headers, params in (({}, {"f": "html"}), ({"Accept": BROWSER_ACCEPT}, {})):
            page = client.get(path, params=params, headers=headers)
            assert page.status_code == 200, (path, page.text)
            assert page.headers["content-type"].startswith("text/html"), path
            assert page.text.startswith("<!doctype html>")
            hosts = set(re.findall(r"(?:src|href)=\"(https?://[^/\"]+)", page.text))
            assert hosts <= {"http://testserver"}, (path, hosts)  # nothing from elsewhere (no CDN)
            assert "<script>" not in page.text and "style=" not in page.text  # nothing inline for the CSP
        for accept in ("*/*", "application/json", "application/geo+json, application/json", ""):
            answer = client.get(path, headers={"Accept": accept} if accept else {})
            assert answer.headers["content-type"].startswith(("application/json", "application/geo+json")), path
        json_anyway = client.get(path, params={"f": "json"}, headers={"Accept": BROWSER_ACCEPT})
        assert json_anyway.headers["content-type"].startswith(("application/json", "application/geo+json")), path
    conformance = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html" in conformance
    assert client.get("/collections/hazardous_areas/items", params={"f": "xml"}).status_code == 400


def test_the_items_page_has_a_table_a_map_and_paging_links(client) -> None:
    post_many(client, 25)
    first = client.get("/collections/hazardous_areas/items", params={"f": "html", "limit": 10}).text
    rows = re.findall(r'<tr data-id="([0-9a-f-]{36})">', first)
    assert len(rows) == 10 and 'id="map"' in first and 'id="map-features"' in first
    assert "<th>external_id</th>" in first and "<th>remaining_area_m2</th>" in first
    assert "10 features of 25" in first
    next_href = re.search(r'id="next" rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "f=html" in next_href and "after=" in next_href and 'id="prev"' not in first
    second = client.get(next_href).text
    second_rows = re.findall(r'<tr data-id="([0-9a-f-]{36})">', second)
    assert len(second_rows) == 10 and not set(rows) & set(second_rows)
    assert 'id="prev"' in second
    # a script in the data cannot close the data block
    post_hazard(client, "</script><script>alert(1)</script>", rect(0, 2000, 100, 100))
    page = client.get("/collections/hazardous_areas/items", params={"f": "html", "limit": 100}).text
    assert "<script>alert(1)" not in page and "&lt;/script&gt;" in page


def test_html_pages_follow_the_access_rules_and_carry_an_etag(client, client_as) -> None:
    post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    assert client_as(None).get("/collections/hazardous_areas/items", params={"f": "html"}).status_code == 401
    page = client.get("/collections/hazardous_areas/items", params={"f": "html"})
    json_page = client.get("/collections/hazardous_areas/items")
    assert page.headers["etag"] != json_page.headers["etag"]
    assert client.get("/collections/hazardous_areas/items", params={"f": "html"},
                      headers={"If-None-Match": page.headers["etag"]}).status_code == 304


MAP_IDLE = "document.getElementById('map').dataset.state === 'idle'"


def test_browser_shows_the_items_table_and_map(live_server, admin_key, client, artifacts_dir) -> None:
    post_many(client, 30)
    limit = 12
    with Chromium() as browser:
        browser.send("Network.enable")
        browser.send("Network.setExtraHTTPHeaders", {"headers": auth_headers(admin_key)})
        browser.open(f"{live_server}/collections/hazardous_areas/items?limit={limit}")  # Accept: the browser's
        browser.wait_for(MAP_IDLE)
        assert browser.evaluate("document.querySelectorAll('#features tbody tr').length") == limit
        assert browser.evaluate("document.getElementById('map').dataset.features") == str(limit)
        assert int(browser.evaluate("document.getElementById('map').dataset.rendered")) == limit
        assert browser.evaluate("!!document.querySelector('#map canvas')")
        browser.screenshot(artifacts_dir / "ogc_items.png")
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
        # next page, then one feature
        browser.evaluate("document.getElementById('next').click()")
        browser.wait_for("document.getElementById('prev') !== null && " + MAP_IDLE)
        assert browser.evaluate("document.querySelectorAll('#features tbody tr').length") == limit
        browser.evaluate("document.querySelector('#features tbody a').click()")
        browser.wait_for("document.getElementById('properties') !== null && " + MAP_IDLE)
        assert "external_id" in browser.evaluate("document.getElementById('properties').innerText")
        assert browser.evaluate("document.getElementById('map').dataset.rendered") == "1"
        browser.screenshot(artifacts_dir / "ogc_item.png")
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
    assert (artifacts_dir / "ogc_items.png").stat().st_size > 10_000
