"""The Committee's documents: the Article 7 report as an XLSX workbook and a PDF, the overview as XLSX.

The workbook is laid out like the Article 7 reporting forms, one sheet each:
- `Summary`: the State, the year, where it stands under Articles 5 and 20 at the end of the year;
- `Form C`: the mined areas (location by province or region, SHA/CHA, remaining area, type of mines,
  emplacement where known: the ledger does not record it, so the column stays empty);
- `Land release`: cancelled, reduced and cleared land per year and region;
- `Form G`: the mines destroyed by type, per year and region, and the year's total;
- `Work plan`: the milestones of the extension in effect beside what was released.
Every cell holds the typed value of the JSON report (numbers as numbers, dates as dates, areas in m2
with a display format), so the workbook and the JSON never disagree. Text cells are stored as text
(type "s"), never as formulas: a name "=HYPERLINK(...)" stays that text.

The PDF (reportlab) is the same report for circulation to a meeting, with the burn-down chart
(app.committee.charts, drawn from the report's own chart data).
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.committee import charts, summaries
from app.committee.results import AnnualReport, Overview
from app.models import ITEM_KINDS

M2_FORMAT = "#,##0.00"
KM2_FORMAT = "#,##0.000"
DATE_FORMAT = "yyyy-mm-dd"
ITEM_LABELS = {"ap_mines": "AP mines", "improvised_ap_mines": "Improvised AP mines", "av_mines": "AV mines",
               "other_eo": "Other explosive ordnance"}
assert tuple(ITEM_LABELS) == ITEM_KINDS, "ITEM_LABELS follows app.models.ITEM_KINDS"

FORM_C_HEADER = ("Area ID", "Name", "Province / region", "Classification", "Remaining area (m²)",
                 "Remaining area (km²)", "Type of mines", "Emplacement", "Centroid longitude", "Centroid latitude")
RELEASE_HEADER = ("Year", "Province / region", "Cancelled (m²)", "Reduced (m²)", "Cleared (m²)", "Released (m²)")
FORM_G_HEADER = ("Year", "Province / region", *ITEM_LABELS.values())
WORK_PLAN_HEADER = ("Year", "Planned (m²)", "Planned areas", "Released (m²)", "Met")


def _sheet(book: Workbook, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]],
           formats: dict[int, str] | None = None) -> Worksheet:
    sheet = book.create_sheet(title)
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text stays text: openpyxl would take "=..." for a formula
    for column, number_format in (formats or {}).items():
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = number_format
    for i, title_text in enumerate(header, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = max(12, min(len(title_text) + 4, 40))
    sheet.freeze_panes = "A2"
    return sheet


def _bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def form_c_rows(report: AnnualReport) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [a.external_id, a.name, a.region, a.classification, a.remaining_m2, a.remaining_m2 / 1e6,
         ", ".join(a.contamination), None, a.centroid_lon, a.centroid_lat]
        for a in report.mined_areas]
    total = report.totals.total
    rows.append(["TOTAL", f"{total.count} areas", None, None, total.area_m2, total.area_m2 / 1e6, None, None, None,
                 None])
    return rows


def summary_rows(report: AnnualReport) -> list[tuple[str, Any]]:
    a5, t, r = report.article5, report.totals, report.released
    return [
        ("State", f"{report.name} ({report.state})"), ("Calendar year", report.year), ("As of", report.as_of),
        ("Bound by the Convention", _yes_no(a5.bound)), ("Why", a5.bound_reason),
        ("Article 5 status", a5.status), ("Original deadline", a5.original_deadline),
        ("Deadline", a5.deadline), ("Extensions", a5.extensions),
        ("Suspected hazardous areas (SHA)", t.sha.count), ("SHA remaining (m²)", t.sha.area_m2),
        ("Confirmed hazardous areas (CHA)", t.cha.count), ("CHA remaining (m²)", t.cha.area_m2),
        ("Remaining (m²)", t.total.area_m2),
        ("Cancelled in the year (m²)", r.cancelled_m2), ("Reduced in the year (m²)", r.reduced_m2),
        ("Cleared in the year (m²)", r.cleared_m2), ("Released in the year (m²)", r.released_m2),
        ("Added in the year (m²)", report.added.added_m2), ("Areas added in the year", report.added.added_count),
        ("Projected completion", a5.projected_completion), ("On track", _yes_no(a5.on_track)),
    ]


def release_rows(report: AnnualReport) -> list[list[Any]]:
    return [[r.year, r.region, r.cancelled_m2, r.reduced_m2, r.cleared_m2, r.released_m2]
            for r in report.release_by_region]


def form_g_rows(report: AnnualReport) -> list[list[Any]]:
    rows: list[list[Any]] = [[r.year, r.region, *(getattr(r.items_destroyed, k) for k in ITEM_KINDS)]
                             for r in report.release_by_region]
    rows.append([report.year, "TOTAL", *(getattr(report.released.items_destroyed, k) for k in ITEM_KINDS)])
    return rows


def work_plan_rows(report: AnnualReport) -> list[list[Any]]:
    return [[m.year, m.planned_m2, m.planned_areas, m.released_m2, _yes_no(m.met)] for m in report.milestones]


def annual_report_xlsx(report: AnnualReport) -> bytes:
    """The Article 7 report as a workbook, one sheet per form (see the module docstring)."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    summary = _sheet(book, "Summary", ("Item", "Value"), summary_rows(report))
    for (label, value), (cell,) in zip(summary_rows(report), summary.iter_rows(min_row=2, min_col=2, max_col=2),
                                       strict=True):
        if isinstance(value, date):
            cell.number_format = DATE_FORMAT
        elif isinstance(value, float) and "(m²)" in label:
            cell.number_format = M2_FORMAT
    _sheet(book, "Form C", FORM_C_HEADER, form_c_rows(report), {5: M2_FORMAT, 6: KM2_FORMAT})
    _sheet(book, "Land release", RELEASE_HEADER, release_rows(report), {c: M2_FORMAT for c in range(3, 7)})
    _sheet(book, "Form G", FORM_G_HEADER, form_g_rows(report))
    _sheet(book, "Work plan", WORK_PLAN_HEADER, work_plan_rows(report), {2: M2_FORMAT, 4: M2_FORMAT})
    return _bytes(book)


