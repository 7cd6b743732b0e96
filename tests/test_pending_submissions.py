"""The submissions awaiting review as an OGC collection of their own (`pending_submissions`): not public,
each key reads its own part (the State's; an operator its organisation's), and what leaves review (approved,
rejected) leaves the collection; what a land-release report would release is what its hazard remains now
(stored with the report, measured again when the hazard changes); and the backlog the summaries show at a
past date, from the submissions' history."""
from __future__ import annotations

import re
from datetime import date

import mapbox_vector_tile
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import database, migrate
from app.settings import get_settings
from app.submissions.book import sql_claim_digest
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect, true_area
from tests.test_submissions import (  # noqa: F401 (fixtures)
    _organisation,
    _submit_hazard,
    _submit_release,
    _tile_containing,
    halo_and_mag,
    operator_of,
)

PENDING = "/collections/pending_submissions"


def _ids(who: TestClient, **params) -> set[str]:
    response = who.get(f"{PENDING}/items", params=params)
    assert response.status_code == 200, response.text
    return {f["id"] for f in response.json()["features"]}


@pytest.fixture
def queue(client, halo_and_mag) -> dict:  # noqa: F811
    """HALO: a new hazard (400 x 250 m) and a clearance of 100 x 500 m of H-1 (500 x 500 m, in the ledger);
    MAG: a new hazard (100 x 100 m)."""
    halo, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 1000, 500, 500))
    return {
        "halo": halo, "mag": mag, "hazard": hazard,
        "halo_hazard": _submit_hazard(halo, "NTS-1", rect(0, 0, 400, 250), date_of_information="2016-05-01"),
        "halo_clearance": _submit_release(halo, hazard["id"], "clearance", "2016-06-01", rect(0, 1000, 100, 500)),
        "mag_hazard": _submit_hazard(mag, "MAG-1", rect(2000, 0, 100, 100)),
    }


def test_reviewers_read_the_queue_with_what_each_would_release(client, queue) -> None:
    page = client.get(f"{PENDING}/items").json()
    assert page["numberMatched"] == 3
    by_id = {f["id"]: f for f in page["features"]}
    nts = by_id[queue["halo_hazard"]["id"]]["properties"]
    assert nts["kind"] == "hazard" and nts["status"] == "submitted" and nts["organisation"] == "HALO"
    assert nts["state"] == "KHM" and nts["date_of_information"] == "2016-05-01"
    assert nts["submitted_by"].startswith("operator") and nts["submitted_at"].startswith("20")
    assert nts["area_m2"] == pytest.approx(true_area(0, 0, 400, 250), abs=1) and nts["would_release_m2"] is None
    clearance = by_id[queue["halo_clearance"]["id"]]
    assert clearance["properties"]["event_kind"] == "clearance"
    assert clearance["properties"]["hazard_id"] == queue["hazard"]["id"]
    assert clearance["properties"]["would_release_m2"] == pytest.approx(true_area(0, 1000, 100, 500), abs=1)
    assert clearance["geometry"]["type"] == "MultiPolygon"
    # the queryables and their query parameters, CQL2, sorting follow from the declared properties
    queryables = client.get(f"{PENDING}/queryables").json()["properties"]
    assert {"kind", "status", "organisation", "would_release_m2", "submitted_at", "geometry"} <= set(queryables)
    assert _ids(client, kind="release") == {queue["halo_clearance"]["id"]}
    assert _ids(client, filter="organisation = 'MAG'") == {queue["mag_hazard"]["id"]}
    ordered = client.get(f"{PENDING}/items", params={"sortby": "-area_m2"}).json()["features"]
    assert [f["id"] for f in ordered] == [queue[k]["id"] for k in ("halo_hazard", "halo_clearance", "mag_hazard")]
    single = client.get(f"{PENDING}/items/{queue['mag_hazard']['id']}")
    assert single.status_code == 200 and single.json()["properties"]["organisation"] == "MAG"
    # nothing of it is in the ledger's layers
    hazards = client.get("/collections/hazardous_areas/items").json()["features"]
    assert [f["properties"]["external_id"] for f in hazards] == ["H-1"]
    assert client.get("/collections/land_release_events/items").json()["features"] == []


