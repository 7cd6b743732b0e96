"""Operators report, the national centre approves: the `operator` role, submissions and their review.

Nothing of a submission counts anywhere (ledger, layers, tiles, exports, summaries) before its
approval, and it counts exactly once after it."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import geopandas as gpd
import mapbox_vector_tile
import pyogrio
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import access, database
from tests.conftest import auth_headers
from tests.ledger_scenarios import hazard_feature, post_event, post_hazard, rect, rect_lonlat, true_area


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


UTM = {"crs": "EPSG:32648"}


def _submit_hazard(operator: TestClient, external_id: str, geometry: dict, expect: int = 201, **props) -> dict:
    response = operator.post("/api/v1/states/KHM/submissions", params=UTM,
                             json=hazard_feature(external_id, geometry, **props))
    assert response.status_code == expect, response.text
    return response.json()


def _submit_release(operator: TestClient, hazard_id: str, kind: str, date: str, geometry: dict | None,
                    expect: int = 201, **extra) -> dict:
    response = operator.post(f"/api/v1/hazards/{hazard_id}/submissions", params=UTM,
                             json={"kind": kind, "date": date, "geometry": geometry, **extra})
    assert response.status_code == expect, response.text
    return response.json()


def _ledger_hazards(client: TestClient) -> dict[str, dict]:
    features = client.get("/api/v1/states/KHM/hazards").json()["features"]
    return {f["properties"]["external_id"]: f["properties"] for f in features}


def _remaining_m2(client: TestClient) -> float:
    return client.get("/api/v1/states/KHM/summary").json()["remaining"]["total"]["area_m2"]


def _counts_everywhere(client: TestClient, tmp_path) -> tuple[int, int, int, float]:
    """Hazards in the ledger's JSON, the OGC layer, the GeoJSON export and the Article 7 report (which must
    agree), and the summary's remaining area."""
    report = client.get("/api/v1/states/KHM/report", params={"year": date.today().year}).json()
    listed = client.get("/api/v1/states/KHM/hazards").json()["numberMatched"]
    assert len(report["mined_areas"]) == listed
    ogc = len(client.get("/collections/hazardous_areas/items", params={"state": "KHM"}).json()["features"])
    path = tmp_path / "export.geojson"
    path.write_bytes(client.get("/api/v1/states/KHM/export", params={"format": "geojson"}).content)
    exported = len(pyogrio.read_dataframe(path)) if path.stat().st_size else 0
    return listed, ogc, exported, _remaining_m2(client)


@pytest.fixture
def halo_and_mag(client: TestClient, operator_of) -> tuple[TestClient, TestClient]:
    return operator_of(_organisation(client, "HALO")), operator_of(_organisation(client, "MAG"))


