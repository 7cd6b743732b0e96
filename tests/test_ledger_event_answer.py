"""What a recorded event answers is what the ledger then holds: the newest event (applied by the INSERT
itself), a back-dated one (replayed) and one that ends the hazard, each read back through GET."""
from __future__ import annotations

from tests.ledger_scenarios import post_event, post_hazard, rect


def _held(client, hazard_id: str, event_id: str) -> dict:
    feature = client.get(f"/api/v1/hazards/{hazard_id}").json()
    event = next(e for e in feature["properties"]["events"] if e["id"] == event_id)
    return {"released_area_m2": event["released_area_m2"], "outside_area_m2": event["outside_area_m2"],
            "remaining_area_m2": feature["properties"]["remaining_area_m2"],
            "hazard_status": feature["properties"]["status"]}


def _answered(answer: dict) -> dict:
    return {key: answer[key] for key in ("released_area_m2", "outside_area_m2", "remaining_area_m2", "hazard_status")}


def test_each_event_answers_what_the_ledger_then_holds(client) -> None:
    hazard = post_hazard(client, "KHM-ANSWER", rect(0, 0, 1000, 1000))
    newest = post_event(client, hazard["id"], "clearance", "2024-05-01", rect(-100, 0, 400, 1000))
    assert newest["created"] and newest["outside_area_m2"] > 90_000  # 100 m of it lies outside the hazard
    assert _answered(newest) == _held(client, hazard["id"], newest["id"])
    assert newest["remaining_area_m2"] == hazard["baseline_area_m2"] - newest["released_area_m2"]

    back_dated = post_event(client, hazard["id"], "reduction", "2024-01-01", rect(200, 0, 400, 1000))
    assert _answered(back_dated) == _held(client, hazard["id"], back_dated["id"])
    replayed = _held(client, hazard["id"], newest["id"])  # the clearance now takes only what the reduction left
    assert 0 < replayed["released_area_m2"] < newest["released_area_m2"]

    last = post_event(client, hazard["id"], "cancellation", "2024-06-01", rect(0, 0, 1000, 1000))
    assert last["hazard_status"] == "released" and last["remaining_area_m2"] == 0
    assert _answered(last) == _held(client, hazard["id"], last["id"])
    later = post_event(client, hazard["id"], "clearance", "2024-07-01", rect(0, 0, 10, 10), expect=422)
    assert "fully released on 2024-06-01" in later["detail"]