def test_each_key_reads_its_own_part_and_anonymous_readers_learn_nothing(client, client_as, queue,
                                                                         monkeypatch) -> None:
    halo, mag = queue["halo"], queue["mag"]
    mine = {queue["halo_hazard"]["id"], queue["halo_clearance"]["id"]}
    assert _ids(halo) == mine
    assert _ids(mag) == {queue["mag_hazard"]["id"]}
    assert halo.get(f"{PENDING}/items/{queue['mag_hazard']['id']}").status_code == 404
    assert _ids(halo, filter="organisation = 'MAG'") == set()
    assert halo.get(f"{PENDING}/items", params={"state": "BIH"}).status_code == 403
    # the tile that holds every polygon of the queue has HALO's only for HALO
    column, row = _tile_containing(2050, 50)
    tile_path = f"{PENDING}/tiles/WebMercatorQuad/12/{column}/{row}"
    def organisations(who: TestClient) -> set[str]:
        tile = who.get(tile_path)
        assert tile.status_code == 200
        return {f["properties"]["organisation"]
                for f in mapbox_vector_tile.decode(tile.content)["pending_submissions"]["features"]}

    assert organisations(client) == {"HALO", "MAG"} and organisations(halo) == {"HALO"}
    # the national centre reads the whole queue; another State's editor reads its own (empty) part
    assert _ids(client_as("editor", "KHM")) == mine | {queue["mag_hazard"]["id"]}
    assert _ids(client_as("viewer", "KHM")) == mine | {queue["mag_hazard"]["id"]}
    assert _ids(client_as("committee")) == mine | {queue["mag_hazard"]["id"]}
    bih = client_as("editor", "BIH")
    assert _ids(bih) == set()
    assert bih.get(f"{PENDING}/items/{queue['mag_hazard']['id']}").status_code == 404
    # without a key: 401 (as every read of a keyed service); with the reads open to the public, the
    # collection is not there at all, and its extent tells nothing of where the submissions lie
    anonymous = client_as(None)
    assert anonymous.get(f"{PENDING}/items").status_code == 401
    monkeypatch.setattr(get_settings(), "public_read", True)
    for path in (PENDING, f"{PENDING}/items", f"{PENDING}/items/{queue['mag_hazard']['id']}", f"{PENDING}/queryables",
                 f"{PENDING}/tiles", f"{PENDING}/tiles/WebMercatorQuad", tile_path):
        response = anonymous.get(path)
        assert response.status_code == 404, path
        assert "MAG" not in response.text
    assert "pending_submissions" not in {c["id"] for c in anonymous.get("/collections").json()["collections"]}
    assert anonymous.get("/collections/hazardous_areas/items").status_code == 200
    # an operator's key still reads its own part only, whatever the public may read
    assert _ids(halo) == mine
    assert _ids(client_as("editor", "BIH")) == set()


