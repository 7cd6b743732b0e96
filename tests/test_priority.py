"""The hazard's priority (GICHD Minimum Data Requirements: high, medium or low), added as one declared
property (app/layers.py) and its migration (0007_hazard_priority), and nothing else: the JSON API reads
and checks it, the ledger's reads, the OGC layer, the tiles, the export and the import carry it, a
re-submission with another priority is a conflict, and a CHA split off an SHA keeps its priority."""
from __future__ import annotations

import math

import mapbox_vector_tile
import pyogrio
import pytest
from pyproj import Transformer
from sqlalchemy import text

from app import database
from app.files.checks import check_rows
from app.files.columns import COLUMN_ALIASES
from app.files.export import SHAPEFILE_NAMES
from app.layers import HAZARD_PROPERTIES
from app.ledger.input import HazardProperties
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect
from tests.test_files import export, one_by_one, upload, utm_frame, write

_TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def test_declared_once() -> None:
    (prop,) = [p for p in HAZARD_PROPERTIES if p.name == "priority"]
    assert prop.values == ("high", "medium", "low") and prop.filterable and prop.sortable and prop.tile
    assert "priority" in COLUMN_ALIASES and "priority" not in SHAPEFILE_NAMES  # 8 characters: its own name
    schema = HazardProperties.model_json_schema()["properties"]["priority"]
    assert {"enum": ["high", "medium", "low"], "type": "string"} in schema["anyOf"]
    assert "priority" not in HazardProperties.model_json_schema()["required"]


def test_json_api_ledger_reads_ogc_and_tiles_carry_it(client) -> None:
    a = post_hazard(client, "PRI-A", rect(0, 0, 500, 500), priority="high")
    b = post_hazard(client, "PRI-B", rect(1000, 0, 500, 500))
    assert client.get(f"/api/v1/hazards/{a['id']}").json()["properties"]["priority"] == "high"
    assert client.get(f"/api/v1/hazards/{b['id']}").json()["properties"]["priority"] is None
    as_of = client.get(f"/api/v1/hazards/{a['id']}", params={"as_of": "2016-01-01"}).json()
    assert as_of["properties"]["priority"] == "high"
    listed = {f["properties"]["external_id"]: f["properties"]
              for f in client.get("/api/v1/states/KHM/hazards").json()["features"]}
    assert listed["PRI-A"]["priority"] == "high" and listed["PRI-B"]["priority"] is None
    item = client.get(f"/collections/hazardous_areas/items/{a['id']}").json()
    assert item["properties"]["priority"] == "high"
    items = {f["properties"]["external_id"]: f["properties"]
             for f in client.get("/collections/hazardous_areas/items", params={"datetime": "2016-01-01"})
             .json()["features"]}
    assert items["PRI-A"]["priority"] == "high" and items["PRI-B"]["priority"] is None
    lon, lat = _TO_LL.transform(500_250, 1_450_250)
    x, y = _tile_of(lon, lat, 12)
    response = client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/12/{x}/{y}")
    assert response.status_code == 200, response.text
    tiled = {f["properties"]["external_id"]: f["properties"]
             for f in mapbox_vector_tile.decode(response.content)["hazardous_areas"]["features"]}
    assert tiled["PRI-A"]["priority"] == "high"
    assert "priority" not in tiled["PRI-B"]  # a null attribute is left out of an MVT feature


@pytest.mark.parametrize("value", ["urgent", "HIGH", 1, ""])
def test_json_api_refuses_a_priority_not_declared(client, value) -> None:
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json=hazard_feature("PRI-X", rect(0, 0, 100, 100), priority=value))
    assert response.status_code == 422, response.text
    (feature,) = response.json()["invalid_features"]
    assert [e["field"] for e in feature["errors"]] == ["properties.priority"]
    assert "'high', 'medium' or 'low'" in feature["errors"][0]["message"]
    assert client.get("/api/v1/states/KHM/hazards").json()["features"] == []


