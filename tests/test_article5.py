"""Article 5 reference data and decisions: deadlines as a history, validated, with source and confidence."""
from __future__ import annotations

import csv
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from app import database
from app.committee.article5 import DECISIONS_CSV, REFERENCE_SOURCE, seed_reference_data


def state(client, iso3: str) -> dict:
    response = client.get(f"/api/v1/states/{iso3}")
    assert response.status_code == 200, response.text
    return response.json()


def decide(client, iso3: str, expect: int = 201, **body) -> dict:
    response = client.post(f"/api/v1/states/{iso3}/article5/decisions", json=body)
    assert response.status_code == expect, response.text
    return response.json()


def article5_at(client, iso3: str, as_of: str) -> dict:
    response = client.get(f"/api/v1/states/{iso3}/summary", params={"as_of": as_of})
    assert response.status_code == 200, response.text
    return response.json()["article5"]


# --- reference data --------------------------------------------------------------------------------
def test_every_state_of_the_reference_file_is_listed_with_its_deadline(client) -> None:
    response = client.get("/api/v1/states")
    assert response.status_code == 200
    states = {s["iso3"]: s for s in response.json()["states"]}
    assert len(states) == 35  # 30 with mined areas, and the five that withdrew in 2025
    khm = states["KHM"]
    assert khm["name"] == "Cambodia"
    assert khm["entry_into_force"] == "2000-01-01"
    assert khm["original_deadline"] == "2010-01-01"
    assert khm["deadline"] == "2030-12-31"  # the third extension, granted at the 22MSP (December 2025)
    assert khm["extensions"] == 3
    assert khm["status"] == "obligation" and khm["bound"] is True
    assert states["IRQ"]["deadline"] == "2028-02-01" and states["IRQ"]["extensions"] == 1
    # Completed, no extension.
    assert states["OMN"]["status"] == "completed"
    assert states["OMN"]["deadline"] == "2025-02-01" and states["OMN"]["extensions"] == 0
    # Still within the original deadline.
    assert states["PSE"]["deadline"] == "2028-06-01" and states["PSE"]["extensions"] == 0
    # Chad's deadline after 1 January 2025 is not known: it is not invented.
    assert states["TCD"]["original_deadline"] == "2009-11-01"
    assert states["TCD"]["deadline"] is None and states["TCD"]["extensions"] is None


def test_the_reference_facts_are_dated_decisions_with_source_confidence_and_note(client) -> None:
    khm = state(client, "KHM")
    kinds = [(d["kind"], d["meeting"]) for d in khm["decisions"]]
    assert kinds == [("original_deadline", None), ("extension", "9MSP"), ("extension", "Fourth Review Conference"),
                     ("extension", "22MSP")]
    original, _, _, third = khm["decisions"]
    assert original["deadline"] == "2010-01-01" and original["decided_on"] == "2000-01-01"
    assert original["source"] == REFERENCE_SOURCE and original["confidence"] == "high"
    assert third["deadline"] == "2030-12-31" and third["extensions_count"] == 1
    assert third["decided_on"] is None  # the day of the decision is not known: not made up
    assert third["decided_by"] == "2025-12-05"  # the meeting's closing day
    assert third["effective_on"] == "2025-12-05"
    assert third["confidence"] == "high" and "Asia News Network" in third["source"]
    assert "unanimously" in third["note"]
    omn = state(client, "OMN")
    completion = next(d for d in omn["decisions"] if d["kind"] == "completion")
    assert completion["decided_on"] is None and completion["decided_by"] is None
    assert "Landmine Monitor 2025" in completion["source"]
    tcd = state(client, "TCD")
    unknown = tcd["decisions"][-1]
    assert unknown["kind"] == "extension" and unknown["deadline"] is None and unknown["confidence"] == "low"
    assert unknown["applies_from"] == "2025-01-01" and "not known" in unknown["note"]


def test_reference_seed_is_idempotent_and_never_overwrites(client) -> None:
    with database.get_engine().begin() as conn:
        before = conn.execute(text("SELECT count(*) FROM article5_decisions")).scalar_one()
        assert seed_reference_data(conn) == 0
        assert conn.execute(text("SELECT count(*) FROM article5_decisions")).scalar_one() == before
    with DECISIONS_CSV.open(encoding="utf-8") as f:
        rows = sum(1 for _ in csv.DictReader(f))
    assert before == 30 + rows  # an original deadline for each State with mined areas, and the file's facts