def test_a_submitted_hazard_counts_nowhere_until_approved_then_exactly_once(client, halo_and_mag, tmp_path) -> None:
    halo, _ = halo_and_mag
    submitted = _submit_hazard(halo, "NTS-1", rect(0, 0, 400, 250), date_of_information="2016-05-01")
    props = submitted["properties"]
    assert props["status"] == "submitted" and props["kind"] == "hazard" and props["organisation"] == "HALO"
    assert props["area_m2"] == pytest.approx(true_area(0, 0, 400, 250), abs=1)
    assert props["date_of_information"] == "2016-05-01" and props["submitted_by"].startswith("operator")
    assert submitted["geometry"]["type"] == "MultiPolygon"
    assert _counts_everywhere(client, tmp_path) == (0, 0, 0, 0)
    x, y = _tile_containing(200, 125)
    assert client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/12/{x}/{y}").status_code == 204

    queue = client.get("/api/v1/states/KHM/submissions", params={"status": "submitted"}).json()
    (item,) = queue["features"]
    preview = item["properties"]["preview"]
    assert preview["approvable"] and preview["hazards_created"] == 1
    assert preview["created_area_m2"] == pytest.approx(true_area(0, 0, 400, 250), abs=1)
    assert _counts_everywhere(client, tmp_path) == (0, 0, 0, 0)  # the preview wrote nothing

    approved = client.post(f"/api/v1/submissions/{submitted['id']}/approve")
    assert approved.status_code == 200, approved.text
    props = approved.json()["properties"]
    assert props["status"] == "approved" and props["approved_by"] == "test admin" and props["approved_at"]
    (hazard,) = props["applied"]["hazards"]
    listed, ogc, exported, remaining = _counts_everywhere(client, tmp_path)
    assert (listed, ogc, exported) == (1, 1, 1) and remaining == pytest.approx(true_area(0, 0, 400, 250), abs=1)
    tile = mapbox_vector_tile.decode(
        client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/12/{x}/{y}").content)
    assert [f["properties"]["external_id"] for f in tile["hazardous_areas"]["features"]] == ["NTS-1"]
    assert _ledger_hazards(client)["NTS-1"]["date_of_information"] == "2016-05-01"
    assert _ledger_hazards(client)["NTS-1"]["organisation"] == "HALO"  # the reporting organisation
    item = client.get(f"/collections/hazardous_areas/items/{hazard['id']}").json()["properties"]
    assert item["organisation"] == "HALO" and item["organisation_id"] == props["organisation_id"]
    with database.get_engine().connect() as conn:
        organisation = conn.execute(text("SELECT o.name FROM hazardous_areas h JOIN organisations o "
                                         "ON o.id = h.organisation_id WHERE h.id = :id"), {"id": hazard["id"]})
        assert organisation.scalar_one() == "HALO"  # the reporting organisation
    again = client.post(f"/api/v1/submissions/{submitted['id']}/approve")
    assert again.status_code == 409 and "is approved" in again.json()["detail"]
    assert _counts_everywhere(client, tmp_path)[:3] == (1, 1, 1)
    actions = [e["action"] for e in client.get("/api/v1/audit", params={"state": "KHM"}).json()["entries"]
               if e["table"] in ("submissions", "hazardous_areas")]
    assert actions == ["submit", "create", "approve"]


def _tile_containing(x: float, y: float) -> tuple[int, int]:
    import math

    (lon, lat) = rect_lonlat(x, y, 1, 1)["coordinates"][0][0]
    n = 2 ** 12
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def test_who_may_do_what_with_submissions(client, client_as, halo_and_mag) -> None:
    halo, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 0, 500, 500))
    mine = _submit_release(halo, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 100))
    theirs = _submit_hazard(mag, "MAG-1", rect(1000, 0, 100, 100))
    bih_hazard = post_hazard(client, "BIH-1", {"type": "Polygon", "coordinates": [
        [[18.0, 44.0], [18.001, 44.0], [18.001, 44.001], [18.0, 44.001], [18.0, 44.0]]]}, iso3="BIH", crs=None)
    bih = _organisation(client, "NPA", iso3="BIH")
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name="npa", role="operator", organisation_id=bih)
    npa = TestClient(client.app, headers=auth_headers(secret))
    bih_submission = npa.post(f"/api/v1/hazards/{bih_hazard['id']}/submissions", json={
        "kind": "cancellation", "date": "2016-01-01", "geometry": {"type": "Polygon", "coordinates": [
            [[18.0, 44.0], [18.0005, 44.0], [18.0005, 44.0005], [18.0, 44.0005], [18.0, 44.0]]]}}).json()
    editor, viewer = client_as("editor", "KHM"), client_as("viewer", "KHM")

    # an operator sees its own organisation's submissions only
    assert halo.get(f"/api/v1/submissions/{mine['id']}").status_code == 200
    assert halo.get(f"/api/v1/submissions/{theirs['id']}").status_code == 404
    assert [f["id"] for f in halo.get("/api/v1/states/KHM/submissions").json()["features"]] == [mine["id"]]
    mag_id = theirs["properties"]["organisation_id"]
    assert halo.get("/api/v1/states/KHM/submissions", params={"organisation_id": mag_id}).status_code == 403
    assert halo.get("/api/v1/states/BIH/submissions").status_code == 403
    # the centre sees them all
    assert len(viewer.get("/api/v1/states/KHM/submissions").json()["features"]) == 2
    assert len(editor.get("/api/v1/states/KHM/submissions", params={"organisation_id": mag_id}).json()[
        "features"]) == 1
    # an operator submits for its own organisation and State only
    assert halo.post("/api/v1/states/BIH/submissions", json={}).status_code == 403
    assert halo.post("/api/v1/states/KHM/submissions", params={**UTM, "organisation_id": mag_id},
                     json=hazard_feature("X", rect(2000, 0, 10, 10))).status_code == 403
    assert viewer.post("/api/v1/states/KHM/submissions", params=UTM,
                       json=hazard_feature("X", rect(2000, 0, 10, 10))).status_code == 403

    # nobody but the State's editors and admins reviews; nobody touches another organisation's
    for who, submission, expected in [(halo, mine, 403), (halo, theirs, 404), (mag, mine, 404), (viewer, mine, 403),
                                      (editor, bih_submission, 404)]:
        for action, body in [("approve", {}), ("reject", {"comment": "no"}), ("return", {"comment": "fix"})]:
            response = who.post(f"/api/v1/submissions/{submission['id']}/{action}", json=body)
            assert response.status_code == expected, (action, response.text)
        if who is not halo or submission is not mine:  # an operator resubmits its own (once returned)
            assert who.put(f"/api/v1/submissions/{submission['id']}", json={}).status_code == expected
    for submission in (mine, theirs):
        assert client.get(f"/api/v1/submissions/{submission['id']}").json()["properties"]["status"] == "submitted"
    assert client.get(f"/api/v1/submissions/{bih_submission['id']}").json()["properties"]["status"] == "submitted"
    assert editor.post(f"/api/v1/submissions/{mine['id']}/approve").status_code == 200
    assert client.post(f"/api/v1/submissions/{bih_submission['id']}/approve").status_code == 200


