"""The register of organisations of each State: who keeps it, who reads it, the events that name its
entries, and the migration of the free-text organisation names stored before it existed."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from app import migrate
from tests.ledger_scenarios import post_event, post_hazard, rect

HALO = {"name": "The HALO Trust", "short_name": "HALO", "kind": "ngo", "accredited_from": "2015-01-01",
        "accredited_to": "2027-12-31", "contact": "halo@example.org"}


def test_editors_of_the_state_keep_the_register_and_anyone_reads_the_names(client, client_as, monkeypatch) -> None:
    from app.settings import get_settings

    editor, other_editor, viewer = client_as("editor", "KHM"), client_as("editor", "AGO"), client_as("viewer", "KHM")
    anonymous = client_as(None)
    assert viewer.post("/api/v1/states/KHM/organisations", json=HALO).status_code == 403
    assert other_editor.post("/api/v1/states/KHM/organisations", json=HALO).status_code == 403
    assert anonymous.post("/api/v1/states/KHM/organisations", json=HALO).status_code == 401
    created = editor.post("/api/v1/states/KHM/organisations", json=HALO)
    assert created.status_code == 201, created.text
    halo = created.json()
    assert halo["state"] == "KHM" and halo["kind"] == "ngo" and halo["contact"] == "halo@example.org"

    assert anonymous.get("/api/v1/states/KHM/organisations").status_code == 401
    monkeypatch.setattr(get_settings(), "public_read", True)
    public = anonymous.get("/api/v1/states/KHM/organisations").json()["organisations"]
    assert [(o["name"], o["short_name"], o["kind"]) for o in public] == [("The HALO Trust", "HALO", "ngo")]
    assert "contact" not in public[0]  # a name is public, a contact is for the State's keys
    assert viewer.get(f"/api/v1/organisations/{halo['id']}").json()["contact"] == "halo@example.org"
    assert "contact" not in other_editor.get(f"/api/v1/organisations/{halo['id']}").json()
    monkeypatch.setattr(get_settings(), "public_read", False)

    again = editor.post("/api/v1/states/KHM/organisations", json={**HALO, "name": " the halo trust "})
    assert again.status_code == 409 and "already has an organisation" in again.json()["detail"]
    # another State's register may hold the same name
    assert client.post("/api/v1/states/AGO/organisations", json=HALO).status_code == 201

    assert other_editor.patch(f"/api/v1/organisations/{halo['id']}", json={"kind": "other"}).status_code == 403
    changed = editor.patch(f"/api/v1/organisations/{halo['id']}", json={"accredited_to": None, "contact": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["accredited_to"] is None and changed.json()["name"] == "The HALO Trust"


def test_bad_register_entries_are_refused_with_what_to_fix(client) -> None:
    backwards = client.post("/api/v1/states/KHM/organisations",
                            json={**HALO, "accredited_from": "2020-01-01", "accredited_to": "2019-01-01"})
    assert backwards.status_code == 422 and "before accredited_from" in backwards.text
    assert client.post("/api/v1/states/KHM/organisations", json={**HALO, "kind": "charity"}).status_code == 422
    assert client.post("/api/v1/states/KHM/organisations", json={"name": "   "}).status_code == 422
    halo = client.post("/api/v1/states/KHM/organisations", json=HALO).json()
    cleared = client.patch(f"/api/v1/organisations/{halo['id']}", json={"name": None})
    assert cleared.status_code == 422 and "name cannot be cleared" in cleared.text
    late = client.patch(f"/api/v1/organisations/{halo['id']}", json={"accredited_from": "2030-01-01"})
    assert late.status_code == 422 and "before accredited_from" in late.text
    assert client.post("/api/v1/states/XXX/organisations", json=HALO).status_code == 404


def test_events_name_register_entries(client) -> None:
    halo = client.post("/api/v1/states/KHM/organisations", json=HALO).json()
    hazard = post_hazard(client, "ORG-1", rect(0, 0, 400, 400))
    by_short_name = post_event(client, hazard["id"], "cancellation", "2016-01-01", rect(0, 0, 100, 100),
                               organisation="halo")
    by_id = post_event(client, hazard["id"], "clearance", "2016-02-01", rect(100, 0, 100, 100),
                       organisation_id=halo["id"])
    unknown = post_event(client, hazard["id"], "clearance", "2016-03-01", rect(200, 0, 100, 100),
                         organisation="Cambodian Mine Action Centre")
    events = {e["id"]: e for e in client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]}
    assert events[by_short_name["id"]]["organisation"] == "The HALO Trust"
    assert events[by_short_name["id"]]["organisation_id"] == halo["id"]
    assert events[by_id["id"]]["organisation"] == "The HALO Trust"
    register = {o["name"]: o for o in client.get("/api/v1/states/KHM/organisations").json()["organisations"]}
    assert register["Cambodian Mine Action Centre"]["kind"] == "other"  # a new name joins the register
    assert events[unknown["id"]]["organisation_id"] == register["Cambodian Mine Action Centre"]["id"]
    item = client.get(f"/collections/land_release_events/items/{by_id['id']}").json()["properties"]
    assert item["organisation"] == "The HALO Trust" and item["organisation_id"] == halo["id"]

    # another State's entry, or an id and a name that disagree: 422, nothing stored
    ago = client.post("/api/v1/states/AGO/organisations", json={"name": "APOPO"}).json()
    post_event(client, hazard["id"], "clearance", "2016-04-01", rect(300, 0, 100, 100), organisation_id=ago["id"],
               expect=422)
    post_event(client, hazard["id"], "clearance", "2016-04-01", rect(300, 0, 100, 100), organisation_id=halo["id"],
               organisation="MAG", expect=422)

    # the register's name follows a rename; an entry events name is not deleted
    client.patch(f"/api/v1/organisations/{halo['id']}", json={"name": "HALO Trust Cambodia"})
    renamed = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    assert {e["organisation"] for e in renamed if e["organisation_id"] == halo["id"]} == {"HALO Trust Cambodia"}
    refused = client.delete(f"/api/v1/organisations/{halo['id']}")
    assert refused.status_code == 409 and "accredited_to" in refused.json()["detail"]
    assert client.delete(f"/api/v1/organisations/{ago['id']}").status_code == 204
    assert client.get(f"/api/v1/organisations/{ago['id']}").status_code == 404


def test_migration_turns_free_text_organisations_into_register_entries(client, database_url: str) -> None:
    hazard = post_hazard(client, "MIG-1", rect(0, 0, 500, 500))
    ago_hazard = post_hazard(client, "MIG-AGO", {"type": "Polygon", "coordinates": [
        [[17.0, -12.0], [17.01, -12.0], [17.01, -11.99], [17.0, -11.99], [17.0, -12.0]]]}, iso3="AGO", crs=None)
    spellings = ["CMAC", "cmac ", "HALO", "  ", None]
    ids = [post_event(client, hazard["id"], "clearance", f"2016-0{i + 1}-01", rect(i * 100, 0, 100, 100))["id"]
           for i in range(len(spellings))]
    ago_id = client.post(f"/api/v1/hazards/{ago_hazard['id']}/events", json={
        "kind": "cancellation", "date": "2016-01-01", "geometry": {"type": "Polygon", "coordinates": [
            [[17.0, -12.0], [17.005, -12.0], [17.005, -11.995], [17.0, -11.995], [17.0, -12.0]]]}}).json()["id"]
    engine = create_engine(database_url)
    try:
        migrate.downgrade(database_url, "0010_organisations-1")  # the schema before the register
        with engine.begin() as conn:
            for event_id, name in [*zip(ids, spellings, strict=True), (ago_id, "cmac")]:
                conn.execute(text("UPDATE land_release_events SET organisation = :name WHERE id = :id"),
                             {"name": name, "id": event_id})
        migrate.upgrade(database_url, "head")
        with engine.begin() as conn:
            register = conn.execute(text("SELECT state_iso3, name, kind FROM organisations ORDER BY 1, 2")).all()
            events = {str(r.id): (r.organisation, r.state_iso3, r.registered) for r in conn.execute(text(
                "SELECT e.id, e.organisation, o.state_iso3, o.name AS registered FROM land_release_events e "
                "LEFT JOIN organisations o ON o.id = e.organisation_id"))}
    finally:
        migrate.upgrade(database_url, "head")
        engine.dispose()
    assert [tuple(r) for r in register] == [("AGO", "cmac", "other"), ("KHM", "CMAC", "other"),
                                            ("KHM", "HALO", "other")]
    assert [events[i] for i in ids] == [("CMAC", "KHM", "CMAC"), ("CMAC", "KHM", "CMAC"), ("HALO", "KHM", "HALO"),
                                        (None, None, None), (None, None, None)]
    assert events[ago_id] == ("cmac", "AGO", "cmac")
