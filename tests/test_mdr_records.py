"""The GICHD Minimum Data Requirements of the records (migration 0013), as declared properties: a hazard's
evidence and blockages, a land-release report's start date, work status, methods, clearance depth, land
use, handover and beneficiaries by sex and age. The JSON API checks them, the ledger's reads, the OGC
layers, the export, the import and the submissions carry them."""
from __future__ import annotations

import pyogrio
import pytest

from tests.ledger_scenarios import UTM48N, post_event, post_hazard, rect
from tests.test_files import export, upload, utm_frame, write

REPORT = {"start_date": "2015-11-02", "work_status": "completed", "methods": ["manual", "mdd"],
          "clearance_depth_cm": 20, "land_use": ["agriculture", "housing"], "handover_date": "2016-02-01",
          "handover_to": "Phum Thmei village committee", "direct_women": 40, "direct_girls": 31, "direct_men": 38,
          "direct_boys": 29, "indirect_women": 400, "indirect_girls": 310, "indirect_men": 380, "indirect_boys": 290}


def test_a_land_release_report_carries_its_records(client, tmp_path) -> None:
    hazard = post_hazard(client, "MDR-1", rect(0, 0, 500, 500), evidence_kind="direct",
                         evidence=["accident", "witness"], blockages=["agriculture", "water"])
    event = post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), **REPORT)
    one = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]
    assert one["evidence_kind"] == "direct" and one["evidence"] == ["accident", "witness"]
    assert one["blockages"] == ["agriculture", "water"]
    (stored,) = one["events"]
    assert {k: stored[k] for k in REPORT} == {**REPORT, "methods": ["manual", "mdd"],
                                               "land_use": ["agriculture", "housing"]}
    item = client.get(f"/collections/land_release_events/items/{event['id']}").json()["properties"]
    assert item["work_status"] == "completed" and item["direct_girls"] == 31 and item["clearance_depth_cm"] == 20
    path = tmp_path / "KHM.gpkg"
    path.write_bytes(export(client, format="gpkg").content)
    exported = pyogrio.read_dataframe(path, layer="land_release_events")
    assert exported.loc[0, "handover_to"] == "Phum Thmei village committee"
    assert exported.loc[0, "methods"] == "manual;mdd" and int(exported.loc[0, "indirect_boys"]) == 290
    hazards = pyogrio.read_dataframe(path, layer="hazardous_areas")
    assert hazards.loc[0, "evidence"] == "accident;witness"


@pytest.mark.parametrize("field, value, message", [
    ("methods", ["dogs"], "methods"),
    ("clearance_depth_cm", -5, "greater than or equal to 0"),
    ("clearance_depth_cm", "20", "integer"),
    ("direct_women", True, "integer"),
    ("work_status", "done", "work_status"),
    ("land_use", ["parking"], "land_use"),
])
def test_bad_records_are_refused_with_what_to_fix(client, field, value, message) -> None:
    hazard = post_hazard(client, "MDR-1", rect(0, 0, 500, 500))
    refused = post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), expect=422,
                         **{field: value})
    assert message in str(refused), refused


def test_the_work_ends_on_the_events_date(client) -> None:
    hazard = post_hazard(client, "MDR-1", rect(0, 0, 500, 500))
    refused = post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), expect=422,
                         start_date="2016-02-01")
    assert "after the event's date" in refused["detail"]
    assert client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"] == []


def test_the_import_reads_a_hazards_evidence_and_blockages(client, tmp_path) -> None:
    frame = utm_frame(1, evidence=["accident;visible_device"], blockages=["roads"])
    upload(client, write(frame, tmp_path, "gpkg"))
    (feature,) = client.get("/api/v1/states/KHM/hazards").json()["features"]
    assert feature["properties"]["evidence"] == ["accident", "visible_device"]
    assert feature["properties"]["blockages"] == ["roads"]
    again = upload(client, write(frame, tmp_path, "gpkg"), expect=200)  # the same hazard: unchanged
    assert again["unchanged"] == 1