def test_an_approval_the_ledger_refuses_leaves_the_submission_as_it_was(client, halo_and_mag) -> None:
    halo, _ = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 0, 500, 500))
    outside = _submit_release(halo, hazard["id"], "clearance", "2016-01-01", rect(2000, 0, 100, 100))
    preview = client.get(f"/api/v1/submissions/{outside['id']}").json()["properties"]["preview"]
    assert not preview["approvable"] and "releases nothing" in preview["problem"]["detail"]
    refused = client.post(f"/api/v1/submissions/{outside['id']}/approve")
    assert refused.status_code == 422 and "releases nothing" in refused.json()["detail"]
    after = client.get(f"/api/v1/submissions/{outside['id']}").json()["properties"]
    assert after["status"] == "submitted" and after["approved_by"] is None and after["applied"] is None
    assert [s["action"] for s in after["history"]] == ["submit"]
    assert client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"] == []

    overlapping = _submit_hazard(halo, "NTS-2", rect(400, 0, 300, 300))
    preview = client.get(f"/api/v1/submissions/{overlapping['id']}").json()["properties"]["preview"]
    assert not preview["approvable"] and preview["problem"]["status"] == 409
    refused = client.post(f"/api/v1/submissions/{overlapping['id']}/approve")
    assert refused.status_code == 409, refused.text
    assert client.get(f"/api/v1/submissions/{overlapping['id']}").json()["properties"]["status"] == "submitted"
    assert set(_ledger_hazards(client)) == {"H-1"}
    clipped = client.post(f"/api/v1/submissions/{overlapping['id']}/approve", json={"overlap": "clip"})
    assert clipped.status_code == 200, clipped.text
    assert _ledger_hazards(client)["NTS-2"]["baseline_area_m2"] == pytest.approx(true_area(500, 0, 200, 300), abs=1)