@pytest.mark.parametrize(("iso3", "as_of", "deadline", "extensions"), [
    ("KHM", "2005-06-30", "2010-01-01", 0),
    ("KHM", "2015-06-30", "2020-01-01", 1),
    ("KHM", "2025-12-04", "2025-12-31", 2),  # the 22MSP had not decided yet
    ("KHM", "2026-01-01", "2030-12-31", 3),
    ("AFG", "2015-06-30", "2023-03-01", 1),  # not the 2025 deadline granted later
    ("AFG", "2024-06-30", "2025-03-01", 2),
    ("AFG", "2025-06-30", "2030-03-01", 3),  # granted at the Fifth Review Conference (Nov 2024)
    ("ZWE", "2014-12-31", "2018-01-01", 4),  # the Third Review Conference's, not a 14MSP one
    ("BIH", "2019-06-30", "2021-03-01", 2),
    ("BIH", "2021-06-30", "2027-03-01", 3),
])
def test_a_past_date_shows_the_deadline_in_force_then(client, iso3: str, as_of: str, deadline: str,
                                                      extensions: int) -> None:
    a5 = article5_at(client, iso3, as_of)
    assert a5["deadline"] == deadline and a5["extensions"] == extensions and a5["status"] == "obligation"
    assert a5["bound"] is True


def test_before_the_entry_into_force_nothing_applies(client) -> None:
    a5 = article5_at(client, "KHM", "1999-06-30")
    assert a5["status"] == "not_in_force" and a5["deadline"] is None and a5["bound"] is False
    assert "2000-01-01" in a5["bound_reason"]


def test_unknown_state_is_404(client) -> None:
    for path in ("/api/v1/states/XXX", "/api/v1/states/XXX/summary", "/api/v1/states/XXX/report?year=2022"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "XXX" in response.json()["detail"]
    response = client.post("/api/v1/states/XXX/article5/decisions",
                           json={"kind": "extension", "decided_on": "2024-01-01", "deadline": "2030-01-01"})
    assert response.status_code == 404
    response = client.put("/api/v1/states/XXX/milestones", json=[{"year": 2026, "area_m2": 1000}])
    assert response.status_code == 404


# --- decisions -------------------------------------------------------------------------------------
def test_an_extension_moves_the_deadline_from_the_day_it_is_granted(client) -> None:
    created = decide(client, "TUR", kind="extension", decided_on="2025-12-04", deadline="2030-12-31",
                     meeting="22MSP", source="APLC/MSP.22/2025/xx", confidence="high")
    assert created["decision"]["kind"] == "extension"
    assert created["decision"]["extensions_count"] == 1
    assert created["decision"]["meeting"] == "22MSP"
    assert created["article5"]["deadline"] == "2030-12-31" and created["article5"]["extensions"] == 3
    tur = state(client, "TUR")
    assert [d["kind"] for d in tur["decisions"]] == ["original_deadline"] + ["extension"] * 4
    assert tur["decisions"][3]["source"] == "APLC/MSP.22/2025/xx"
    # The reference file's "later extension, deadline unknown" is the one now recorded: kept, no longer counted.
    assert [d["superseded"] for d in tur["decisions"]] == [False, False, False, False, True]
    before = article5_at(client, "TUR", "2025-12-03")
    assert before["deadline"] == "2025-12-31" and before["extensions"] == 2
    after = article5_at(client, "TUR", "2025-12-04")
    assert after["deadline"] == "2030-12-31" and after["extensions"] == 3
    assert after["days_remaining"] == (date(2030, 12, 31) - date(2025, 12, 4)).days
    # The decision is in the audit trail.
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE table_name = 'article5_decisions'")
                            ).scalar_one() == 1


def test_recording_the_dated_history_replaces_the_reference_summary(client) -> None:
    # Argentina: the reference file knows only the last deadline (2026-03-01, after 3 extensions).
    decide(client, "ARG", kind="extension", decided_on="2008-11-28", deadline="2019-03-01", meeting="9MSP")
    now = state(client, "ARG")["article5"]
    assert now["deadline"] == "2026-03-01" and now["extensions"] == 3  # within the summary: not counted twice
    then = article5_at(client, "ARG", "2009-01-15")
    assert then["deadline"] == "2019-03-01" and then["extensions"] == 1
    # The one with the reference file's deadline: the dated record replaces the summary.
    decide(client, "ARG", kind="extension", decided_on="2018-11-30", deadline="2026-03-01", meeting="17MSP")
    arg = state(client, "ARG")
    assert arg["article5"]["deadline"] == "2026-03-01" and arg["article5"]["extensions"] == 2
    summary_row = next(d for d in arg["decisions"] if d["kind"] == "extension" and d["decided_on"] is None)
    assert summary_row["superseded"] is True  # kept in the history, no longer counted
    mid = article5_at(client, "ARG", "2015-06-30")
    assert mid["deadline"] == "2019-03-01" and mid["extensions"] == 1
    # A new extension after the last known one counts on top.
    created = decide(client, "ARG", kind="extension", decided_on="2025-12-04", deadline="2030-12-31")
    assert created["article5"]["extensions"] == 3