def test_the_api_document_names_only_the_public_collections(client, client_as, monkeypatch) -> None:
    """The OpenAPI document is one for every reader: it names what /collections lists to anyone, not the
    collection read with a key only (no path of its own, no query parameter of its properties)."""
    monkeypatch.setattr(get_settings(), "public_read", True)
    anonymous = client_as(None)
    public = {c["id"] for c in anonymous.get("/collections").json()["collections"]}
    assert "hazardous_areas" in public and "pending_submissions" not in public
    for path in ("/api", "/openapi.json"):
        response = anonymous.get(path)
        assert response.status_code == 200 and "pending_submissions" not in response.text, path
        document = response.json()
        own_paths = {p.split("/")[2] for p in document["paths"] if re.fullmatch(r"/collections/[^{/]+/items", p)}
        assert own_paths == (public if path == "/api" else set()), path
        names = {p["name"] for p in document["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]}
        assert "external_id" in names and not names & {"revision", "would_release_m2", "submitted_by"}, path
    assert client.get(f"{PENDING}/items").status_code == 200  # a key still reads it


def test_what_leaves_review_leaves_the_collection(client, queue) -> None:
    assert client.post(f"/api/v1/submissions/{queue['mag_hazard']['id']}/approve").status_code == 200
    assert client.post(f"/api/v1/submissions/{queue['halo_clearance']['id']}/reject",
                       json={"comment": "no clearance report of this site"}).status_code == 200
    returned = client.post(f"/api/v1/submissions/{queue['halo_hazard']['id']}/return",
                           json={"comment": "the polygon crosses the road"})
    assert returned.status_code == 200
    (left,) = client.get(f"{PENDING}/items").json()["features"]
    assert left["id"] == queue["halo_hazard"]["id"]
    assert left["properties"]["status"] == "returned"
    assert left["properties"]["comment"] == "the polygon crosses the road"
    assert _ids(client, status="submitted") == set()
    # the approved hazard is in the ledger's layer, once
    hazards = client.get("/collections/hazardous_areas/items").json()["features"]
    assert sorted(f["properties"]["external_id"] for f in hazards) == ["H-1", "MAG-1"]


def _claimed(client: TestClient, submission_id: str) -> tuple[float, float]:
    """What the land-release report would release, as the collection gives it and as the summaries' backlog counts
    it (in the State's summary and in the overview)."""
    would = client.get(f"{PENDING}/items/{submission_id}").json()["properties"]["would_release_m2"]
    (pending,) = client.get("/api/v1/states/KHM/summary").json()["pending"]
    row = next(r for r in client.get("/api/v1/summary").json()["states"] if r["state"] == "KHM")
    assert row["pending"] == [pending] and pending["kind"] == "release" and pending["count"] == 1
    return would, pending["area_m2"]


def test_what_a_report_would_release_follows_its_hazard(client, halo_and_mag) -> None:  # noqa: F811
    """MAG's clearance of the west 100 x 500 m of H-1 (500 x 500 m) waits for review while the centre clears the
    west 50 m itself, voids that clearance, corrects H-1's polygon 50 m east, and MAG resubmits 200 m wide."""
    _, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 1000, 500, 500))
    report = _submit_release(mag, hazard["id"], "clearance", "2024-02-10", rect(0, 1000, 100, 500))["id"]
    assert _claimed(client, report) == pytest.approx((true_area(0, 1000, 100, 500),) * 2, abs=1)
    cleared = post_event(client, hazard["id"], "clearance", "2024-03-01", rect(0, 1000, 50, 500))
    assert _claimed(client, report) == pytest.approx((true_area(50, 1000, 50, 500),) * 2, abs=1)
    assert client.post(f"/api/v1/events/{cleared['id']}/void", json={"reason": "entered twice"}).status_code == 200
    assert _claimed(client, report) == pytest.approx((true_area(0, 1000, 100, 500),) * 2, abs=1)
    corrected = client.patch(f"/api/v1/hazards/{hazard['id']}", params={"crs": UTM48N}, json={
        "reason": "the survey's polygon lies 50 m east", "geometry": rect(50, 1000, 500, 500)})
    assert corrected.status_code == 200, corrected.text
    assert _claimed(client, report) == pytest.approx((true_area(50, 1000, 50, 500),) * 2, abs=1)
    assert client.post(f"/api/v1/submissions/{report}/return", json={"comment": "the lane is 200 m wide"}
                       ).status_code == 200
    assert mag.put(f"/api/v1/submissions/{report}", params={"crs": UTM48N}, json={
        "kind": "clearance", "date": "2024-02-10", "geometry": rect(0, 1000, 200, 500)}).status_code == 200
    assert _claimed(client, report) == pytest.approx((true_area(50, 1000, 150, 500),) * 2, abs=1)


def test_migration_0019_measures_what_the_pending_reports_claim(client, halo_and_mag, database_url) -> None:  # noqa: F811
    """Reports pending when the claims began to be stored have theirs measured by the migration, current."""
    halo, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 1000, 500, 500))
    reports = [_submit_release(who, hazard["id"], kind, "2024-02-10", polygon)["id"] for who, kind, polygon in [
        (mag, "clearance", rect(0, 1000, 100, 500)), (halo, "cancellation", rect(400, 1000, 200, 500))]]
    before = ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_revision(
        "0019_submission_claims").down_revision
    try:
        migrate.downgrade(database_url, before)
        migrate.upgrade(database_url, "head")
    finally:
        migrate.upgrade(database_url, "head")
    with database.session() as session:
        stored = session.execute(text(
            f"SELECT s.claimed_m2, s.claimed_digest = {sql_claim_digest('s.geom', 'h.remaining_geom')} AS current "
            "FROM submissions s JOIN hazardous_areas h ON h.id = s.hazard_id WHERE s.id = ANY(:ids) "
            "ORDER BY array_position(CAST(:ids AS uuid[]), s.id)"), {"ids": reports}).all()
    assert [r.current for r in stored] == [True, True]
    assert [r.claimed_m2 for r in stored] == pytest.approx([true_area(0, 1000, 100, 500),
                                                            true_area(400, 1000, 100, 500)], abs=1)