def test_a_report_naming_another_organisation_is_refused_when_submitted(client, halo_and_mag) -> None:
    """An operator's report is its own organisation's: a report that names another is a 422 at once, not a
    submission that the ledger would refuse at approval."""
    halo, _ = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 0, 500, 500))
    refused = _submit_release(halo, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 100), expect=422,
                              organisation="MAG")
    assert "is not the name of organisation_id" in refused["detail"] and "HALO" in refused["detail"]
    assert client.get("/api/v1/states/KHM/submissions").json()["features"] == []
    own = _submit_release(halo, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 100), organisation="halo")
    # nor when a returned report comes back naming another organisation
    assert client.post(f"/api/v1/submissions/{own['id']}/return", json={"comment": "the date"}).status_code == 200
    other = {"kind": "clearance", "date": "2016-01-02", "geometry": rect(0, 0, 100, 100), "organisation": "MAG"}
    resubmitted = halo.put(f"/api/v1/submissions/{own['id']}", params=UTM, json=other)
    assert resubmitted.status_code == 422 and "is not the name of organisation_id" in resubmitted.json()["detail"]
    assert client.get(f"/api/v1/submissions/{own['id']}").json()["properties"]["status"] == "returned"
    assert halo.put(f"/api/v1/submissions/{own['id']}", params=UTM,
                    json={**other, "organisation": "HALO"}).status_code == 200
    assert client.post(f"/api/v1/submissions/{own['id']}/approve").status_code == 200


def test_return_and_resubmit_keeps_the_history(client, halo_and_mag) -> None:
    halo, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 0, 500, 500))
    first = _submit_release(halo, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 100),
                            items_destroyed={"ap_mines": 3})
    assert client.post(f"/api/v1/submissions/{first['id']}/return", json={"comment": " "}).status_code == 422
    returned = client.post(f"/api/v1/submissions/{first['id']}/return",
                           json={"comment": "The polygon misses the north strip; the dog team's lane too"})
    assert returned.status_code == 200, returned.text
    assert returned.json()["properties"]["status"] == "returned"
    assert halo.get("/api/v1/states/KHM/submissions", params={"status": "returned"}).json()["numberMatched"] == 1
    assert client.post(f"/api/v1/submissions/{first['id']}/approve").status_code == 409
    corrected = {"kind": "clearance", "date": "2016-01-01", "geometry": rect(0, 0, 100, 200),
                 "items_destroyed": {"ap_mines": 4}}
    assert mag.put(f"/api/v1/submissions/{first['id']}", params=UTM, json=corrected).status_code == 404
    resubmitted = halo.put(f"/api/v1/submissions/{first['id']}", params=UTM, json=corrected)
    assert resubmitted.status_code == 200, resubmitted.text
    props = resubmitted.json()["properties"]
    assert props["status"] == "submitted" and props["revision"] == 2
    assert halo.put(f"/api/v1/submissions/{first['id']}", params=UTM, json=corrected).status_code == 409
    assert props["preview"] is None or props["preview"]["approvable"]
    preview = client.get(f"/api/v1/submissions/{first['id']}").json()["properties"]["preview"]
    assert preview["released_area_m2"] == pytest.approx(true_area(0, 0, 100, 200), abs=1)
    approved = client.post(f"/api/v1/submissions/{first['id']}/approve").json()["properties"]
    history = [(s["revision"], s["action"], s["status"]) for s in approved["history"]]
    assert history == [(1, "submit", "submitted"), (1, "return", "returned"), (2, "resubmit", "submitted"),
                       (2, "approve", "approved")]
    assert approved["history"][0]["content"]["event"]["items_destroyed"]["ap_mines"] == 3
    assert approved["history"][2]["content"]["event"]["items_destroyed"]["ap_mines"] == 4
    assert approved["history"][1]["comment"].startswith("The polygon misses")
    (event,) = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    assert event["released_area_m2"] == pytest.approx(true_area(0, 0, 100, 200), abs=1)
    assert event["items_destroyed"]["ap_mines"] == 4 and event["organisation"] == "HALO"

    rejected = _submit_release(halo, hazard["id"], "cancellation", "2016-02-01", rect(200, 0, 100, 100))
    assert client.post(f"/api/v1/submissions/{rejected['id']}/reject", json={}).status_code == 422
    done = client.post(f"/api/v1/submissions/{rejected['id']}/reject", json={"comment": "duplicate of CR-7"})
    assert done.json()["properties"]["status"] == "rejected" and done.json()["properties"]["comment"] == \
        "duplicate of CR-7"
    assert halo.put(f"/api/v1/submissions/{rejected['id']}", params=UTM, json=corrected).status_code == 409
    assert len(client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]) == 1


