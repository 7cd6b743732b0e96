"""A hazard recorded wrongly is corrected through the ledger: its attributes and its polygon, with a reason, the
previous values kept and readable, the events replayed on a corrected polygon (app/ledger/corrections.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import access, database
from tests.conftest import auth_headers
from tests.ledger_scenarios import UTM48N, post_event, post_hazard, rect, true_area


def correct(client, hazard_id: str, expect: int = 200, crs: str | None = UTM48N, **body) -> dict:
    response = client.patch(f"/api/v1/hazards/{hazard_id}", json=body, params={"crs": crs} if crs else {})
    assert response.status_code == expect, response.text
    return response.json()


def hazard(client, hazard_id: str) -> dict:
    response = client.get(f"/api/v1/hazards/{hazard_id}")
    assert response.status_code == 200, response.text
    return response.json()["properties"]


def test_attributes_are_corrected_with_their_history_and_in_the_audit_log(client) -> None:
    h = post_hazard(client, "KHM-C-1", rect(0, 0, 1000, 1000), name="Phum Thmay", priority="low")
    answer = correct(client, h["id"], reason="the survey report spells it Phum Thmei; the centre ranks it high",
                     properties={"name": "Phum Thmei", "priority": "high"})
    assert answer["before"] == {"name": "Phum Thmay", "priority": "low"}
    assert answer["after"] == {"name": "Phum Thmei", "priority": "high"}
    assert answer["polygon_corrected"] is False
    now = hazard(client, h["id"])
    assert now["name"] == "Phum Thmei" and now["priority"] == "high" and now["external_id"] == "KHM-C-1"

    history = client.get(f"/api/v1/hazards/{h['id']}/corrections").json()["corrections"]
    assert len(history) == 1
    assert history[0]["by"] == "test admin" and history[0]["reason"].startswith("the survey report")
    assert history[0]["before"]["name"] == "Phum Thmay" and history[0]["after"]["name"] == "Phum Thmei"
    assert history[0]["before_geometry"] is None

    entries = client.get("/api/v1/audit", params={"state": "KHM"}).json()["entries"]
    entry = next(e for e in entries if e["action"] == "correct")
    assert entry["row_id"] == h["id"] and entry["detail"]["reason"] == history[0]["reason"]
    assert entry["detail"]["before"] == {"name": "Phum Thmay", "priority": "low"}


def test_what_a_correction_refuses_changes_nothing(client) -> None:
    h = post_hazard(client, "KHM-C-2", rect(0, 0, 1000, 1000), name="A")
    post_hazard(client, "KHM-C-3", rect(5000, 0, 1000, 1000))
    post_event(client, h["id"], "cancellation", "2016-05-01", rect(0, 0, 200, 1000))
    # the class changes through a reclassification event, not a correction
    refused = correct(client, h["id"], 422, reason="it is confirmed", properties={"classification": "CHA"})
    assert "reclassification" in refused["detail"]
    # the declared rules of the way in
    refused = correct(client, h["id"], 422, reason="r", properties={"priority": "urgent"})
    assert "properties.priority" in refused["detail"]
    refused = correct(client, h["id"], 422, reason="r", properties={"colour": "red"})
    assert "colour" in refused["detail"]
    # a hazard is recorded before any of its land is released
    refused = correct(client, h["id"], 422, reason="r", properties={"recorded_on": "2017-01-01"})
    assert "2016-05-01" in refused["detail"]
    # external_id stays unique in the State
    refused = correct(client, h["id"], 409, reason="r", properties={"external_id": "KHM-C-3"})
    assert "KHM-C-3" in refused["detail"]
    assert correct(client, h["id"], 422, reason="r", properties={"name": "A"})["detail"].startswith(
        "The correction changes nothing")
    # a reason is required
    assert client.patch(f"/api/v1/hazards/{h['id']}", json={"properties": {"name": "B"}}).status_code == 422
    assert hazard(client, h["id"])["name"] == "A"
    assert client.get(f"/api/v1/hazards/{h['id']}/corrections").json()["corrections"] == []


def test_only_an_editor_of_the_state_or_an_admin_corrects(client, client_as) -> None:
    h = post_hazard(client, "KHM-C-4", rect(0, 0, 1000, 1000), name="A")
    body = {"reason": "typo", "properties": {"name": "B"}}
    assert client_as(None).patch(f"/api/v1/hazards/{h['id']}", json=body).status_code == 401
    assert client_as("viewer", "KHM").patch(f"/api/v1/hazards/{h['id']}", json=body).status_code == 403
    assert client_as("editor", "THA").patch(f"/api/v1/hazards/{h['id']}", json=body).status_code == 404
    assert client_as("editor", "KHM").patch(f"/api/v1/hazards/{h['id']}", json=body).status_code == 200
    assert hazard(client, h["id"])["name"] == "B"


def test_a_polygon_correction_replays_every_event_on_the_corrected_polygon(client) -> None:
    # recorded 1000 m wide, though the survey's polygon is 1200 m wide
    h = post_hazard(client, "KHM-C-5", rect(0, 0, 1000, 1000))
    cleared = post_event(client, h["id"], "clearance", "2016-03-01", rect(800, 0, 400, 1000))
    cancelled = post_event(client, h["id"], "cancellation", "2017-03-01", rect(0, 0, 300, 1000))
    assert cleared["released_area_m2"] == pytest.approx(true_area(800, 0, 200, 1000), abs=1.0)
    assert cleared["outside_area_m2"] == pytest.approx(true_area(1000, 0, 200, 1000), abs=1.0)

    answer = correct(client, h["id"], reason="the surveyed perimeter is 1200 m wide", geometry=rect(0, 0, 1200, 1000))
    assert answer["polygon_corrected"] is True
    assert answer["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1200, 1000), abs=1.0)
    assert answer["after"]["baseline_area_m2"] == answer["baseline_area_m2"]
    assert answer["before"]["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1000, 1000), abs=1.0)
    assert answer["remaining_area_m2"] == pytest.approx(true_area(300, 0, 500, 1000), abs=1.0)
    assert [e["id"] for e in answer["events"]] == [cleared["id"]]
    now = hazard(client, h["id"])
    events = {e["id"]: e for e in now["events"]}
    assert events[cleared["id"]]["released_area_m2"] == pytest.approx(true_area(800, 0, 400, 1000), abs=1.0)
    assert events[cleared["id"]]["outside_area_m2"] == pytest.approx(0.0, abs=1.0)
    assert events[cancelled["id"]]["released_area_m2"] == pytest.approx(true_area(0, 0, 300, 1000), abs=1.0)
    assert now["baseline_area_m2"] - sum(e["released_area_m2"] for e in events.values()) == pytest.approx(
        now["remaining_area_m2"], abs=1.0)
    # the polygons before and after are kept
    (kept,) = client.get(f"/api/v1/hazards/{h['id']}/corrections").json()["corrections"]
    assert kept["before_geometry"]["type"] == "MultiPolygon" and kept["after_geometry"]["type"] == "MultiPolygon"
    # as at a date before the events: the corrected polygon whole
    then = client.get(f"/api/v1/hazards/{h['id']}", params={"as_of": "2015-06-01"}).json()["properties"]
    assert then["remaining_area_m2"] == pytest.approx(true_area(0, 0, 1200, 1000), abs=1.0)


def test_a_polygon_correction_that_leaves_an_event_releasing_nothing_or_overlaps_is_refused(client) -> None:
    h = post_hazard(client, "KHM-C-6", rect(0, 0, 1000, 1000))
    post_hazard(client, "KHM-C-7", rect(2000, 0, 1000, 1000))
    event = post_event(client, h["id"], "clearance", "2016-03-01", rect(800, 0, 200, 1000))
    refused = correct(client, h["id"], 409, reason="narrower", geometry=rect(0, 0, 700, 1000))
    assert event["id"] in refused["detail"]
    refused = correct(client, h["id"], 409, reason="wider", geometry=rect(0, 0, 2500, 1000))
    assert "KHM-C-7" in refused["detail"]
    now = hazard(client, h["id"])
    assert now["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1000, 1000), abs=1.0)
    assert now["remaining_area_m2"] == pytest.approx(true_area(0, 0, 800, 1000), abs=1.0)
    assert client.get(f"/api/v1/hazards/{h['id']}/corrections").json()["corrections"] == []


@pytest.fixture
def operator(client) -> Iterator[TestClient]:
    """A client with an operator key of an organisation of KHM."""
    from app.main import create_app

    organisation = client.post("/api/v1/states/KHM/organisations", json={"name": "MAG", "kind": "ngo"}).json()["id"]
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name="MAG", role="operator", organisation_id=organisation)
    with TestClient(create_app(), headers=auth_headers(secret)) as made:
        yield made


def test_a_submitted_hazard_is_approved_as_a_correction_of_an_existing_one(client, operator) -> None:
    h = post_hazard(client, "KHM-C-8", rect(0, 0, 1000, 1000), name="Old survey", priority="low")
    event = post_event(client, h["id"], "cancellation", "2016-03-01", rect(800, 0, 400, 1000))
    # the operator's resurvey: 1200 m wide, a new name; its own reference and date
    resurvey = {"type": "Feature", "geometry": rect(0, 0, 1200, 1000),
                "properties": {"external_id": "MAG-2024-17", "classification": "SHA", "recorded_on": "2024-02-01",
                               "name": "Phum Thmei (resurvey)", "priority": "high"}}
    held = operator.post("/api/v1/states/KHM/submissions", json=resurvey, params={"crs": UTM48N, "border": "accept"})
    assert held.status_code == 201, held.text
    submission = held.json()["id"]
    assert hazard(client, h["id"])["name"] == "Old survey"  # nothing before approval

    wrong = client.post(f"/api/v1/submissions/{submission}/approve",
                        json={"reconcile": "correct", "hazard_id": event["id"]})
    assert wrong.status_code == 422
    approved = client.post(f"/api/v1/submissions/{submission}/approve",
                           json={"reconcile": "correct", "hazard_id": h["id"], "border": "accept",
                                 "reason": "MAG's resurvey of 2024 replaces the old polygon"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["properties"]["status"] == "approved"
    assert approved.json()["properties"]["applied"]["corrected"] == h["id"]

    now = hazard(client, h["id"])
    assert now["name"] == "Phum Thmei (resurvey)" and now["priority"] == "high"
    assert now["external_id"] == "KHM-C-8" and now["recorded_on"] == "2015-01-01"  # kept
    assert now["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1200, 1000), abs=1.0)
    (replayed,) = now["events"]
    assert replayed["released_area_m2"] == pytest.approx(true_area(800, 0, 400, 1000), abs=1.0)
    assert now["remaining_area_m2"] == pytest.approx(true_area(0, 0, 800, 1000), abs=1.0)
    (kept,) = client.get(f"/api/v1/hazards/{h['id']}/corrections").json()["corrections"]
    assert kept["submission_id"] == submission and kept["reason"].startswith("MAG's resurvey")
    assert kept["before"]["name"] == "Old survey"
    # no new hazard was made of it
    layer = client.get("/collections/hazardous_areas/items").json()
    assert [f["properties"]["external_id"] for f in layer["features"]] == ["KHM-C-8"]


def test_a_correction_the_ledger_refuses_leaves_the_submission_submitted(client) -> None:
    h = post_hazard(client, "KHM-C-9", rect(0, 0, 1000, 1000))
    cha = {"type": "Feature", "geometry": rect(0, 0, 1000, 1000),
           "properties": {"external_id": "X-1", "classification": "CHA", "recorded_on": "2020-01-01",
                          "name": "Confirmed by technical survey"}}
    # an admin's submission is the centre's own entry, approved at once: submit as an operator's instead
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import Session

    from app import access, database
    from app.main import create_app
    from tests.conftest import auth_headers

    organisation = client.post("/api/v1/states/KHM/organisations", json={"name": "NPA", "kind": "ngo"}).json()["id"]
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name="NPA", role="operator", organisation_id=organisation)
    sha = {**cha, "properties": {**cha["properties"], "external_id": "X-2", "classification": "SHA"}}
    with TestClient(create_app(), headers=auth_headers(secret)) as operator:
        held = operator.post("/api/v1/states/KHM/submissions", json=cha, params={"crs": UTM48N, "border": "accept"})
        held_sha = operator.post("/api/v1/states/KHM/submissions", json=sha, params={"crs": UTM48N, "border": "accept"})
    assert held.status_code == 201 and held_sha.status_code == 201, (held.text, held_sha.text)
    refused = client.post(f"/api/v1/submissions/{held.json()['id']}/approve",
                          json={"reconcile": "correct", "hazard_id": h["id"]})
    # the reviewer is told what to do: record the reclassification, then approve again
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert f"POST /api/v1/hazards/{h['id']}/events with kind reclassification" in detail, detail
    assert "then approve this submission again with reconcile=correct" in detail
    in_french = client.post(f"/api/v1/submissions/{held.json()['id']}/approve", params={"lang": "fr"},
                            json={"reconcile": "correct", "hazard_id": h["id"]})
    assert in_french.json()["detail"].startswith(f"La soumission donne une ZDC et la zone dangereuse {h['id']}")
    assert client.get(f"/api/v1/submissions/{held.json()['id']}").json()["properties"]["status"] == "submitted"
    assert hazard(client, h["id"])["classification"] == "SHA"
    # done so, the same submission is approved as the correction it is
    post_event(client, h["id"], "reclassification", "2019-06-01", None)
    approved = client.post(f"/api/v1/submissions/{held.json()['id']}/approve",
                           json={"reconcile": "correct", "hazard_id": h["id"], "border": "accept"})
    assert approved.status_code == 200, approved.text
    # a hazard recorded as a CHA does not become an SHA: the submission goes back to its operator
    confirmed = post_hazard(client, "KHM-C-10", rect(3000, 0, 500, 500), classification="CHA")
    back = client.post(f"/api/v1/submissions/{held_sha.json()['id']}/approve",
                       json={"reconcile": "correct", "hazard_id": confirmed["id"]})
    assert back.status_code == 422 and "Return the submission to the operator" in back.json()["detail"], back.text
