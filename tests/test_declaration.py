"""Every output and input of a layer names exactly the properties `app.layers` declares: the JSON API's
reads and its input schema, the OGC items, the export's columns, the import's fields and the table's
columns (the models are made from the declaration, and test_foundation compares them with the
migrations)."""
from __future__ import annotations

import pyogrio
from sqlalchemy.dialects import postgresql

from app.files.columns import HAZARD_FIELDS, REQUIRED_FIELDS
from app.layers import EVENT_INPUTS, EVENT_PROPERTIES, HAZARD_INPUTS, HAZARD_PROPERTIES
from app.ledger.input import EventProperties, HazardProperties
from app.models import HazardousArea, LandReleaseEvent
from tests.ledger_scenarios import post_event, post_hazard, rect
from tests.test_files import export

HAZARD_NAMES = [p.name for p in HAZARD_PROPERTIES]
EVENT_NAMES = [p.name for p in EVENT_PROPERTIES]


def test_inputs_are_columns_fields_and_schema_properties() -> None:
    for inputs, table, model in ((HAZARD_INPUTS, HazardousArea.__table__, HazardProperties),
                                 (EVENT_INPUTS, LandReleaseEvent.__table__, EventProperties)):
        schema = model.model_json_schema()
        assert list(schema["properties"]) == [p.name for p in inputs]
        assert sorted(schema["required"]) == sorted(p.name for p in inputs if p.input and p.input.required)
        for p in inputs:
            assert p.input is not None
            column = table.columns[p.column]
            assert column.nullable == p.input.nullable, p.name
            assert column.type.compile(dialect=postgresql.dialect()).lower() == p.input.sql_type, p.name
    assert tuple(p.name for p in HAZARD_INPUTS) == HAZARD_FIELDS
    assert set(REQUIRED_FIELDS) == {"external_id", "classification", "recorded_on"}


def test_reads_and_exports_carry_every_declared_property(client, tmp_path) -> None:
    hazard = post_hazard(client, "DECL-1", rect(0, 0, 500, 500), name="Phum", region="Pailin",
                         date_of_information="2014-01-01", priority="low", contamination=["AV_MINE", "AP_MINE"])
    post_event(client, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 500), organisation="HALO",
               external_id="DECL-E1")
    one = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]
    assert [k for k in one if k in HAZARD_NAMES] == HAZARD_NAMES
    (event,) = one["events"]
    given = {"external_id": "DECL-E1", "kind": "clearance", "date": "2016-01-01", "organisation": "HALO"}
    # the Minimum Data Requirements' inputs (0013) were not given
    assert {p.name: event[p.name] for p in EVENT_INPUTS} == {**{p.name: None for p in EVENT_INPUTS}, **given}
    listed = client.get("/api/v1/states/KHM/hazards").json()["features"][0]["properties"]
    assert list(listed) == ["id", *HAZARD_NAMES]
    item = client.get(f"/collections/hazardous_areas/items/{hazard['id']}").json()["properties"]
    assert list(item) == HAZARD_NAMES
    events = client.get("/collections/land_release_events/items").json()["features"]
    assert list(events[0]["properties"]) == EVENT_NAMES
    path = tmp_path / "KHM.gpkg"
    path.write_bytes(export(client, format="gpkg").content)
    hazards = pyogrio.read_dataframe(path, layer="hazardous_areas")
    assert list(hazards.columns) == ["id", *(p.name for p in HAZARD_PROPERTIES if p.export), "geometry"]
    assert hazards.loc[0, "contamination"] == "AP_MINE;AV_MINE" and hazards.loc[0, "priority"] == "low"
    exported = pyogrio.read_dataframe(path, layer="land_release_events")
    assert list(exported.columns) == ["id", "state", "hazard_id", "hazard_external_id",
                                      *(p.name for p in EVENT_PROPERTIES[2:] if p.export), "geometry"]
    assert exported.loc[0, "organisation"] == "HALO" and exported.loc[0, "hazard_external_id"] == "DECL-1"


def test_the_imports_screening_never_passes_what_the_model_refuses() -> None:
    """`plainly_valid` (the import's vectorised screening) says yes only to cells `HazardProperties` accepts as they
    are, for every declared input, so a row that skips the model could not have been refused by it."""
    from datetime import date, timedelta

    from pydantic import ValidationError

    from app.ledger.input import plainly_valid

    today = date.today()
    valid = {"external_id": "X-1", "classification": "SHA", "recorded_on": "2020-01-01"}
    cells = [None, "x", "X" * 200, "X" * 201, "x" * 500, "x" * 501, "2020-01-01",
             (today + timedelta(days=1)).isoformat(), "1899-12-31", "2020-02-30", "2020/01/01", "SHA", "sha", "DHA",
             "high", "High", ["AP_MINE"], ["AP_MINE", "ERW"], ["CATS"], [], ["ap_mine"]]
    passed = set()
    for prop in HAZARD_INPUTS:
        for cell in cells:
            if not plainly_valid(prop, cell, today):
                continue
            passed.add(prop.name)
            row = {**valid, prop.name: cell} if cell is not None else {k: v for k, v in valid.items() if k != prop.name}
            try:
                HazardProperties.model_validate(row)
            except ValidationError as exc:
                raise AssertionError(f"{prop.name}: {cell!r} passes the screening but the model says {exc}") from exc
    assert passed == {p.name for p in HAZARD_INPUTS}  # each input has cells that skip the model


def test_counts_are_json_integers_and_areas_numbers(client) -> None:
    """Counts (items destroyed, hazards) are JSON integers in every read (a JSON 3.0 is not a count)."""
    hazard = post_hazard(client, "DECL-2", rect(0, 0, 500, 500))
    post_event(client, hazard["id"], "clearance", "2016-01-01", rect(0, 0, 100, 500),
               items_destroyed={"ap_mines": 3, "av_mines": 1})
    (event,) = client.get(f"/api/v1/hazards/{hazard['id']}").json()["properties"]["events"]
    assert all(type(n) is int for n in event["items_destroyed"].values()) and event["items_destroyed"]["ap_mines"] == 3
    (item,) = client.get("/collections/land_release_events/items").json()["features"]
    assert type(item["properties"]["ap_mines"]) is int and item["properties"]["ap_mines"] == 3
    summary = client.get("/api/v1/states/KHM/summary").json()
    assert type(summary["remaining"]["total"]["count"]) is int
    assert type(summary["released"]["total"]["items_destroyed"]["ap_mines"]) is int
    assert isinstance(summary["remaining"]["total"]["area_m2"], float)
