"""Operators report, the national centre approves: the `operator` role, submissions and their review.

Nothing of a submission counts anywhere (ledger, layers, tiles, exports, summaries) before its
approval, and it counts exactly once after it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import access, database
from tests.conftest import auth_headers
from tests.ledger_scenarios import post_event, post_hazard, rect


def _organisation(client: TestClient, name: str, iso3: str = "KHM") -> str:
    response = client.post(f"/api/v1/states/{iso3}/organisations", json={"name": name, "kind": "ngo"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
def operator_of(client: TestClient) -> Iterator:
    """`operator_of(organisation_id)`: a client with a fresh operator key of that organisation."""
    from app.main import create_app

    clients: list[TestClient] = []

    def _make(organisation_id: str) -> TestClient:
        with Session(database.get_engine()) as session:
            _, secret = access.create_key(session, name=f"operator {organisation_id[:8]}", role="operator",
                                          organisation_id=organisation_id)
        made = TestClient(create_app(), headers=auth_headers(secret))
        made.__enter__()
        clients.append(made)
        return made

    yield _make
    for made in clients:
        made.__exit__(None, None, None)


def test_operator_keys_belong_to_one_organisation(client) -> None:
    halo = _organisation(client, "HALO")
    made = client.post("/api/v1/keys", json={"name": "HALO field office", "role": "operator",
                                             "organisation_id": halo})
    assert made.status_code == 201, made.text
    assert made.json()["state"] == "KHM" and made.json()["organisation_id"] == halo
    for body, message in [
        ({"role": "operator", "state": "KHM"}, "belongs to one organisation"),
        ({"role": "operator", "organisation_id": halo, "state": "AGO"}, "in the register of KHM, not AGO"),
        ({"role": "editor", "state": "KHM", "organisation_id": halo}, "not bound to an organisation"),
        ({"role": "operator", "organisation_id": "00000000-0000-4000-8000-000000000000"}, "unknown organisation"),
    ]:
        refused = client.post("/api/v1/keys", json={"name": "x", **body})
        assert refused.status_code == 422 and message in refused.json()["detail"], refused.text


def test_an_operator_reads_its_state_but_writes_nothing_to_the_ledger(client, operator_of) -> None:
    hazard = post_hazard(client, "OP-1", rect(0, 0, 500, 500))
    event = post_event(client, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 100))
    operator = operator_of(_organisation(client, "HALO"))
    assert operator.get(f"/api/v1/hazards/{hazard['id']}").status_code == 200
    assert operator.get("/api/v1/states/KHM/hazards").status_code == 200
    assert operator.get("/collections/hazardous_areas/items").status_code == 200
    assert operator.get("/api/v1/states/AGO/hazards").status_code == 403
    refused = operator.post(f"/api/v1/hazards/{hazard['id']}/events",
                            json={"kind": "clearance", "date": "2016-02-01", "geometry": rect(100, 0, 100, 100)},
                            params={"crs": "EPSG:32648"})
    assert refused.status_code == 403 and "submits reports for review" in refused.json()["detail"]
    assert operator.post(f"/api/v1/events/{event['id']}/void", json={"reason": "x"}).status_code == 403
    assert operator.post("/api/v1/states/KHM/hazards", json={}).status_code == 403