def test_an_editors_entry_is_approved_at_once_and_audited_as_such(client_as) -> None:
    editor = client_as("editor", "KHM")
    entry = _submit_hazard(editor, "NMAC-1", rect(0, 0, 100, 100))
    props = entry["properties"]
    assert props["status"] == "approved" and props["approved_by"] == props["submitted_by"]
    assert props["history"][-1]["comment"] == "recorded directly by the national centre"
    assert "NMAC-1" in _ledger_hazards(editor)
    # the ledger refuses it: nothing is stored
    _submit_hazard(editor, "NMAC-2", rect(50, 0, 100, 100), expect=409)
    assert editor.get("/api/v1/states/KHM/submissions").json()["numberMatched"] == 1


def test_a_submitted_hazard_linked_to_an_existing_one_becomes_its_event(client, halo_and_mag) -> None:
    halo, _ = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 0, 500, 500))
    survey = _submit_hazard(halo, "NTS-9", rect(0, 0, 200, 500), recorded_on="2017-03-01")
    refused = client.post(f"/api/v1/submissions/{survey['id']}/approve", json={"reconcile": "link"})
    assert refused.status_code == 422 and "hazard_id" in refused.json()["detail"]
    linked = client.post(f"/api/v1/submissions/{survey['id']}/approve", json={
        "reconcile": "link", "hazard_id": hazard["id"], "event_kind": "reclassification"})
    assert linked.status_code == 200, linked.text
    assert linked.json()["properties"]["applied"]["linked_to"] == hazard["id"]
    (event,) = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    assert event["kind"] == "reclassification" and event["date"] == "2017-03-01" and event["organisation"] == "HALO"
    assert "NTS-9" not in _ledger_hazards(client)


def test_a_batch_from_a_file_is_held_until_approved(client, halo_and_mag, tmp_path) -> None:
    halo, _ = halo_and_mag
    frame = gpd.GeoDataFrame(
        {"external_id": ["B-1", "B-2"], "classification": ["SHA", "CHA"], "recorded_on": ["2016-01-01"] * 2},
        geometry=[shape(rect(0, 0, 100, 100)), shape(rect(200, 0, 100, 100))], crs="EPSG:32648")
    path = tmp_path / "survey.gpkg"
    pyogrio.write_dataframe(frame, path, layer="survey", driver="GPKG")
    with path.open("rb") as f:
        response = halo.post("/api/v1/states/KHM/submissions/file", files={"file": (path.name, f)})
    assert response.status_code == 201, response.text
    props = response.json()["properties"]
    assert props["kind"] == "batch" and props["feature_count"] == 2 and props["content"]["file"] == "survey.gpkg"
    assert props["area_m2"] == pytest.approx(true_area(0, 0, 100, 100) + true_area(200, 0, 100, 100), abs=1)
    assert _ledger_hazards(client) == {}
    bad = frame.assign(classification=["SHA", "XYZ"])
    pyogrio.write_dataframe(bad, tmp_path / "bad.gpkg", layer="survey", driver="GPKG")
    with (tmp_path / "bad.gpkg").open("rb") as f:
        refused = halo.post("/api/v1/states/KHM/submissions/file", files={"file": ("bad.gpkg", f)})
    assert refused.status_code == 422 and "1 of 2 rows are not valid" in refused.json()["detail"]
    assert client.post(f"/api/v1/submissions/{response.json()['id']}/approve").status_code == 200
    assert set(_ledger_hazards(client)) == {"B-1", "B-2"}


