"""Spreadsheet-safe CSV (app/committee/spreadsheet.py): names and regions that a spreadsheet would run as formulas come
out as text in the CSV export, the Article 7 CSV and the Committee's overview CSV; a CR or LF inside a cell
stays inside it; numbers stay numbers."""
from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest
import sqlalchemy

from app import database
from app.committee.spreadsheet import FORMULA_STARTS, cell, csv_text, text_cell
from tests.ledger_scenarios import post_hazard, rect

# what a field team (or someone with an editor key) could type as a name or a region
HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "\nx", "a\rb", "a\nb",
           "x;=1+1", "x,=1+1", 'q"=1', "Phum Thmei"]


def _parse(document: str, **options) -> list[list]:
    return list(csv.reader(io.StringIO(document, newline=""), **options))


def _assert_safe(rows: list[list]) -> None:
    """No text cell of the parsed document begins with a character a spreadsheet reads as a formula."""
    for row in rows:
        for value in row:
            assert not (isinstance(value, str) and value.startswith(FORMULA_STARTS)), (value, row)


@pytest.fixture
def hostile_hazards(client) -> list[dict]:
    """One KHM hazard per hostile text, as its name and (in reverse order) its region.

    A region given now names a province (app/places): free text can only be in a region from before that
    rule, so the regions are written into the table as such data would be."""
    hazards = [post_hazard(client, f"KHM-{i:02d}", rect(i * 200.0, 0, 100, 100), name=name,
                           recorded_on="2020-01-01")
               for i, name in enumerate(HOSTILE)]
    with database.get_engine().begin() as conn:
        for i, hazard in enumerate(hazards):
            conn.execute(sqlalchemy.text("UPDATE hazardous_areas SET region = :region WHERE id = :id"),
                         {"region": HOSTILE[-1 - i], "id": hazard["id"]})
    return hazards


def test_the_rule() -> None:
    assert [text_cell(v) for v in HOSTILE] == [
        "'" + v if v[0] in "=+-@\t\r\n" else v for v in HOSTILE]
    assert text_cell("") == "" and text_cell("KHM-01") == "KHM-01"
    assert [cell(v) for v in (None, True, False, -2.5, 3, "-2")] == ["", "true", "false", -2.5, 3, "'-2"]
    # text is quoted (a separator, a quote, a CR or LF inside cannot start a cell or a row), numbers are bare
    document = csv_text(("name", "lon"), [["a\rb", -104.25], ["=1+1", None], ['x;"=y', 0]])
    assert document == '"name","lon"\n"a\rb",-104.25\n"\'=1+1",""\n"x;""=y",0\n'
    assert _parse(document) == [["name", "lon"], ["a\rb", "-104.25"], ["'=1+1", ""], ['x;"=y', "0"]]


def test_the_csv_export_is_safe_to_open_and_gdal_reads_every_feature(client, hostile_hazards, tmp_path: Path) -> None:
    response = client.get("/api/v1/states/KHM/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    document = response.content.decode("utf-8")
    rows = _parse(document)
    assert len(rows) == 1 + len(HOSTILE)  # a CR or LF inside a name never splits a row
    _assert_safe(rows)
    header = rows[0]
    by_id = {row[header.index("external_id")]: row for row in rows[1:]}
    for i, name in enumerate(HOSTILE):
        row = by_id[f"KHM-{i:02d}"]
        assert row[header.index("name")] == text_cell(name)
        assert row[header.index("region")] == text_cell(HOSTILE[-1 - i])
        assert row[header.index("WKT")].startswith("MULTIPOLYGON") and float(row[header.index("remaining_area_m2")])
        for text in (name, HOSTILE[-1 - i]):  # between quotes, a quote inside doubled
            assert f',"{text_cell(text).replace(chr(34), chr(34) * 2)}",' in document
    path = tmp_path / "KHM.csv"
    path.write_bytes(response.content)
    info = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(path), "-oo", "GEOM_POSSIBLE_NAMES=WKT",
                           "-oo", "KEEP_GEOM_COLUMNS=NO"], capture_output=True, text=True, timeout=60, check=False)
    assert info.returncode == 0, info.stderr
    assert f"Feature Count: {len(HOSTILE)}\n" in info.stdout, info.stdout


def test_the_article7_csv_is_safe_and_its_numbers_stay_numbers(client, hostile_hazards) -> None:
    response = client.get("/api/v1/states/KHM/report", params={"year": 2024, "format": "csv", "headers": "names"})
    assert response.status_code == 200, response.text
    assert response.headers["content-length"] == str(len(response.content))  # made whole, then sent
    # read as a spreadsheet does: an unquoted cell is a number (csv raises on one that is not)
    rows = _parse(response.text, quoting=csv.QUOTE_NONNUMERIC)
    assert len(rows) == 1 + len(HOSTILE) + 1  # the header, one row per area, the TOTAL
    _assert_safe(rows)
    header = rows[0]
    by_id = {row[0]: row for row in rows[1:]}
    for i, name in enumerate(HOSTILE):
        row = by_id[f"KHM-{i:02d}"]
        assert row[header.index("name")] == text_cell(name)
        assert row[header.index("region")] == text_cell(HOSTILE[-1 - i])
        assert isinstance(row[header.index("centroid_lon")], float) and row[header.index("remaining_m2")] > 0
    assert by_id["TOTAL"][header.index("name")] == f"{len(HOSTILE)} areas"


def test_the_overview_csv_keeps_negative_numbers_as_numbers(client, hostile_hazards) -> None:
    """A State past its deadline has negative days_remaining: a number, written bare, not neutralised text."""
    response = client.get("/api/v1/summary", params={"as_of": "2035-01-01", "format": "csv", "headers": "names"})
    assert response.status_code == 200, response.text
    rows = _parse(response.text, quoting=csv.QUOTE_NONNUMERIC)
    _assert_safe(rows)
    header, states = rows[0], {row[0]: row for row in rows[1:]}
    assert len(states) == len(rows) - 1 == 35  # the 30 States with mined areas and the five that withdrew in 2025
    days = states["KHM"][header.index("days_remaining")]
    assert isinstance(days, float) and days < 0
    assert ",-" in response.text and ",'-" not in response.text
