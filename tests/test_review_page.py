"""The review page (/dashboard/{iso3}/review) in a real browser: the national centre's queue with each
submission on a map over the land that remains of its hazard, what approving would change, and the
approve / return / reject buttons; an operator sees its own organisation's submissions only."""
from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session

from app import access, database
from tests.conftest import auth_headers
from tests.headless_chromium import Chromium
from tests.ledger_scenarios import hazard_feature, rect

READY = "document.body.dataset.loaded"
MAP_IDLE = "document.getElementById('map').dataset.state === 'idle'"
UTM = {"crs": "EPSG:32648"}


def _operator(admin: httpx.Client, name: str) -> tuple[str, str]:
    organisation = admin.post("/api/v1/states/KHM/organisations", json={"name": name, "kind": "ngo"}).json()["id"]
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name=f"{name} field office", role="operator",
                                      organisation_id=organisation)
    return organisation, secret


def test_the_centre_reviews_and_the_operator_follows_its_own(live_server, admin_key, artifacts_dir) -> None:
    admin = httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=60)
    hazard = admin.post("/api/v1/states/KHM/hazards", params=UTM,
                        json=hazard_feature("H-1", rect(0, 0, 500, 500))).json()["hazards"][0]
    _, halo_key = _operator(admin, "HALO")
    _, mag_key = _operator(admin, "MAG")
    halo = httpx.Client(base_url=live_server, headers=auth_headers(halo_key), timeout=60)
    mag = httpx.Client(base_url=live_server, headers=auth_headers(mag_key), timeout=60)
    clearance = halo.post(f"/api/v1/hazards/{hazard['id']}/submissions", params=UTM, json={
        "kind": "clearance", "date": "2016-01-01", "geometry": rect(0, 0, 200, 500)}).json()
    survey = mag.post("/api/v1/states/KHM/submissions", params=UTM,
                      json=hazard_feature("NTS-1", rect(1000, 0, 300, 300))).json()

    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard/KHM/review#key={admin_key}")
        assert browser.wait_for(READY) == "true", browser.evaluate("document.getElementById('status').textContent")
        assert browser.evaluate("document.getElementById('queue').dataset.count") == "2"
        browser.wait_for(MAP_IDLE)
        # the first in the queue: HALO's clearance over what remains of H-1
        assert browser.evaluate("document.getElementById('map').dataset.submitted") == "true"
        assert browser.evaluate("document.getElementById('map').dataset.remaining") == "true"
        assert browser.evaluate("document.getElementById('details').dataset.approvable") == "true"
        assert "release 100" in browser.evaluate("document.getElementById('details').textContent")
        browser.screenshot(artifacts_dir / "review_queue_KHM.png")

        browser.evaluate("document.querySelector('#review-form [data-action=approve]').click()")
        browser.wait_for("document.getElementById('review-result').dataset.outcome === 'approved'")
        assert admin.get(f"/api/v1/submissions/{clearance['id']}").json()["properties"]["status"] == "approved"
        browser.wait_for("document.getElementById('queue').dataset.count === '1'")

        # a return needs its comment; with one, MAG's survey goes back to MAG
        browser.wait_for(MAP_IDLE)
        browser.evaluate("document.querySelector('#review-form [data-action=return]').click()")
        browser.wait_for("document.getElementById('review-result').dataset.outcome === 'refused'")
        browser.evaluate("""(() => { document.getElementById('comment').value = 'Which village is this?';
                                    document.querySelector('#review-form [data-action=return]').click(); })()""")
        browser.wait_for("document.getElementById('queue').dataset.count === '0'")
        assert admin.get(f"/api/v1/submissions/{survey['id']}").json()["properties"]["status"] == "returned"
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations

        # MAG's page: its own submission, returned, with the centre's comment, and no buttons to review it
        browser.evaluate("sessionStorage.clear()")
        browser.open(f"{live_server}/dashboard/KHM/review?operator=MAG#key={mag_key}")  # a new page, not a new fragment
        browser.evaluate("(() => { document.getElementById('status-filter').value = ''; "
                         "document.getElementById('filter-form').requestSubmit(); })()")
        browser.wait_for("document.getElementById('queue').dataset.count === '1'")
        browser.wait_for(MAP_IDLE)
        assert "Which village is this?" in browser.evaluate("document.getElementById('details').textContent")
        assert browser.evaluate("document.getElementById('review-form').hidden") is True
        assert browser.evaluate("document.querySelector('#queue li').dataset.status") == "returned"
        browser.screenshot(artifacts_dir / "review_operator_MAG.png")


def test_the_reviewer_approves_a_survey_as_a_correction_of_the_hazard_it_redraws(live_server, admin_key) -> None:
    """A resurveyed hazard comes in as a new polygon: the reviewer picks the hazard under it and approves the
    submission as its correction (not a second, overlapping hazard)."""
    admin = httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=60)
    hazard = admin.post("/api/v1/states/KHM/hazards", params=UTM,
                        json=hazard_feature("H-1", rect(0, 0, 500, 500))).json()["hazards"][0]
    _, halo_key = _operator(admin, "HALO")
    halo = httpx.Client(base_url=live_server, headers=auth_headers(halo_key), timeout=60)
    redrawn = halo.post("/api/v1/states/KHM/submissions", params=UTM,
                        json=hazard_feature("H-1-NTS", rect(0, 0, 500, 600))).json()

    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard/KHM/review#key={admin_key}")
        assert browser.wait_for(READY) == "true", browser.evaluate("document.getElementById('status').textContent")
        browser.wait_for("document.getElementById('reconcile-hazard').dataset.count === '1'")
        assert browser.evaluate("document.getElementById('reconcile').hidden") is False
        assert browser.evaluate("document.getElementById('reconcile-hazard').value") == hazard["id"]
        # approved as a new hazard, it would count H-1's land twice: the page says why it is refused
        browser.evaluate("document.querySelector('#review-form [data-action=approve]').click()")
        browser.wait_for("document.getElementById('review-result').dataset.outcome === 'refused'")
        assert "overlap" in browser.evaluate("document.getElementById('review-result').textContent")
        browser.evaluate("""(() => { const as = document.getElementById('reconcile-as'); as.value = 'correct';
                                    as.dispatchEvent(new Event('change')); })()""")
        assert browser.evaluate("document.getElementById('reconcile-kind').parentElement.hidden") is True
        browser.evaluate("document.querySelector('#review-form [data-action=approve]').click()")
        browser.wait_for("document.getElementById('review-result').dataset.outcome === 'approved'")
    after = admin.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]
    assert after["baseline_area_m2"] == pytest.approx(hazard["baseline_area_m2"] * 1.2, rel=1e-4)
    assert after["external_id"] == "H-1"  # a correction keeps the hazard's reference
    assert admin.get(f"/api/v1/submissions/{redrawn['id']}").json()["properties"]["status"] == "approved"
    assert admin.get("/api/v1/states/KHM/hazards").json()["numberMatched"] == 1