def test_an_approved_report_records_them(client) -> None:
    from sqlalchemy.orm import Session

    from app import access, database
    from tests.conftest import auth_headers

    hazard = post_hazard(client, "MDR-1", rect(0, 0, 500, 500))
    halo = client.post("/api/v1/states/KHM/organisations", json={"name": "HALO"}).json()["id"]
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name="halo", role="operator", organisation_id=halo)
    submitted = client.post(f"/api/v1/hazards/{hazard['id']}/submissions", params={"crs": UTM48N},
                            headers=auth_headers(secret),
                            json={"kind": "clearance", "date": "2016-01-15", "geometry": rect(0, 0, 100, 500),
                                  **REPORT})
    assert submitted.status_code == 201, submitted.text
    assert client.post(f"/api/v1/submissions/{submitted.json()['id']}/approve").status_code == 200
    (event,) = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    assert event["direct_women"] == 40 and event["methods"] == ["manual", "mdd"] and event["organisation"] == "HALO"


def test_devices_found_one_by_one_give_the_counters(client) -> None:
    hazard = post_hazard(client, "DEV-1", rect(0, 0, 500, 500))
    devices = [{"category": "AP_MINE", "model": "PMN-2", "quantity": 3, "disposal": "destroyed_in_situ",
                "location": {"type": "Polygon", "coordinates": []}}]
    refused = post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), expect=422,
                         devices=devices)
    assert "GeoJSON Point" in str(refused)
    devices[0]["location"] = {"type": "Point", "coordinates": [102.9, 13.1]}
    devices += [{"category": "AP_MINE", "model": "Type 72A", "quantity": 2, "disposal": "removed"},
                {"category": "UXO", "quantity": 1}, {"category": "CLUSTER_SUBMUNITION", "quantity": 4}]
    mismatch = post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), expect=422,
                          devices=devices, items_destroyed={"ap_mines": 4})
    assert "disagree with the devices found" in mismatch["detail"]
    post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), devices=devices)
    post_event(client, hazard["id"], "clearance", "2016-02-15", rect(100, 0, 100, 500),
               items_destroyed={"av_mines": 1, "other_eo": 2})  # counters only: a device per counted kind
    first, second = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    assert first["items_destroyed"] == {"ap_mines": 5, "improvised_ap_mines": 0, "av_mines": 0, "other_eo": 5}
    assert [(d["category"], d["model"], d["quantity"]) for d in first["devices"]] == [
        ("AP_MINE", "PMN-2", 3), ("AP_MINE", "Type 72A", 2), ("UXO", None, 1), ("CLUSTER_SUBMUNITION", None, 4)]
    assert first["devices"][0]["location"] == {"type": "Point", "coordinates": [102.9, 13.1]}
    assert [(d["category"], d["quantity"]) for d in second["devices"]] == [("AV_MINE", 1), ("OTHER", 2)]
    summary = client.get("/api/v1/states/KHM/summary").json()["released"]["total"]["items_destroyed"]
    assert summary == {"ap_mines": 5, "improvised_ap_mines": 0, "av_mines": 1, "other_eo": 7}


def test_migration_turns_the_counters_into_devices(client, database_url) -> None:
    from sqlalchemy import create_engine, text

    from app import migrate

    hazard = post_hazard(client, "DEV-1", rect(0, 0, 500, 500))
    event = post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500),
                       items_destroyed={"ap_mines": 3, "improvised_ap_mines": 1, "other_eo": 2})
    empty = post_event(client, hazard["id"], "cancellation", "2016-02-15", rect(100, 0, 100, 500))
    engine = create_engine(database_url)
    try:
        migrate.downgrade(database_url, "0014_event_devices-1")
        migrate.upgrade(database_url, "head")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT event_id::text, category, quantity, model FROM event_devices ORDER BY id"))
            devices = [tuple(r) for r in rows]
    finally:
        migrate.upgrade(database_url, "head")
        engine.dispose()
    assert devices == [(event["id"], "AP_MINE", 3, None), (event["id"], "IMPROVISED_AP_MINE", 1, None),
                       (event["id"], "OTHER", 2, None)]
    assert empty["id"] not in {d[0] for d in devices}