def test_a_resubmission_with_another_priority_is_a_conflict(client) -> None:
    post_hazard(client, "PRI-A", rect(0, 0, 500, 500), priority="low")
    same = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                       json=hazard_feature("PRI-A", rect(0, 0, 500, 500), priority="low"))
    assert same.status_code == 200 and same.json()["hazards"][0]["created"] is False
    other = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                        json=hazard_feature("PRI-A", rect(0, 0, 500, 500), priority="medium"))
    assert other.status_code == 409, other.text


def test_a_cha_split_off_keeps_the_priority_of_its_sha(client) -> None:
    sha = post_hazard(client, "PRI-S", rect(0, 0, 1000, 1000), priority="medium", region="Pailin")
    event = post_event(client, sha["id"], "reclassification", "2016-01-01", rect(0, 0, 400, 1000))
    cha = client.get(f"/api/v1/hazards/{event['new_hazard_id']}").json()["properties"]
    assert (cha["classification"], cha["priority"], cha["region"]) == ("CHA", "medium", "Pailin")


@pytest.mark.parametrize("fmt, column", [("gpkg", "prio"), ("shp", "priority"), ("csv", "hazard_priority")])
def test_import_reads_it_by_alias_and_case_insensitively(client, tmp_path, fmt, column) -> None:
    frame = utm_frame(3, **{column: ["High", None, "low"]})
    result = upload(client, write(frame, tmp_path, fmt))
    assert result["created"] == 3 and result["mapping"]["priority"] == column
    listed = client.get("/api/v1/states/KHM/hazards").json()["features"]
    got = {f["properties"]["external_id"]: f["properties"]["priority"] for f in listed}
    assert got == {"F-00000": "high", "F-00001": None, "F-00002": "low"}


def test_a_reimport_with_another_priority_is_a_conflict(client, tmp_path) -> None:
    upload(client, write(utm_frame(2, priority=["high", "low"]), tmp_path, "gpkg"))
    assert upload(client, write(utm_frame(2, priority=["high", "low"]), tmp_path, "gpkg"), expect=200)["unchanged"] == 2
    problem = upload(client, write(utm_frame(2, priority=["high", "medium"]), tmp_path, "gpkg"), expect=409)
    assert [c["external_id"] for c in problem["conflicts"]] == ["F-00001"]


def test_import_refuses_an_unknown_priority_vectorised_as_one_by_one(client, tmp_path) -> None:
    frame = utm_frame(3, priority=["medium", "urgent", None])
    body = upload(client, write(frame, tmp_path, "gpkg"), expect=422)
    assert [(r["row"], [e["column"] for e in r["errors"]]) for r in body["rejected"]] == [(2, ["priority"])]
    rows = pyogrio.read_dataframe(write(frame, tmp_path, "gpkg"))
    columns = {"external_id": "external_id", "classification": "classification", "recorded_on": "recorded_on",
               "contamination": "contamination", "region": "region", "priority": "priority"}
    fast = check_rows(rows, rows.crs, columns, repair=False)
    slow = one_by_one(rows, rows.crs, columns, repair=False)
    assert [h.priority for h in fast[0]] == [h.priority for h in slow[0]] == ["medium", None]
    assert [r.__dict__ for r in fast[1]] == [r.__dict__ for r in slow[1]]
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazardous_areas")).scalar_one() == 0


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "csv", "geojson"])
def test_export_then_import_keeps_it(client, tmp_path, fmt) -> None:
    post_hazard(client, "PRI-A", rect(0, 0, 500, 500), priority="high")
    post_hazard(client, "PRI-B", rect(1000, 0, 500, 500))
    response = export(client, format=fmt, layer="hazardous_areas")
    path = tmp_path / f"KHM.{'zip' if fmt == 'shp' else fmt}"
    path.write_bytes(response.content)
    result = upload(client, path, iso3="THA")
    assert result["created"] == 2 and result["mapping"]["priority"] == "priority"
    listed = client.get("/api/v1/states/THA/hazards").json()["features"]
    assert {f["properties"]["external_id"]: f["properties"]["priority"] for f in listed} == \
        {"PRI-A": "high", "PRI-B": None}
