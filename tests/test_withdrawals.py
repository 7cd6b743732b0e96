"""Article 20: who is bound by the Convention at a date, and why (withdrawals, Article 20.3, Ukraine's
"suspension")."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest


def article5_at(client, iso3: str, as_of: str) -> dict:
    response = client.get(f"/api/v1/states/{iso3}/summary", params={"as_of": as_of})
    assert response.status_code == 200, response.text
    return response.json()["article5"]


def decide(client, iso3: str, expect: int = 201, **body) -> dict:
    response = client.post(f"/api/v1/states/{iso3}/article5/decisions", json=body)
    assert response.status_code == expect, response.text
    return response.json()


@pytest.mark.parametrize(("iso3", "notified", "effective"), [
    ("EST", "2025-06-27", "2025-12-27"), ("LVA", "2025-06-27", "2025-12-27"), ("LTU", "2025-06-27", "2025-12-27"),
    ("FIN", "2025-07-10", "2026-01-10"), ("POL", "2025-08-20", "2026-02-20"),
])
def test_the_2025_withdrawals_take_effect_six_months_after_the_instrument(client, iso3: str, notified: str,
                                                                           effective: str) -> None:
    day_before = (date.fromisoformat(effective) - timedelta(days=1)).isoformat()
    before = article5_at(client, iso3, "2025-01-01")
    assert before["bound"] is True and before["status"] == "no_article5_obligation"
    assert before["deadline"] is None and before["on_track"] is None
    pending = article5_at(client, iso3, day_before)
    assert pending["bound"] is True and pending["status"] == "withdrawal_notified"
    assert notified in pending["bound_reason"] and effective in pending["bound_reason"]
    assert "Article 20.2" in pending["bound_reason"]
    gone = article5_at(client, iso3, effective)
    assert gone["bound"] is False and gone["status"] == "withdrawn"
    assert gone["withdrawal_effective_on"] == effective


def test_ukraine_suspension_has_no_legal_effect(client) -> None:
    before = article5_at(client, "UKR", "2025-07-17")
    assert "suspension" not in before["bound_reason"]
    after = article5_at(client, "UKR", "2026-06-30")
    assert after["bound"] is True and after["status"] == "obligation"
    assert after["deadline"] == "2033-12-01"
    assert "suspension" in after["bound_reason"] and "no legal effect" in after["bound_reason"]
    record = client.get("/api/v1/states/UKR").json()
    suspension = next(d for d in record["decisions"] if d["kind"] == "suspension_notified")
    assert suspension["decided_on"] == "2025-07-18"
    assert "provides for no suspension" in suspension["note"]


def test_article_20_3_a_withdrawal_during_an_armed_conflict_waits_for_its_end(client) -> None:
    # Ukraine is recorded as engaged in an armed conflict since 2014: a withdrawal would not take effect.
    decide(client, "UKR", kind="withdrawal_notified", decided_on="2025-12-01")
    waiting = article5_at(client, "UKR", "2026-06-30")
    assert waiting["bound"] is True and waiting["status"] == "withdrawal_notified"
    assert "Article 20.3" in waiting["bound_reason"] and "2014-02-20" in waiting["bound_reason"]
    body = decide(client, "UKR", 422, kind="withdrawal_effective", decided_on="2026-06-01")
    assert "Article 20.3" in body["detail"]
    decide(client, "UKR", 422, kind="armed_conflict_began", decided_on="2026-01-01")  # already in one
    decide(client, "UKR", kind="armed_conflict_ended", decided_on="2026-09-15")
    assert article5_at(client, "UKR", "2026-09-14")["bound"] is True
    ended = article5_at(client, "UKR", "2026-09-15")
    assert ended["bound"] is False and ended["withdrawal_effective_on"] == "2026-09-15"
    assert "Article 20.3" in ended["bound_reason"]


def test_a_conflict_that_ends_before_the_six_months_does_not_delay_the_withdrawal(client) -> None:
    decide(client, "SRB", kind="armed_conflict_began", decided_on="2025-01-10")
    decide(client, "SRB", 422, kind="armed_conflict_ended", decided_on="2025-01-10")
    decide(client, "SRB", kind="armed_conflict_ended", decided_on="2025-03-01")
    decide(client, "SRB", 422, kind="armed_conflict_ended", decided_on="2025-04-01")  # none going on
    decide(client, "SRB", kind="withdrawal_notified", decided_on="2025-02-01")
    gone = article5_at(client, "SRB", "2025-08-01")
    assert gone["bound"] is False and gone["withdrawal_effective_on"] == "2025-08-01"


def test_a_withdrawn_state_cannot_notify_again_or_suspend(client) -> None:
    body = decide(client, "EST", 422, kind="withdrawal_notified", decided_on="2026-03-01")
    assert "withdrawn" in body["detail"]
    decide(client, "EST", 422, kind="suspension_notified", decided_on="2026-03-01")


@pytest.mark.parametrize(("as_of", "bound"), [
    ("2025-06-01", {"EST": True, "FIN": True, "POL": True, "UKR": True}),
    ("2025-12-27", {"EST": False, "FIN": True, "POL": True, "UKR": True}),
    ("2026-01-10", {"EST": False, "FIN": False, "POL": True, "UKR": True}),
    ("2026-03-01", {"EST": False, "FIN": False, "POL": False, "UKR": True}),
])
def test_the_overview_says_who_is_bound_on_each_date(client, as_of: str, bound: dict[str, bool]) -> None:
    response = client.get("/api/v1/summary", params={"as_of": as_of})
    assert response.status_code == 200, response.text
    rows = {r["state"]: r["article5"] for r in response.json()["states"]}
    assert {iso3: rows[iso3]["bound"] for iso3 in bound} == bound
    assert all(r["bound_reason"] for r in rows.values())
    table = {r["state"]: r for r in csv.DictReader(io.StringIO(
        client.get("/api/v1/summary", params={"as_of": as_of, "format": "csv", "headers": "names"}).text))}
    assert {iso3: table[iso3]["bound"] for iso3 in bound} == {k: str(v).lower() for k, v in bound.items()}
    assert table["UKR"]["bound_reason"] == rows["UKR"]["bound_reason"]