def _year_2016(client) -> None:
    """2016: HALO clears 100 x 500 m manually for agriculture (4 PMN-2 destroyed, 1 removed, 1 UXO), MAG reduces
    100 x 500 m with mechanical assets and dogs for housing and agriculture (2 improvised AP mines), and HALO's
    voided report counts nowhere; 2017: one more clearance, outside the year."""
    hazard = post_hazard(client, "A7-1", rect(0, 0, 500, 500))
    post_event(client, hazard["id"], "clearance", "2016-03-01", rect(0, 0, 100, 500), organisation="HALO",
               methods=["manual"], land_use=["agriculture"], direct_women=10, direct_girls=4, indirect_men=100,
               devices=[{"category": "AP_MINE", "model": "PMN-2", "quantity": 4, "disposal": "destroyed_in_situ"},
                        {"category": "AP_MINE", "model": "PMN-2", "quantity": 1, "disposal": "removed"},
                        {"category": "UXO", "quantity": 1}])
    post_event(client, hazard["id"], "reduction", "2016-06-01", rect(100, 0, 100, 500), organisation="MAG",
               methods=["mechanical", "mdd"], land_use=["housing", "agriculture"], direct_women=5, direct_boys=3,
               devices=[{"category": "IMPROVISED_AP_MINE", "quantity": 2}])
    voided = post_event(client, hazard["id"], "clearance", "2016-09-01", rect(200, 0, 100, 500), organisation="HALO",
                        methods=["manual"], land_use=["forest"], direct_men=50,
                        devices=[{"category": "AP_MINE", "quantity": 9}])
    assert client.post(f"/api/v1/events/{voided['id']}/void", json={"reason": "entered twice"}).status_code == 200
    post_event(client, hazard["id"], "clearance", "2017-02-01", rect(300, 0, 100, 500), organisation="HALO",
               methods=["manual"], land_use=["grazing"], direct_girls=7,
               devices=[{"category": "AP_MINE", "quantity": 3}])


def test_the_article_7_report_gives_the_years_records(client) -> None:
    from tests.ledger_scenarios import true_area

    _year_2016(client)
    report = client.get("/api/v1/states/KHM/report", params={"year": 2016}).json()
    assert report["ap_mines_destroyed"] == [
        {"category": "AP_MINE", "model": "PMN-2", "disposal": "destroyed_in_situ", "quantity": 4},
        {"category": "AP_MINE", "model": "PMN-2", "disposal": "removed", "quantity": 1},
        {"category": "IMPROVISED_AP_MINE", "model": None, "disposal": None, "quantity": 2}]
    assert report["beneficiaries"] == {"direct_women": 15, "direct_girls": 4, "direct_men": 0, "direct_boys": 3,
                                       "indirect_women": 0, "indirect_girls": 0, "indirect_men": 100,
                                       "indirect_boys": 0}
    strip = true_area(0, 0, 100, 500)
    uses = {u["land_use"]: u["released_m2"] for u in report["released_by_land_use"]}
    assert uses.keys() == {"agriculture", "housing"}
    assert uses["agriculture"] == pytest.approx(strip + true_area(100, 0, 100, 500), abs=1)
    assert uses["housing"] == pytest.approx(true_area(100, 0, 100, 500), abs=1)
    by = [(b["organisation"], b["methods"], b["reports"]) for b in report["released_by_organisation"]]
    assert sorted(by) == [("HALO", ["manual"], 1), ("MAG", ["mdd", "mechanical"], 1)]
    assert report["released"]["items_destroyed"]["ap_mines"] == 5