def test_a_returned_batch_is_resubmitted_as_a_new_file_keeping_its_history(client, halo_and_mag, tmp_path) -> None:
    halo, mag = halo_and_mag

    def survey(name: str, classes: list[str]) -> tuple[str, bytes]:
        frame = gpd.GeoDataFrame(
            {"external_id": [f"B-{i + 1}" for i in range(len(classes))], "classification": classes,
             "recorded_on": ["2016-01-01"] * len(classes)},
            geometry=[shape(rect(200 * i, 0, 100, 100)) for i in range(len(classes))], crs="EPSG:32648")
        path = tmp_path / name
        pyogrio.write_dataframe(frame, path, layer="survey", driver="GPKG")
        return name, path.read_bytes()

    first = halo.post("/api/v1/states/KHM/submissions/file", files={"file": survey("survey.gpkg", ["SHA", "SHA"])})
    assert first.status_code == 201, first.text
    batch = first.json()["id"]
    hazard = post_hazard(client, "H-9", rect(0, 1000, 100, 100))
    report = _submit_release(halo, hazard["id"], "cancellation", "2016-01-01", rect(0, 1000, 50, 50))
    corrected = survey("survey-v2.gpkg", ["SHA", "CHA", "SHA"])
    assert halo.put(f"/api/v1/submissions/{batch}/file", files={"file": corrected}).status_code == 409  # not returned
    for submission in (batch, report["id"]):
        assert client.post(f"/api/v1/submissions/{submission}/return", json={"comment": "B-2 is a CHA; add B-3"}
                           ).status_code == 200
    assert mag.put(f"/api/v1/submissions/{batch}/file", files={"file": corrected}).status_code == 404
    bad = halo.put(f"/api/v1/submissions/{batch}/file", files={"file": survey("bad.gpkg", ["SHA", "XYZ"])})
    assert bad.status_code == 422 and "1 of 2 rows are not valid" in bad.json()["detail"]
    assert halo.put(f"/api/v1/submissions/{report['id']}/file", files={"file": corrected}).status_code == 422
    unchanged = client.get(f"/api/v1/submissions/{batch}").json()["properties"]
    assert unchanged["status"] == "returned" and unchanged["revision"] == 1 and unchanged["feature_count"] == 2

    resubmitted = halo.put(f"/api/v1/submissions/{batch}/file", files={"file": corrected})
    assert resubmitted.status_code == 200, resubmitted.text
    props = resubmitted.json()["properties"]
    assert props["status"] == "submitted" and props["revision"] == 2 and props["kind"] == "batch"
    assert props["feature_count"] == 3 and props["content"]["file"] == "survey-v2.gpkg"
    assert props["area_m2"] == pytest.approx(sum(true_area(200 * i, 0, 100, 100) for i in range(3)), abs=1)
    assert _ledger_hazards(client).keys() == {"H-9"}  # still nothing of it in the ledger
    approved = client.post(f"/api/v1/submissions/{batch}/approve").json()["properties"]
    assert [(s["revision"], s["action"]) for s in approved["history"]] == [
        (1, "submit"), (1, "return"), (2, "resubmit"), (2, "approve")]
    assert approved["history"][0]["content"]["file"] == "survey.gpkg"
    assert len(approved["history"][0]["content"]["hazards"]) == 2
    hazards = _ledger_hazards(client)
    assert hazards.keys() == {"H-9", "B-1", "B-2", "B-3"} and hazards["B-2"]["classification"] == "CHA"