def _dated(submission_id: str, action: str, revision: int, day: str) -> None:
    """The step of the submission's history as if it had been taken at noon that day."""
    with database.session() as session:
        done = session.execute(text("UPDATE submission_history SET at = CAST(:day AS date) + time '12:00' "
                                    "WHERE submission_id = :id AND action = :action AND revision = :revision"),
                               {"id": submission_id, "action": action, "revision": revision, "day": day})
        assert done.rowcount == 1
        session.commit()


def test_the_backlog_at_a_past_date_is_what_was_pending_then(client, halo_and_mag) -> None:  # noqa: F811
    """HALO's survey (400 x 250 m) is submitted on 2024-01-10, returned on 02-01, resubmitted smaller (200 x 250 m)
    on 03-01 and approved on 04-01; MAG's clearance of 100 x 500 m of H-1 (of which 100 x 200 m was cleared in
    2016) is submitted on 02-15 and rejected on 02-20; MAG's cancellation of H-1's west 50 x 500 m, submitted on
    03-10, still awaits review."""
    halo, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 1000, 500, 500))
    post_event(client, hazard["id"], "clearance", "2016-01-01", rect(0, 1000, 100, 200))
    survey = _submit_hazard(halo, "NTS-1", rect(0, 0, 400, 250))["id"]
    client.post(f"/api/v1/submissions/{survey}/return", json={"comment": "the survey crossed into the next village"})
    assert halo.put(f"/api/v1/submissions/{survey}", params={"crs": "EPSG:32648"}, json=hazard_feature(
        "NTS-1", rect(0, 0, 200, 250))).status_code == 200
    assert client.post(f"/api/v1/submissions/{survey}/approve").status_code == 200
    clearance = _submit_release(mag, hazard["id"], "clearance", "2024-02-10", rect(0, 1000, 100, 500))["id"]
    client.post(f"/api/v1/submissions/{clearance}/reject", json={"comment": "not this hazard's operator"})
    cancellation = _submit_release(mag, hazard["id"], "cancellation", "2024-03-05", rect(450, 1000, 50, 500))["id"]
    for submission, action, revision, day in [
            (survey, "submit", 1, "2024-01-10"), (survey, "return", 1, "2024-02-01"),
            (survey, "resubmit", 2, "2024-03-01"), (survey, "approve", 2, "2024-04-01"),
            (clearance, "submit", 1, "2024-02-15"), (clearance, "reject", 1, "2024-02-20"),
            (cancellation, "submit", 1, "2024-03-10")]:
        _dated(submission, action, revision, day)

    def backlog(day: str) -> dict[str, tuple[int, float]]:
        pending = client.get("/api/v1/states/KHM/summary", params={"as_of": day}).json()["pending"]
        row = next(r for r in client.get("/api/v1/summary", params={"as_of": day}).json()["states"]
                   if r["state"] == "KHM")
        assert row["pending"] == pending
        return {p["kind"]: (p["count"], p["area_m2"]) for p in pending}

    large, small = true_area(0, 0, 400, 250), true_area(0, 0, 200, 250)
    uncleared = true_area(0, 1200, 100, 300)  # the clearance's strip less what 2016 cleared
    west = true_area(450, 1000, 50, 500)
    expected = {
        "2024-01-09": {},
        "2024-01-10": {"hazard": (1, large)},
        "2024-02-01": {"hazard": (1, large)},  # returned for correction: still not approved
        "2024-02-15": {"hazard": (1, large), "release": (1, uncleared)},
        "2024-02-20": {"hazard": (1, large)},
        "2024-03-01": {"hazard": (1, small)},  # the revision then pending
        "2024-03-10": {"hazard": (1, small), "release": (1, west)},
        "2024-04-01": {"release": (1, west)},
    }
    for day, figures in expected.items():
        found = backlog(day)
        assert found.keys() == figures.keys(), day
        for kind, (count, area) in figures.items():
            assert found[kind][0] == count and found[kind][1] == pytest.approx(area, abs=1), (day, kind)
    assert backlog(date.today().isoformat()) == backlog("2024-04-01")