def _csv_rows(client, format: str) -> tuple[str, list[dict[str, str]]]:
    import csv
    import io

    response = client.get("/api/v1/states/KHM/report", params={"year": 2016, "format": format, "headers": "names"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return response.headers["content-disposition"], list(csv.DictReader(io.StringIO(response.text)))


def test_the_article_7_csv_files_give_the_years_records(client) -> None:
    """The same hand-made 2016 as the JSON report above, one CSV table a figure (app/committee/formats.py)."""
    import csv
    import io

    from tests.ledger_scenarios import true_area

    _year_2016(client)
    disposition, mines = _csv_rows(client, "csv-mines")
    assert disposition == 'attachment; filename="article7-KHM-2016-mines.csv"'
    assert [(m["category"], m["model"], m["disposal"], m["quantity"]) for m in mines] == [
        ("AP_MINE", "PMN-2", "destroyed_in_situ", "4"), ("AP_MINE", "PMN-2", "removed", "1"),
        ("IMPROVISED_AP_MINE", "", "", "2")]
    assert {(m["state"], m["year"]) for m in mines} == {("KHM", "2016")}
    _, people = _csv_rows(client, "csv-beneficiaries")
    assert [(p["beneficiaries"], p["women"], p["girls"], p["men"], p["boys"], p["total"]) for p in people] == [
        ("direct", "15", "4", "0", "3", "22"), ("indirect", "0", "0", "100", "0", "100")]
    strip = true_area(0, 0, 100, 500)  # HALO's clearance; MAG's reduction is the strip beside it
    reduced = true_area(100, 0, 100, 500)
    _, uses = _csv_rows(client, "csv-land-use")
    assert [u["land_use"] for u in uses] == ["agriculture", "housing"]
    assert float(uses[0]["released_m2"]) == pytest.approx(strip + reduced, abs=1)
    assert float(uses[1]["released_m2"]) == pytest.approx(reduced, abs=1)
    assert float(uses[1]["released_km2"]) == round(reduced / 1e6, 3)
    _, by = _csv_rows(client, "csv-organisations")
    assert sorted((b["organisation"], b["methods"], b["reports"]) for b in by) == [
        ("HALO", "manual", "1"), ("MAG", "mdd;mechanical", "1")]
    assert sum(float(b["released_m2"]) for b in by) == pytest.approx(strip + reduced, abs=1)
    # the formats are offered where the report's format parameter is declared
    declared = client.get("/openapi.json").json()["paths"]["/api/v1/states/{iso3}/report"]["get"]["parameters"]
    (fmt,) = [p for p in declared if p["name"] == "format"]
    assert {"csv", "csv-mines", "csv-beneficiaries", "csv-land-use", "csv-organisations"} <= set(
        fmt["schema"]["enum"])
    # for people, the same tables are headed with the columns' titles in the reader's language
    titled = client.get("/api/v1/states/KHM/report", params={"year": 2016, "format": "csv-land-use", "lang": "fr"})
    assert next(csv.reader(io.StringIO(titled.text)))[:3] == [
        "Code ISO", "Année", "Usage des terres après remise à disposition"]


def test_the_devices_by_type_are_in_the_ogc_events_and_the_export(client, tmp_path) -> None:
    """A clearance finds 3 PMN-2, 2 Type 72A, 1 UXO and 4 cluster submunitions; a reduction gives counters only
    (1 AV mine, 2 other items): the events' declared properties split other_eo by device type."""
    hazard = post_hazard(client, "DEV-1", rect(0, 0, 500, 500))
    post_event(client, hazard["id"], "clearance", "2016-01-15", rect(0, 0, 100, 500), external_id="E-1", devices=[
        {"category": "AP_MINE", "model": "PMN-2", "quantity": 3}, {"category": "AP_MINE", "model": "Type 72A",
                                                                   "quantity": 2},
        {"category": "UXO", "quantity": 1}, {"category": "CLUSTER_SUBMUNITION", "model": "BLU-26", "quantity": 4}])
    post_event(client, hazard["id"], "reduction", "2016-02-15", rect(100, 0, 100, 500), external_id="E-2",
               items_destroyed={"av_mines": 1, "other_eo": 2})
    found = {"E-1": (5, 0, 0, 5, 1, 4, 0, ["BLU-26", "PMN-2", "Type 72A"]), "E-2": (0, 0, 1, 2, 0, 0, 2, [])}
    columns = ("ap_mines", "improvised_ap_mines", "av_mines", "other_eo", "uxo", "cluster_submunitions",
               "other_devices", "device_models")
    items = client.get("/collections/land_release_events/items").json()["features"]
    assert {f["properties"]["external_id"]: tuple(f["properties"][c] for c in columns) for f in items} == found
    only_uxo = client.get("/collections/land_release_events/items", params={"filter": "uxo > 0"}).json()
    assert [f["properties"]["external_id"] for f in only_uxo["features"]] == ["E-1"]
    path = tmp_path / "KHM.gpkg"
    path.write_bytes(export(client, format="gpkg").content)
    exported = pyogrio.read_dataframe(path, layer="land_release_events")
    rows = {r["external_id"]: r for r in exported.to_dict("records")}
    for external_id, values in found.items():
        assert tuple(rows[external_id][c] for c in columns[:-1]) == values[:-1]
        assert (rows[external_id]["device_models"] or "") == ";".join(values[-1])
