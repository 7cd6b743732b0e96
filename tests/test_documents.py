"""The Article 7 report as an XLSX workbook (opened back with openpyxl, compared cell by cell with the JSON report)
and as a PDF (rendered with pdftoppm and read with pdftotext); the overview as XLSX."""
from __future__ import annotations

import csv
import io
import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image

from app.committee.documents import (
    contamination_label,
    form_c_header,
    form_g_header,
    release_header,
    work_plan_header,
)
from app.committee.summaries import OVERVIEW_COLUMNS, overview_titles
from tests.test_summary import scenario  # noqa: F401 - the fixture: KHM's hand-built history

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell_value(value):
    """A cell as the JSON gives it: dates as ISO strings (openpyxl reads a date cell as a datetime)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def rows(sheet) -> list[list]:
    return [[cell_value(c) for c in row] for row in sheet.iter_rows(values_only=True)]


def same(expected: list[list]) -> list[list]:
    """The expected rows, each float within the 15 significant digits an XLSX cell keeps."""
    return [[pytest.approx(v, rel=1e-14) if isinstance(v, float) else v for v in row] for row in expected]


def report_json(client, year: int) -> dict:
    response = client.get("/api/v1/states/KHM/report", params={"year": year})
    assert response.status_code == 200, response.text
    return response.json()


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


@pytest.mark.parametrize("year", [2022, 2023])
def test_article7_xlsx_matches_the_json_report_cell_by_cell(client, scenario, year: int) -> None:  # noqa: F811
    report = report_json(client, year)
    response = client.get("/api/v1/states/KHM/report", params={"year": year, "format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert f'filename="article7-KHM-{year}.xlsx"' in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Summary", "Form C", "Land release", "Form G", "Work plan"]

    form_c = rows(book["Form C"])
    assert form_c[0] == list(form_c_header())
    expected = [[a["external_id"], a["name"], a["region"], a["classification"], a["remaining_m2"],
                 a["remaining_m2"] / 1e6, ", ".join(contamination_label(c) for c in a["contamination"]), None,
                 a["centroid_lon"], a["centroid_lat"]]
                for a in report["mined_areas"]]
    total = report["totals"]["total"]
    expected.append(["TOTAL", f"{total['count']} areas", None, None, total["area_m2"], total["area_m2"] / 1e6,
                     None, None, None, None])
    assert form_c[1:] == same(expected)
    assert book["Form C"]["E2"].number_format == "#,##0.00"

    release = rows(book["Land release"])
    assert release[0] == list(release_header())
    assert release[1:] == same([[r["year"], r["region"], r["cancelled_m2"], r["reduced_m2"], r["cleared_m2"],
                                 r["released_m2"]] for r in report["release_by_region"]])
    # Per year, the regions add up to the year's release; 2022 in Pailin is B's clearance.
    in_year = [r for r in report["release_by_region"] if r["year"] == year]
    assert sum(r["released_m2"] for r in in_year) == pytest.approx(report["released"]["released_m2"])
    assert {r["region"] for r in report["release_by_region"]} <= {"Battambang", "Pailin", "(no region)"}

    form_g = rows(book["Form G"])
    assert form_g[0] == list(form_g_header())
    kinds = ("ap_mines", "improvised_ap_mines", "av_mines", "other_eo")
    assert form_g[1:-1] == [[r["year"], r["region"], *(r["items_destroyed"][k] for k in kinds)]
                            for r in report["release_by_region"]]
    assert form_g[-1] == [year, "TOTAL", *(report["released"]["items_destroyed"][k] for k in kinds)]

    plan = rows(book["Work plan"])
    assert plan[0] == list(work_plan_header())
    assert plan[1:] == same([[m["year"], m["planned_m2"], m["planned_areas"], m["released_m2"], yes_no(m["met"])]
                             for m in report["milestones"]])

    summary = dict(rows(book["Summary"])[1:])
    a5 = report["article5"]
    assert summary["State"] == "Cambodia (KHM)" and summary["Calendar year"] == year
    assert summary["As of"] == f"{year}-12-31" and summary["Deadline"] == a5["deadline"]
    assert summary["Extensions"] == a5["extensions"] and summary["Why"] == a5["bound_reason"]
    assert summary["Remaining (m²)"] == pytest.approx(report["totals"]["total"]["area_m2"], rel=1e-14)
    assert summary["Released in the year (m²)"] == pytest.approx(report["released"]["released_m2"], rel=1e-14)


def test_the_2023_report_has_the_work_plan_beside_the_release(client, scenario) -> None:  # noqa: F811
    report = report_json(client, 2023)
    assert [m["year"] for m in report["milestones"]] == [2023, 2024]
    assert report["article5"]["deadline"] == "2028-12-31"
    assert report["burn_down"]["as_of"] == "2023-12-31" and report["burn_down"]["deadline"] == "2028-12-31"


def test_article7_pdf_renders_with_its_chart_and_tables(client, scenario, tmp_path: Path,  # noqa: F811
                                                         artifacts_dir: Path) -> None:
    report = report_json(client, 2023)
    response = client.get("/api/v1/states/KHM/report", params={"year": 2023, "format": "pdf"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    pdf = tmp_path / "article7.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3  # summary, chart, forms
    for page in pages:
        (artifacts_dir / f"article7-KHM-2023-{page.name}").write_bytes(page.read_bytes())
    chart_page = Image.open(pages[1]).convert("L")
    histogram = chart_page.histogram()
    not_white = sum(histogram[:250]) / sum(histogram)
    assert not_white > 0.02  # the chart is drawn, the page is not blank
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    assert "Article 7 report: Cambodia (KHM), calendar year 2023" in text
    assert "Form C: mined areas" in text and "Form G" in text and "Work-plan milestones" in text
    for area in report["mined_areas"]:
        assert area["external_id"] in text
    assert report["article5"]["bound_reason"].split(" (")[0] in " ".join(text.split())
    assert "2028-12-31" in text


def test_overview_xlsx_matches_the_csv(client, scenario) -> None:  # noqa: F811
    csv_text = client.get("/api/v1/summary", params={"as_of": "2023-12-31", "format": "csv", "headers": "names"}).text
    response = client.get("/api/v1/summary", params={"as_of": "2023-12-31", "format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content))["Overview"]
    table = rows(sheet)
    assert table[0] == list(overview_titles())  # the columns' titles (English here), as the CSV has them
    expected = list(csv.DictReader(io.StringIO(csv_text)))
    got = [dict(zip(OVERVIEW_COLUMNS, row, strict=True)) for row in table[1:len(expected) + 1]]

    def as_csv(value) -> str | float:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return float(value) if isinstance(value, int | float) else str(value)

    def typed(text: str) -> str | float:
        try:
            return float(text)
        except ValueError:
            return text

    assert [{k: as_csv(v) for k, v in row.items()} for row in got] == [{k: typed(v) for k, v in row.items()}
                                                                        for row in expected]
    assert table[-1][0] == "As of 2023-12-31"


def test_a_text_cell_that_looks_like_a_formula_stays_text(client) -> None:
    from tests.ledger_scenarios import post_hazard, rect
    post_hazard(client, "KHM-F", rect(0, 0, 100, 100), recorded_on="2020-03-01", region="=HYPERLINK(\"x\")")
    response = client.get("/api/v1/states/KHM/report", params={"year": 2020, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content))["Form C"]
    assert sheet["C2"].value == '=HYPERLINK("x")' and sheet["C2"].data_type == "s"


def test_pdf_is_only_for_the_report(client) -> None:
    response = client.get("/api/v1/summary", params={"format": "pdf"})
    assert response.status_code == 422
    assert "format" in response.json()["detail"]