def test_the_summaries_show_the_backlog_and_count_it_nowhere_else(client, halo_and_mag) -> None:
    halo, mag = halo_and_mag
    hazard = post_hazard(client, "H-1", rect(0, 0, 500, 500))
    post_event(client, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 500))
    survey = _submit_hazard(halo, "NTS-1", rect(1000, 0, 400, 250))
    # a clearance report claiming 200 x 100 m, half of it already cleared: it claims 100 x 100 m of what remains
    clearance = _submit_release(mag, hazard["id"], "clearance", "2016-06-01", rect(0, 0, 200, 100))
    returned = _submit_hazard(mag, "NTS-2", rect(2000, 0, 100, 100))
    client.post(f"/api/v1/submissions/{returned['id']}/return", json={"comment": "which village?"})
    before = client.get("/api/v1/states/KHM/summary").json()
    remaining = true_area(0, 0, 500, 500) - true_area(0, 0, 100, 500)
    assert before["remaining"]["total"]["count"] == 1
    assert before["remaining"]["total"]["area_m2"] == pytest.approx(remaining, abs=1)
    pending = {p["kind"]: p for p in before["pending"]}
    assert pending["hazard"]["count"] == 2
    assert pending["hazard"]["area_m2"] == pytest.approx(true_area(1000, 0, 400, 250) + true_area(2000, 0, 100, 100),
                                                         abs=1)
    assert pending["release"]["count"] == 1
    assert pending["release"]["area_m2"] == pytest.approx(true_area(100, 0, 100, 100), abs=1)
    row = next(r for r in client.get("/api/v1/summary").json()["states"] if r["state"] == "KHM")
    assert row["pending"] == before["pending"]
    assert not next(r for r in client.get("/api/v1/summary").json()["states"] if r["state"] == "BIH")["pending"]

    for submission in (survey, clearance):
        assert client.post(f"/api/v1/submissions/{submission['id']}/approve").status_code == 200
    after = client.get("/api/v1/states/KHM/summary").json()
    assert after["remaining"]["total"]["count"] == 2
    assert after["remaining"]["total"]["area_m2"] == pytest.approx(
        remaining - true_area(100, 0, 100, 100) + true_area(1000, 0, 400, 250), abs=1)
    assert after["pending"] == [{"kind": "hazard", "count": 1, "area_m2": pytest.approx(true_area(2000, 0, 100, 100),
                                                                                         abs=1)}]


def test_the_demo_has_a_review_queue(client) -> None:
    from app.demo import load_state, load_submissions

    with database.session() as session:
        load_state("BIH", session)
        session.commit()
        before = client.get("/api/v1/states/BIH/summary").json()["remaining"]
        load_submissions(session)
    register = {o["short_name"] or o["name"]: o for o in
                client.get("/api/v1/states/BIH/organisations").json()["organisations"]}
    # the demo events' names, no others
    assert set(register) == {"NPA", "BHMAC", "Armed Forces of BiH", "Civil Protection FBiH", "DCA",
                             "Civil Protection RS"}
    assert register["Armed Forces of BiH"]["kind"] == "military"
    queue = client.get("/api/v1/states/BIH/submissions").json()["features"]
    assert [(f["properties"]["organisation"], f["properties"]["kind"], f["properties"]["status"]) for f in queue] == [
        ("Norwegian People's Aid", "hazard", "submitted"), ("DanChurchAid", "release", "submitted"),
        ("Armed Forces of BiH", "release", "returned")]
    assert all(f["properties"]["preview"]["approvable"] for f in queue[:2]), queue[1]["properties"]["preview"]
    assert client.get("/api/v1/states/BIH/summary").json()["remaining"] == before
    # the clearance report's devices, one by one, are what its approval records: in the events layer by type
    assert client.post(f"/api/v1/submissions/{queue[1]['id']}/approve").status_code == 200
    (event,) = client.get("/collections/land_release_events/items",
                          params={"state": "BIH", "filter": "uxo > 0"}).json()["features"]
    assert (event["properties"]["ap_mines"], event["properties"]["uxo"], event["properties"]["device_models"]) == (
        3, 1, ["82 mm mortar bomb", "PMA-2", "PROM-1"])
