"""The hazard's date of information (GICHD Minimum Data Requirements), added as one declared property
(app/layers.py): the JSON API reads and checks it, the ledger's reads, the OGC layer, the tiles, the
export and the import carry it."""
from __future__ import annotations

import math
from datetime import date, timedelta

import mapbox_vector_tile
import pyogrio
import pytest
from pyproj import Transformer

from app.files.checks import check_rows
from app.files.columns import COLUMN_ALIASES
from app.files.export import SHAPEFILE_NAMES
from app.layers import HAZARD_PROPERTIES
from tests.ledger_scenarios import UTM48N, hazard_feature, post_hazard, rect
from tests.test_files import export, one_by_one, upload, utm_frame, write

_TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def test_declared_once() -> None:
    (prop,) = [p for p in HAZARD_PROPERTIES if p.name == "date_of_information"]
    assert prop.type == "date" and prop.tile and prop.shapefile == "date_of_in"
    assert COLUMN_ALIASES["date_of_information"] == ("date_of_information", "date_of_in", "date_info", "info_date")
    assert SHAPEFILE_NAMES["date_of_information"] == "date_of_in"


def test_json_api_ledger_reads_ogc_and_tiles_carry_it(client) -> None:
    a = post_hazard(client, "DOI-A", rect(0, 0, 500, 500), date_of_information="2014-06-30")
    b = post_hazard(client, "DOI-B", rect(1000, 0, 500, 500))
    one = client.get(f"/api/v1/hazards/{a['id']}").json()["properties"]
    assert one["date_of_information"] == "2014-06-30"
    assert client.get(f"/api/v1/hazards/{b['id']}").json()["properties"]["date_of_information"] is None
    listed = {f["properties"]["external_id"]: f["properties"]
              for f in client.get("/api/v1/states/KHM/hazards").json()["features"]}
    assert listed["DOI-A"]["date_of_information"] == "2014-06-30" and listed["DOI-B"]["date_of_information"] is None
    item = client.get(f"/collections/hazardous_areas/items/{a['id']}").json()
    assert item["properties"]["date_of_information"] == "2014-06-30"
    as_of = client.get(f"/collections/hazardous_areas/items/{a['id']}", params={"datetime": "2016-01-01"}).json()
    assert as_of["properties"]["date_of_information"] == "2014-06-30"
    items = {f["properties"]["external_id"]: f["properties"]
             for f in client.get("/collections/hazardous_areas/items").json()["features"]}
    assert items["DOI-A"]["date_of_information"] == "2014-06-30" and items["DOI-B"]["date_of_information"] is None
    lon, lat = _TO_LL.transform(500_250, 1_450_250)
    x, y = _tile_of(lon, lat, 12)
    response = client.get(f"/collections/hazardous_areas/tiles/WebMercatorQuad/12/{x}/{y}")
    assert response.status_code == 200, response.text
    tiled = {f["properties"]["external_id"]: f["properties"]
             for f in mapbox_vector_tile.decode(response.content)["hazardous_areas"]["features"]}
    assert tiled["DOI-A"]["date_of_information"] == "2014-06-30"
    assert "date_of_information" not in tiled["DOI-B"]  # a null attribute is left out of an MVT feature


@pytest.mark.parametrize("value, message", [
    ("tomorrow", "in the future"),  # worked out when the test runs, not when it is collected
    ("1899-12-31", "before 1900-01-01"),
    ("30/06/2014", None),
])
def test_json_api_refuses_implausible_dates(client, value, message) -> None:
    if value == "tomorrow":
        value = (date.today() + timedelta(days=1)).isoformat()
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json=hazard_feature("DOI-X", rect(0, 0, 100, 100), date_of_information=value))
    assert response.status_code == 422, response.text
    (feature,) = response.json()["invalid_features"]
    assert feature["errors"][0]["field"] == "properties.date_of_information"
    if message:
        assert message in feature["errors"][0]["message"]


def test_a_resubmission_with_another_date_of_information_is_a_conflict(client) -> None:
    post_hazard(client, "DOI-A", rect(0, 0, 500, 500), date_of_information="2014-06-30")
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json=hazard_feature("DOI-A", rect(0, 0, 500, 500), date_of_information="2014-07-01"))
    assert response.status_code == 409, response.text


@pytest.mark.parametrize("fmt, column", [("gpkg", "date_info"), ("shp", "date_of_in"), ("csv", "info_date")])
def test_import_reads_it_by_alias(client, tmp_path, fmt, column) -> None:
    frame = utm_frame(3, **{column: ["2019-11-02", None, "2019/11/03"]})
    result = upload(client, write(frame, tmp_path, fmt))
    assert result["created"] == 3 and result["mapping"]["date_of_information"] == column
    listed = client.get("/api/v1/states/KHM/hazards").json()["features"]
    got = {f["properties"]["external_id"]: f["properties"]["date_of_information"] for f in listed}
    assert got == {"F-00000": "2019-11-02", "F-00001": None, "F-00002": "2019-11-03"}


def test_import_refuses_an_implausible_date_row_by_row_and_vectorised(client, tmp_path) -> None:
    future = (date.today() + timedelta(days=3)).isoformat()
    frame = utm_frame(3, date_of_information=["2019-11-02", future, "1850-01-01"])
    body = upload(client, write(frame, tmp_path, "gpkg"), expect=422)
    assert body["status"] == 422
    rows = pyogrio.read_dataframe(write(frame, tmp_path, "gpkg"))
    columns = {"external_id": "external_id", "classification": "classification", "recorded_on": "recorded_on",
               "contamination": "contamination", "region": "region", "date_of_information": "date_of_information"}
    fast = check_rows(rows, rows.crs, columns, repair=False)
    slow = one_by_one(rows, rows.crs, columns, repair=False)
    assert [h.date_of_information for h in fast[0]] == [h.date_of_information for h in slow[0]] == [date(2019, 11, 2)]
    assert [(r.row, [e["field"] for e in r.errors]) for r in fast[1]] == \
        [(r.row, [e["field"] for e in r.errors]) for r in slow[1]] == \
        [(2, ["date_of_information"]), (3, ["date_of_information"])]


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "csv", "geojson"])
def test_export_then_import_keeps_it(client, tmp_path, fmt) -> None:
    post_hazard(client, "DOI-A", rect(0, 0, 500, 500), date_of_information="2014-06-30")
    post_hazard(client, "DOI-B", rect(1000, 0, 500, 500))
    response = export(client, format=fmt, layer="hazardous_areas")
    path = tmp_path / f"KHM.{'zip' if fmt == 'shp' else fmt}"
    path.write_bytes(response.content)
    result = upload(client, path, iso3="THA")
    assert result["created"] == 2 and "date_of_information" in result["mapping"]
    listed = client.get("/api/v1/states/THA/hazards").json()["features"]
    assert {f["properties"]["external_id"]: f["properties"]["date_of_information"] for f in listed} == \
        {"DOI-A": "2014-06-30", "DOI-B": None}
