"""The dashboard: burn-down charts (SVG, PNG), the figures behind the pages, and the pages in a real browser.

One State (KHM) with a hand-made history in UTM 48N squares of known area:
- H1, SHA 1000 m x 1000 m recorded 2018-01-01: cleared 1000 x 300 on 2020-03-01, cancelled 1000 x 200
  on 2023-05-01;
- H2, CHA 500 m x 1000 m recorded 2019-06-01: cleared 500 x 500 on 2024-02-01.
Article 5: original deadline 2010-01-01 (entry into force 2000-01-01); extended (decided 2009-11-27) to 2020-01-01;
extended again (decided 2019-11-29) to 2025-12-31 with milestones 0.2 km2 in 2020 and 2021.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from sqlalchemy import text

from app import database
from tests.conftest import auth_headers
from tests.headless_chromium import Chromium
from tests.ledger_scenarios import post_event, post_hazard, rect, true_area

KM2 = 1_000_000.0
H1 = true_area(0, 0, 1000, 1000)
H2 = true_area(2000, 0, 500, 1000)
CLEAR_2020 = true_area(0, 0, 1000, 300)
CANCEL_2023 = true_area(0, 300, 1000, 200)
CLEAR_2024 = true_area(2000, 0, 500, 500)
REL = 1e-4  # relative tolerance on areas, as in the ledger tests (geodesic areas of PostGIS and pyproj)


def approx_km2(area_m2: float) -> pytest.approx:
    """An area in m2 as the km2 figure expected (rounded to 6 decimals), within the tolerance."""
    return pytest.approx(area_m2 / KM2, rel=REL, abs=2e-6)


def _insert_decisions() -> None:
    """KHM's decisions replaced by the scenario's (whatever reference data the migrations seeded)."""
    with database.get_engine().begin() as conn:
        has_count = conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'article5_decisions' AND column_name = 'extensions_count')")).scalar_one()
        conn.execute(text("DELETE FROM work_plan_milestones WHERE state_iso3 = 'KHM'"))
        conn.execute(text("DELETE FROM article5_decisions WHERE state_iso3 = 'KHM'"))
        count_column, count_value = (", extensions_count", ", :n") if has_count else ("", "")
        insert = text(f"INSERT INTO article5_decisions (state_iso3, kind, decided_on, deadline, meeting{count_column}) "
                      f"VALUES ('KHM', :kind, :decided_on, :deadline, :meeting{count_value}) RETURNING id")
        conn.execute(insert, {"kind": "original_deadline", "decided_on": date(2000, 1, 1), "deadline": date(2010, 1, 1),
                              "meeting": None, "n": None})
        conn.execute(insert, {"kind": "extension", "decided_on": date(2009, 11, 27), "deadline": date(2020, 1, 1),
                              "meeting": "Second Review Conference", "n": 1})
        second = conn.execute(insert, {"kind": "extension", "decided_on": date(2019, 11, 29),
                                       "deadline": date(2025, 12, 31), "meeting": "Fourth Review Conference",
                                       "n": 1}).scalar_one()
        for year in (2020, 2021):
            conn.execute(text("INSERT INTO work_plan_milestones (state_iso3, decision_id, year, area_m2) "
                              "VALUES ('KHM', :decision, :year, 200000)"), {"decision": second, "year": year})


@pytest.fixture
def khm(client) -> dict[str, str]:
    h1 = post_hazard(client, "KHM-H1", rect(0, 0, 1000, 1000), classification="SHA", recorded_on="2018-01-01")
    h2 = post_hazard(client, "KHM-H2", rect(2000, 0, 500, 1000), classification="CHA", recorded_on="2019-06-01")
    post_event(client, h1["id"], "clearance", "2020-03-01", rect(0, 0, 1000, 300))
    post_event(client, h1["id"], "cancellation", "2023-05-01", rect(0, 300, 1000, 200))
    post_event(client, h2["id"], "clearance", "2024-02-01", rect(2000, 0, 500, 500))
    _insert_decisions()
    return {"H1": h1["id"], "H2": h2["id"]}


# --- the data behind the chart --------------------------------------------------------------------
def test_chart_data_agrees_with_the_summary(client, khm) -> None:
    body = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2024-06-30"}).json()
    summary = client.get("/api/v1/states/KHM/summary", params={"as_of": "2024-06-30"}).json()
    remaining = H1 - CLEAR_2020 - CANCEL_2023 + H2 - CLEAR_2024
    assert body["remaining_km2"] == approx_km2(remaining)
    assert summary["remaining"]["total"]["area_m2"] == pytest.approx(body["remaining_km2"] * KM2, abs=1.0)
    assert body["deadline"] == summary["article5"]["deadline"] == "2025-12-31"
    assert body["projected_completion"] == summary["article5"]["projected_completion"]
    # about three years at the last year's rate (only the 2024 clearance): after the deadline
    projected = date.fromisoformat(body["projected_completion"])
    assert abs((projected - date(2024, 6, 30)).days - remaining / CLEAR_2024 * 365) <= 1
    assert body["on_track"] is False
    assert body["bbox"] == pytest.approx([105.0, 13.116, 105.023, 13.125], abs=2e-3)


def test_burn_down_series_and_milestones(client, khm) -> None:
    body = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2024-06-30"}).json()
    series = {p["date"]: p for p in body["series"]}
    assert body["series"][0]["date"] == "2018-01-01"
    assert body["series"][-1]["date"] == "2024-06-30"
    assert len(body["series"]) == 79  # the first day, then every month end from January 2018 to June 2024
    assert series["2018-12-31"]["remaining_km2"] == approx_km2(H1)
    assert series["2019-06-30"]["cha_km2"] == approx_km2(H2)
    assert series["2020-03-31"]["sha_km2"] == approx_km2(H1 - CLEAR_2020)
    assert series["2023-05-31"]["sha_km2"] == approx_km2(H1 - CLEAR_2020 - CANCEL_2023)
    assert series["2024-06-30"]["remaining_km2"] == approx_km2(H1 - CLEAR_2020 - CANCEL_2023 + H2 - CLEAR_2024)
    start = (H1 + H2) / KM2  # remaining at the end of 2019, before the first milestone year
    assert [m["planned_remaining_km2"] for m in body["milestones"]] == pytest.approx(
        [start - 0.2, start - 0.4], rel=REL)
    assert [d["deadline"] for d in body["deadlines"]] == ["2010-01-01", "2020-01-01", "2025-12-31"]


def test_series_counts_a_reclassified_split_once(client) -> None:
    """A reclassification moves land from the SHA to a new CHA: the total stays, the classes change."""
    h = post_hazard(client, "KHM-R1", rect(0, 0, 1000, 1000), classification="SHA", recorded_on="2018-01-01")
    post_event(client, h["id"], "reclassification", "2019-03-10", rect(0, 0, 1000, 400))
    body = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2019-12-31"}).json()
    series = {p["date"]: p for p in body["series"]}
    assert series["2019-02-28"]["sha_km2"] == approx_km2(H1)
    split = true_area(0, 0, 1000, 400)
    assert series["2019-03-31"]["remaining_km2"] == approx_km2(H1)
    assert series["2019-03-31"]["cha_km2"] == approx_km2(split)
    assert series["2019-03-31"]["sha_km2"] == approx_km2(H1 - split)


def test_series_moves_a_wholly_reclassified_hazard_to_cha_from_that_date(client) -> None:
    h = post_hazard(client, "KHM-W1", rect(0, 0, 1000, 1000), classification="SHA", recorded_on="2018-01-01")
    post_event(client, h["id"], "clearance", "2018-06-01", rect(0, 0, 1000, 300))
    post_event(client, h["id"], "reclassification", "2019-03-10", None)  # the whole hazard becomes a CHA
    post_event(client, h["id"], "clearance", "2020-02-01", rect(0, 300, 1000, 200))
    body = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2020-12-31"}).json()
    series = {p["date"]: p for p in body["series"]}
    assert series["2019-02-28"]["sha_km2"] == approx_km2(H1 - CLEAR_2020)
    assert series["2019-02-28"]["cha_km2"] == approx_km2(0)
    assert series["2019-03-31"]["sha_km2"] == approx_km2(0)
    assert series["2019-03-31"]["cha_km2"] == approx_km2(H1 - CLEAR_2020)
    assert series["2020-02-29"]["cha_km2"] == approx_km2(H1 - CLEAR_2020 - CANCEL_2023)
    assert series["2020-12-31"]["remaining_km2"] == approx_km2(H1 - CLEAR_2020 - CANCEL_2023)


def test_the_deadline_is_the_one_in_effect_at_the_as_of_date(client, khm) -> None:
    before = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2019-06-30"}).json()
    assert before["deadline"] == "2020-01-01"
    assert [d["deadline"] for d in before["deadlines"]] == ["2010-01-01", "2020-01-01"]
    assert before["milestones"] == []  # the work plan came with the later extension
    on_track = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2020-12-31"}).json()
    # 1.2 km2 left, 0.3 km2 released in the year: done in about four years, before 2025-12-31
    assert on_track["deadline"] == "2025-12-31"
    assert on_track["on_track"] is True


# --- the charts ----------------------------------------------------------------------------------
def test_chart_svg_shows_deadline_milestones_and_projection(client, khm) -> None:
    response = client.get("/api/v1/states/KHM/chart.svg", params={"as_of": "2024-06-30"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    svg = response.text
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert 'id="article5-deadline"' in svg
    assert "Article 5 deadline 2025-12-31 (2 extensions)" in svg
    assert 'id="article5-original-deadline"' in svg and 'id="article5-extension-2020-01-01"' in svg
    assert 'id="work-plan-milestones"' in svg
    assert 'id="projection"' in svg and "at the current rate: done 2027-" in svg
    assert 'id="remaining-area"' in svg
    # no CSS (the dashboard's CSP allows none inline): presentation attributes instead
    assert "style=" not in svg and "<style" not in svg
    root = svg[svg.index("<svg "):].split(">", 1)[0]
    assert 'stroke-linejoin="round"' in root and 'text-anchor="middle"' in svg
    # the as-of date changes what is drawn: before the second extension its deadline is not there
    earlier = client.get("/api/v1/states/KHM/chart.svg", params={"as_of": "2019-06-30"}).text
    assert "Article 5 deadline 2020-01-01 (1 extension)" in earlier
    assert "2025-12-31" not in earlier


def test_chart_png_is_a_png(client, khm) -> None:
    response = client.get("/api/v1/states/KHM/chart.png", params={"as_of": "2024-06-30"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(response.content[16:20], "big")
    assert 600 < width < 2000


def test_charts_drawn_at_once_are_each_whole(live_server, admin_key, khm) -> None:
    """Requests are served from a thread pool; each chart keeps its own text, dates and format."""
    days = ["2019-06-30", "2020-12-31", "2023-12-31", "2024-06-30"] * 2

    def fetch(day: str) -> tuple[str, str]:
        response = httpx.get(f"{live_server}/api/v1/states/KHM/chart.svg", params={"as_of": day},
                             headers=auth_headers(admin_key), timeout=60)
        assert response.status_code == 200
        return day, response.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        for day, svg in pool.map(fetch, days):
            assert f"as of {day}</text>" in svg
            assert 'id="article5-deadline"' in svg


def test_chart_of_a_state_without_hazards_or_decisions_still_draws(client) -> None:
    response = client.get("/api/v1/states/AGO/chart.svg", params={"as_of": "2024-06-30"})
    assert response.status_code == 200
    assert "no hazardous areas recorded by this date" in response.text


def test_chart_of_an_unknown_state_is_404(client) -> None:
    for path in ("/api/v1/states/XXX/chart.svg", "/api/v1/states/XXX/chart.png", "/api/v1/states/XXX/chart.json"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    # not an ISO3 code at all: the path parameter's pattern (OpenAPI) refuses it
    assert client.get("/api/v1/states/K1/chart.svg").status_code == 422


def test_bad_as_of_is_a_problem(client, khm) -> None:
    response = client.get("/api/v1/states/KHM/chart.svg", params={"as_of": "2024-13-45"})
    assert response.status_code == 422
    assert "as_of" in response.json()["detail"]
    for far in ("0001-01-01", "9999-12-31"):
        response = client.get("/api/v1/states/KHM/chart.png", params={"as_of": far})
        assert response.status_code == 422, far
        assert "out of range" in response.json()["detail"]


def test_charts_follow_the_access_rules(client_as, khm) -> None:
    assert client_as(None).get("/api/v1/states/KHM/chart.svg").status_code == 401
    assert client_as(None).get("/api/v1/states/KHM/chart.json").status_code == 401
    assert client_as("viewer", "BIH").get("/api/v1/states/KHM/chart.png").status_code == 403
    assert client_as("viewer", "KHM").get("/api/v1/states/KHM/chart.png").status_code == 200


# --- the pages -----------------------------------------------------------------------------------
def test_pages_and_packaged_map_library_are_served(client_as) -> None:
    anonymous = client_as(None)  # the pages hold no data: their script asks the API with the session's key
    overview = anonymous.get("/dashboard")
    assert overview.status_code == 200 and overview.headers["content-type"].startswith("text/html")
    assert 'id="overview"' in overview.text
    page = anonymous.get("/dashboard/KHM")
    assert page.status_code == 200 and 'id="map"' in page.text
    assert "/dashboard/static/vendor/maplibre-gl.js" in page.text
    assert not re.search(r"https?://", page.text + overview.text)  # nothing from elsewhere
    library = anonymous.get("/dashboard/static/vendor/maplibre-gl.js")
    assert library.status_code == 200 and len(library.content) > 500_000
    assert anonymous.get("/dashboard/static/vendor/maplibre-gl.css").status_code == 200
    assert anonymous.get("/dashboard/static/state.js").status_code == 200
    assert anonymous.get("/dashboard/not-a-state").status_code == 404


# --- in a real browser ---------------------------------------------------------------------------
# Headless Chromium (Debian package) over the DevTools protocol: the page is waited for in real time
# (map tiles are fetched by MapLibre's workers), then read and photographed into test-artifacts/.
PAGE_READY = "document.body.dataset.loaded"
STATUS = "document.getElementById('status').textContent"
MAP_IDLE = "document.getElementById('map').dataset.state === 'idle'"


def _figures(browser: Chromium) -> dict[str, float]:
    return browser.evaluate("""Object.fromEntries(['sha-km2', 'cha-km2', 'released-km2'].map(
        (id) => [id, parseFloat(document.getElementById(id).textContent.replace(/,/g, ''))]))""")


def _map_counts(browser: Chromium) -> dict[str, str]:
    return browser.evaluate("Object.assign({}, document.getElementById('map').dataset)")


def test_browser_overview_lists_the_states(live_server, admin_key, khm, artifacts_dir) -> None:
    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard?as_of=2024-06-30#key={admin_key}")
        assert browser.wait_for(PAGE_READY) == "true", (browser.evaluate(STATUS), browser.console)
        browser.screenshot(artifacts_dir / "dashboard_overview.png")
        states = browser.evaluate("[...document.querySelectorAll('#overview tbody tr')].map((r) => r.dataset.state)")
        with database.get_engine().connect() as conn:
            assert len(states) == conn.execute(text("SELECT count(*) FROM states")).scalar_one()
        row = browser.evaluate("document.querySelector('tr[data-state=KHM]').innerText")
        assert "Cambodia" in row and "2025-12-31" in row and "no" in row.split()
        # sorting by remaining CHA, largest first: KHM (the only State with hazards) comes first
        browser.evaluate("document.querySelector('th[data-key=cha_km2]').click()")
        assert browser.evaluate("document.querySelector('#overview tbody tr').dataset.state") == "KHM"
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
        # the key stays in the session, not in the address bar
        assert browser.evaluate("window.location.hash") == ""
        assert browser.evaluate("sessionStorage.getItem('landrelease.apiKey')") == admin_key
    assert (artifacts_dir / "dashboard_overview.png").stat().st_size > 10_000


def test_browser_state_page_draws_map_and_chart_and_follows_as_of(live_server, admin_key, khm,
                                                                 artifacts_dir) -> None:
    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard/KHM?as_of=2024-06-30#key={admin_key}")
        assert browser.wait_for(PAGE_READY) == "true", (browser.evaluate(STATUS), browser.console)
        browser.wait_for(MAP_IDLE)
        counts = _map_counts(browser)
        assert counts["shaFeatures"] == "1" and counts["chaFeatures"] == "1", counts
        assert counts["releasedFeatures"] == "3", counts
        assert browser.evaluate("!!document.querySelector('#chart svg #article5-deadline')")
        assert "Article 5 deadline 2025-12-31" in browser.evaluate("document.getElementById('chart').textContent")
        later = _figures(browser)
        assert later["cha-km2"] == pytest.approx((H2 - CLEAR_2024) / KM2, abs=1e-3)
        browser.screenshot(artifacts_dir / "dashboard_KHM_2024-06-30.png")

        # the as-of control: pick 2023-12-31 and show
        browser.evaluate("""(() => { document.getElementById('as-of').value = '2023-12-31';
                                    document.getElementById('as-of-form').requestSubmit(); })()""")
        browser.wait_for("document.getElementById('figures').dataset.asOf === '2023-12-31'"
                         " && document.getElementById('chart').dataset.asOf === '2023-12-31'")
        browser.wait_for(MAP_IDLE + " && document.getElementById('map').dataset.releasedFeatures === '2'")
        earlier = _figures(browser)
        assert earlier["cha-km2"] == pytest.approx(H2 / KM2, abs=1e-3)
        assert earlier["released-km2"] == pytest.approx(CANCEL_2023 / KM2, abs=1e-3)
        assert earlier != later
        assert browser.evaluate("window.location.search") == "?as_of=2023-12-31"
        browser.screenshot(artifacts_dir / "dashboard_KHM_2023-12-31.png")

        # the page, its map (MapLibre's blob: workers, the tiles) and the chart work under the CSP
        assert browser.page_csp_violations() == [], browser.page_csp_violations()
        assert browser.csp_violations == [], browser.csp_violations

        # a link with ?as_of= in it shows the same figures as the control
        browser.open(f"{live_server}/dashboard/KHM?as_of=2023-12-31")
        browser.wait_for(PAGE_READY)
        assert _figures(browser) == earlier
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations


def test_browser_without_a_key_asks_for_one(live_server, khm, artifacts_dir) -> None:
    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard/KHM")
        assert browser.wait_for(PAGE_READY) == "error"
        assert browser.evaluate("!!document.getElementById('api-key')")
        assert "Enter an API key" in browser.evaluate("document.getElementById('status').textContent")
        browser.screenshot(artifacts_dir / "dashboard_no_key.png")


def test_series_same_day_release_and_whole_reclassification(client) -> None:
    """Land released on the day the rest of the hazard becomes a CHA leaves no SHA behind."""
    h = post_hazard(client, "KHM-SD", rect(0, 0, 1000, 1000), classification="SHA", recorded_on="2018-01-01")
    post_event(client, h["id"], "clearance", "2020-06-10", rect(0, 0, 1000, 500))
    post_event(client, h["id"], "reclassification", "2020-06-10", None)
    body = client.get("/api/v1/states/KHM/chart.json", params={"as_of": "2020-12-31"}).json()
    series = {p["date"]: p for p in body["series"]}
    half = true_area(0, 500, 1000, 500)
    assert series["2020-06-30"]["sha_km2"] == approx_km2(0)
    assert series["2020-06-30"]["cha_km2"] == approx_km2(half)
    summary = client.get("/api/v1/states/KHM/summary", params={"as_of": "2020-12-31"}).json()
    assert summary["remaining"]["sha"]["area_m2"] == pytest.approx(0, abs=1)
    assert summary["remaining"]["cha"]["area_m2"] == pytest.approx(half, rel=1e-4)
