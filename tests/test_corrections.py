"""The Committee corrects Article 5 facts through the API, with a reason; every correction is kept and shown in
the State's history."""
from __future__ import annotations

from sqlalchemy import text

from app import database
from app.committee.article5 import seed_reference_data


def history(client, iso3: str) -> list[dict]:
    response = client.get(f"/api/v1/states/{iso3}")
    assert response.status_code == 200, response.text
    return response.json()["decisions"]


def afg_20msp(client) -> dict:
    return next(d for d in history(client, "AFG") if d["meeting"] == "20MSP")


def correct(client, iso3: str, decision_id: str, expect: int = 201, **body) -> dict:
    response = client.post(f"/api/v1/states/{iso3}/article5/decisions/{decision_id}/corrections", json=body)
    assert response.status_code == expect, response.text
    return response.json()


def test_only_the_committee_or_an_admin_corrects(client, client_as) -> None:
    target = afg_20msp(client)["id"]
    path = f"/api/v1/states/AFG/article5/decisions/{target}/corrections"
    body = {"reason": "APLC/MSP.20/2022/xx read", "source": "APLC/MSP.20/2022/xx", "confidence": "high"}
    assert client_as(None).post(path, json=body).status_code == 401
    for role in ("viewer", "editor"):
        response = client_as(role, "AFG").post(path, json=body)
        assert response.status_code == 403, role
        assert "Committee" in response.json()["detail"]
    assert afg_20msp(client)["corrected"] is False
    response = client_as("committee").post(path, json=body)
    assert response.status_code == 201, response.text
    # The history is public and does not name the key; the audit log does.
    record = client_as("viewer", "AFG").get("/api/v1/states/AFG")
    assert "test committee" not in record.text
    audit = client_as("committee").get("/api/v1/audit", params={"state": "AFG"}).json()
    entry = next(e for e in audit["entries"] if e["action"] == "correct")
    assert entry["actor"] == "test committee all" and entry["detail"]["replaces"] == target
    assert entry["detail"]["reason"] == "APLC/MSP.20/2022/xx read"


def test_a_correction_replaces_the_fact_and_keeps_its_trace(client) -> None:
    old = afg_20msp(client)
    assert old["deadline"] == "2025-03-01" and old["confidence"] == "high"
    created = correct(client, "AFG", old["id"], reason="the decision document gives 2025-06-01",
                      deadline="2025-06-01", decided_on="2022-11-25", decided_by=None,
                      source="APLC/MSP.20/2022/xx", confidence="high")
    new = created["decision"]
    assert new["replaces"] == old["id"] and new["correction_reason"] == "the decision document gives 2025-06-01"
    assert new["deadline"] == "2025-06-01" and new["decided_on"] == "2022-11-25" and new["decided_by"] is None
    assert new["meeting"] == "20MSP"  # what was not corrected stays
    decisions = history(client, "AFG")
    kept = next(d for d in decisions if d["id"] == old["id"])
    assert kept["corrected"] is True and kept["deadline"] == "2025-03-01"  # the corrected fact is still shown
    assert [d["id"] for d in decisions if d["replaces"] == old["id"]] == [new["id"]]
    # It counts with its corrected values.
    summary = client.get("/api/v1/states/AFG/summary", params={"as_of": "2024-06-30"}).json()["article5"]
    assert summary["deadline"] == "2025-06-01" and summary["extensions"] == 2
    # A corrected fact is corrected through its correction; the chain is kept.
    body = correct(client, "AFG", old["id"], 409, reason="again", note="x")
    assert new["id"] in body["detail"]
    second = correct(client, "AFG", new["id"], reason="typo in the source", source="APLC/MSP.20/2022/7")
    assert second["decision"]["replaces"] == new["id"]
    assert [d["corrected"] for d in history(client, "AFG") if d["meeting"] == "20MSP"] == [True, True, False]
    # Loading the reference file again does not bring back the corrected fact.
    with database.get_engine().begin() as conn:
        assert seed_reference_data(conn) == 0
    assert sum(1 for d in history(client, "AFG") if d["meeting"] == "20MSP" and not d["corrected"]) == 1


def test_a_correction_moves_the_work_plan(client) -> None:
    third = history(client, "KHM")[-1]
    response = client.put("/api/v1/states/KHM/milestones", params={"decision_id": third["id"]},
                          json=[{"year": 2026, "area_m2": 1_000_000}])
    assert response.status_code == 200, response.text
    created = correct(client, "KHM", third["id"], reason="the final report gives the day",
                      decided_on="2025-12-05", decided_by=None)
    assert created["decision"]["milestones"] == [{"year": 2026, "area_m2": 1_000_000, "areas": None}]
    assert next(d for d in history(client, "KHM") if d["id"] == third["id"])["milestones"] == []


def test_bad_corrections_are_refused_and_nothing_is_written(client) -> None:
    old = afg_20msp(client)
    correct(client, "AFG", old["id"], 422, note="no reason given")
    correct(client, "AFG", old["id"], 422, reason="  ", note="blank reason")
    body = correct(client, "AFG", old["id"], 422, reason="nothing")
    assert "changes nothing" in body["detail"]
    correct(client, "AFG", old["id"], 422, reason="same", deadline=old["deadline"])
    correct(client, "AFG", old["id"], 422, reason="kind", kind="completion")
    body = correct(client, "AFG", old["id"], 422, reason="future", decided_on="2099-01-01")
    assert "future" in body["detail"]
    correct(client, "AFG", old["id"], 422, reason="bad date", decided_on="2022-02-30")
    omn = next(d for d in history(client, "OMN") if d["kind"] == "completion")
    body = correct(client, "OMN", omn["id"], 422, reason="a completion has no deadline", deadline="2025-02-01")
    assert "no deadline" in body["detail"]
    correct(client, "AFG", "00000000-0000-0000-0000-000000000000", 404, reason="x", note="y")
    correct(client, "KHM", old["id"], 404, reason="another State's decision", note="y")
    correct(client, "XXX", old["id"], 404, reason="x", note="y")
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM article5_decisions WHERE replaces IS NOT NULL")).scalar() == 0