def test_extension_validation(client) -> None:
    # Not later than the deadline it extends.
    body = decide(client, "KHM", 422, kind="extension", decided_on="2025-11-20", deadline="2025-12-30")
    assert "not later than the deadline it extends (2025-12-31)" in body["detail"]
    decide(client, "KHM", 422, kind="extension", decided_on="2025-11-20", deadline="2024-01-01")
    # More than ten years.
    body = decide(client, "KHM", 422, kind="extension", decided_on="2025-11-20", deadline="2036-01-01")
    assert "ten years" in body["detail"]
    # No deadline.
    body = decide(client, "KHM", 422, kind="extension", decided_on="2025-11-20")
    assert "deadline" in body["detail"]
    # Dates must be real dates and not in the future.
    body = decide(client, "KHM", 422, kind="extension", decided_on="2025-02-30", deadline="2030-12-31")
    assert "decided_on" in body["detail"]
    decide(client, "KHM", 422, kind="extension", decided_on="2025-11-20", deadline="2030-13-01")
    future = (date.today() + timedelta(days=3)).isoformat()
    body = decide(client, "KHM", 422, kind="extension", decided_on=future, deadline="2035-12-31")
    assert "future" in body["detail"]
    # Before entry into force; unknown kind; original deadlines are not posted.
    decide(client, "KHM", 422, kind="extension", decided_on="1999-12-01", deadline="2011-01-01")
    decide(client, "KHM", 422, kind="amnesty", decided_on="2025-11-20")
    decide(client, "KHM", 422, kind="original_deadline", decided_on="2025-11-20", deadline="2030-01-01")
    # A back-dated extension must end before a later one (the 22MSP's 2030-12-31).
    body = decide(client, "KHM", 422, kind="extension", decided_on="2025-11-20", deadline="2030-12-31")
    assert "later extension" in body["detail"]
    decide(client, "KHM", kind="extension", decided_on="2025-11-20", deadline="2028-12-31")
    body = decide(client, "KHM", 422, kind="extension", decided_on="2025-06-01", deadline="2029-12-31")
    assert "later extension" in body["detail"]
    # Nothing half-written: only the one valid extension was stored.
    assert [d["kind"] for d in state(client, "KHM")["decisions"]] == ["original_deadline"] + ["extension"] * 4


def test_an_extension_of_an_unknown_deadline_must_be_later_than_every_known_one(client) -> None:
    decide(client, "ERI", 422, kind="extension", decided_on="2024-11-01", deadline="2009-06-01")
    created = decide(client, "ERI", kind="extension", decided_on="2024-11-01", deadline="2030-01-01")
    assert created["article5"]["deadline"] == "2030-01-01"
    assert created["article5"]["extensions"] is None  # unknown + 1 is still unknown


def test_completion_and_reopening(client) -> None:
    decide(client, "KHM", 422, kind="completion", decided_on="2026-01-10", deadline="2027-01-01")
    decide(client, "KHM", 422, kind="reopening", decided_on="2026-01-10")  # not completed
    decide(client, "KHM", kind="completion", decided_on="2026-01-10", note="declaration at the Intersessionals")
    decide(client, "KHM", 422, kind="completion", decided_on="2026-02-01")  # already completed
    decide(client, "KHM", 422, kind="extension", decided_on="2026-02-01", deadline="2031-01-01")
    decide(client, "KHM", 422, kind="reopening", decided_on="2026-03-01", deadline="2026-02-01")
    decide(client, "KHM", kind="reopening", decided_on="2026-03-01", deadline="2027-12-31",
           note="previously unknown mined areas found in Pailin")
    assert article5_at(client, "KHM", "2026-01-09")["status"] == "obligation"
    completed = article5_at(client, "KHM", "2026-02-15")
    assert completed["status"] == "completed" and completed["deadline"] == "2030-12-31"
    reopened = article5_at(client, "KHM", "2026-03-01")
    assert reopened["status"] == "obligation" and reopened["deadline"] == "2027-12-31"
    assert reopened["extensions"] == 3