OVERVIEW_DATES = ("original_deadline", "deadline", "projected_completion")


def overview_xlsx(summary: Overview) -> bytes:
    """The overview as a workbook: the CSV's columns and rows, with numbers, booleans and dates typed."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    rows = []
    for row in summaries.overview_rows(summary):
        rows.append([date.fromisoformat(row[c]) if c in OVERVIEW_DATES and row[c] else row[c]
                     for c in summaries.OVERVIEW_COLUMNS])
    sheet = _sheet(book, "Overview", summaries.OVERVIEW_COLUMNS, rows)
    for name in OVERVIEW_DATES:
        column = summaries.OVERVIEW_COLUMNS.index(name) + 1
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = DATE_FORMAT
    sheet.cell(row=len(rows) + 3, column=1, value=f"As of {summary.as_of.isoformat()}")
    return _bytes(book)


# --- PDF ---------------------------------------------------------------------------------------------
def _text(value: Any, decimals: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float] | None = None,
           decimals: dict[int, int] | None = None) -> Table:
    """A table of the rows; floats with 2 decimals, or `decimals[column]` (0-based)."""
    style = getSampleStyleSheet()["BodyText"]
    style.fontSize, style.leading = 7.5, 9
    head = getSampleStyleSheet()["BodyText"]
    head.fontSize, head.leading, head.fontName = 7.5, 9, "Helvetica-Bold"
    data = [[Paragraph(escape(h), head) for h in header]]
    places = decimals or {}
    data += [[Paragraph(escape(_text(v, places.get(i, 2))), style) for i, v in enumerate(row)] for row in rows] or [
        [Paragraph("—", style)] + [""] * (len(header) - 1)]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def annual_report_pdf(report: AnnualReport) -> bytes:
    """The Article 7 report as a PDF: the summary, the burn-down chart and the forms' tables."""
    styles = getSampleStyleSheet()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=1.5 * cm, rightMargin=1.5 * cm,
                            topMargin=1.5 * cm, bottomMargin=1.5 * cm,
                            title=f"Article 7 report {report.state} {report.year}", author="landrelease")
    chart = charts.draw(charts.BurnDown.from_data(report.burn_down, report.article5.release_rate_m2_per_year), "png")
    story: list[Any] = [
        Paragraph(escape(f"Article 7 report: {report.name} ({report.state}), calendar year {report.year}"),
                  styles["Title"]),
        Paragraph(escape(f"As of {report.as_of.isoformat()}"), styles["Normal"]), Spacer(1, 0.3 * cm),
        _table(("Item", "Value"), summary_rows(report), [8 * cm, 17 * cm]),
        PageBreak(),
        Paragraph("Burn-down", styles["Heading2"]),
        Image(io.BytesIO(chart), width=24 * cm, height=14.4 * cm),
        PageBreak(),
        Paragraph("Form C: mined areas", styles["Heading2"]),
        _table(FORM_C_HEADER, form_c_rows(report), decimals={5: 3, 8: 6, 9: 6}),
        Spacer(1, 0.4 * cm),
        Paragraph("Land release per year and province / region", styles["Heading2"]),
        _table(RELEASE_HEADER, release_rows(report)), Spacer(1, 0.4 * cm),
        Paragraph("Form G: mines and explosive ordnance destroyed", styles["Heading2"]),
        _table(FORM_G_HEADER, form_g_rows(report)), Spacer(1, 0.4 * cm),
        Paragraph("Work-plan milestones and land released", styles["Heading2"]),
        _table(WORK_PLAN_HEADER, work_plan_rows(report)),
    ]
    doc.build(story)
    return out.getvalue()