def test_withdrawal_takes_effect_six_months_after_notification(client) -> None:
    decide(client, "SRB", 422, kind="withdrawal_effective", decided_on="2025-12-01")
    decide(client, "SRB", kind="withdrawal_notified", decided_on="2025-06-30", source="depositary notification")
    decide(client, "SRB", 422, kind="withdrawal_notified", decided_on="2025-07-15")
    body = decide(client, "SRB", 422, kind="withdrawal_effective", decided_on="2025-12-01")
    assert "2025-12-30" in body["detail"]
    body = decide(client, "SRB", 422, kind="withdrawal_effective", decided_on="2026-01-15")
    assert "takes effect on 2025-12-30" in body["detail"]
    notified = article5_at(client, "SRB", "2025-07-01")
    assert notified["status"] == "withdrawal_notified" and notified["bound"] is True
    assert "2025-12-30" in notified["bound_reason"]
    # Without the date recorded, the rule gives it; recording it changes nothing.
    assert article5_at(client, "SRB", "2025-12-30")["status"] == "withdrawn"
    decide(client, "SRB", kind="withdrawal_effective", decided_on="2025-12-30")
    gone = article5_at(client, "SRB", "2026-02-01")
    assert gone["status"] == "withdrawn" and gone["bound"] is False
    assert gone["withdrawal_effective_on"] == "2025-12-30"
    assert gone["on_track"] is None and gone["required_rate_m2_per_year"] is None
    assert article5_at(client, "SRB", "2025-12-29")["bound"] is True


def test_only_the_committee_or_an_admin_records_decisions(client_as) -> None:
    body = {"kind": "extension", "decided_on": "2025-11-20", "deadline": "2028-12-31"}
    assert client_as("editor", "KHM").post("/api/v1/states/KHM/article5/decisions", json=body).status_code == 403
    assert client_as(None).post("/api/v1/states/KHM/article5/decisions", json=body).status_code == 401
    committee = client_as("committee")
    assert committee.post("/api/v1/states/KHM/article5/decisions", json=body).status_code == 201
    # the decision history is public: it does not name the key that recorded it; the audit log does
    history = client_as("viewer", "KHM").get("/api/v1/states/KHM")
    assert history.status_code == 200
    assert "test committee" not in history.text
    audit = committee.get("/api/v1/audit", params={"state": "KHM"}).json()
    assert any(e["actor"] == "test committee all" and e["table"] == "article5_decisions"
               for e in audit["entries"]), audit


# --- work plans ------------------------------------------------------------------------------------
def test_milestones_belong_to_the_extension_in_force(client) -> None:
    extension = state(client, "KHM")["decisions"][-1]  # the 22MSP's, in force today
    assert extension["meeting"] == "22MSP"
    plan = [{"year": 2026, "area_m2": 12_500_000, "areas": 140}, {"year": 2027, "area_m2": 11_000_000}]
    response = client.put("/api/v1/states/KHM/milestones", json=plan)
    assert response.status_code == 200, response.text
    assert response.json()["decision_id"] == extension["id"]
    stored = state(client, "KHM")["decisions"][-1]
    assert stored["id"] == extension["id"]
    assert stored["milestones"] == [{"year": 2026, "area_m2": 12_500_000, "areas": 140},
                                    {"year": 2027, "area_m2": 11_000_000, "areas": None}]
    # PUT replaces the plan.
    response = client.put("/api/v1/states/KHM/milestones",
                          json={"decision_id": extension["id"], "milestones": [{"year": 2028, "area_m2": 9e6}]})
    assert response.status_code == 200, response.text
    assert [m["year"] for m in state(client, "KHM")["decisions"][-1]["milestones"]] == [2028]


def test_milestone_validation(client) -> None:
    for plan, words in (
        ([{"year": 2026, "area_m2": 1}, {"year": 2026, "area_m2": 2}], "repeated: 2026"),
        ([{"year": 2031, "area_m2": 1}], "outside"),
        ([{"year": 2026, "area_m2": -5}], "area_m2"),
        ([{"year": 2026}], "area_m2"),
    ):
        response = client.put("/api/v1/states/KHM/milestones", json=plan)
        assert response.status_code == 422, plan
        assert words in response.json()["detail"], response.json()
    # A completion is not a work plan's decision; PSE has no extension at all.
    response = client.put("/api/v1/states/PSE/milestones", json=[{"year": 2026, "area_m2": 1}])
    assert response.status_code == 422 and "no granted extension" in response.json()["detail"]
    original = state(client, "KHM")["decisions"][0]["id"]
    response = client.put("/api/v1/states/KHM/milestones", params={"decision_id": original},
                          json=[{"year": 2009, "area_m2": 1}])
    assert response.status_code == 422
    assert state(client, "KHM")["decisions"][-1]["milestones"] == []


@pytest.mark.parametrize("as_of", ["2024-02-30", "yesterday"])
def test_bad_as_of_is_422(client, as_of: str) -> None:
    response = client.get("/api/v1/states/KHM/summary", params={"as_of": as_of})
    assert response.status_code == 422
    assert "as_of" in response.json()["detail"]
