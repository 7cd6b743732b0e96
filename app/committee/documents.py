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
(app.committee.charts, drawn from the report's own chart data). Labels, sheet names and sentences come
in the request's language (app.committee.i18n); in the PDF, numbers and dates in the locale's form too.
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
from app.committee.i18n import _, day, number
from app.committee.results import AnnualReport, Overview
from app.models import ITEM_KINDS

M2_FORMAT = "#,##0.00"
KM2_FORMAT = "#,##0.000"
DATE_FORMAT = "yyyy-mm-dd"


# The labels, in the request's language (app.committee.i18n); the English ones are the message ids.
def item_labels() -> dict[str, str]:
    labels = {"ap_mines": _("AP mines"), "improvised_ap_mines": _("Improvised AP mines"), "av_mines": _("AV mines"),
              "other_eo": _("Other explosive ordnance")}
    assert tuple(labels) == ITEM_KINDS, "the labels follow app.models.ITEM_KINDS"
    return labels


def form_c_header() -> tuple[str, ...]:
    return (_("Area ID"), _("Name"), _("Province / region"), _("Classification"), _("Remaining area (m²)"),
            _("Remaining area (km²)"), _("Type of mines"), _("Emplacement"), _("Centroid longitude"),
            _("Centroid latitude"))


def release_header() -> tuple[str, ...]:
    return (_("Year"), _("Province / region"), _("Cancelled (m²)"), _("Reduced (m²)"), _("Cleared (m²)"),
            _("Released (m²)"))


def form_g_header() -> tuple[str, ...]:
    return (_("Year"), _("Province / region"), *item_labels().values())


def work_plan_header() -> tuple[str, ...]:
    return (_("Year"), _("Planned (m²)"), _("Planned areas"), _("Released (m²)"), _("Met"))


def sheet_names() -> tuple[str, ...]:
    return (_("Summary"), _("Form C"), _("Land release"), _("Form G"), _("Work plan"))


def _region(name: str) -> str:
    assert summaries.NO_REGION == "(no region)", "the message below is summaries.NO_REGION"
    return _("(no region)") if name == summaries.NO_REGION else name


def _classification(code: str) -> str:
    return {"SHA": _("SHA"), "CHA": _("CHA")}.get(code, code)


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
    return None if value is None else (_("yes") if value else _("no"))


def form_c_rows(report: AnnualReport) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [a.external_id, a.name, a.region, _classification(a.classification), a.remaining_m2, a.remaining_m2 / 1e6,
         ", ".join(contamination_label(c) for c in a.contamination), None, a.centroid_lon, a.centroid_lat]
        for a in report.mined_areas]
    total = report.totals.total
    rows.append([_("TOTAL"), _("{count} areas", count=total.count), None, None, total.area_m2, total.area_m2 / 1e6,
                 None, None, None, None])
    return rows


def summary_rows(report: AnnualReport) -> list[tuple[str, Any]]:
    a5, t, r = report.article5, report.totals, report.released
    return [
        (_("State"), f"{report.name} ({report.state})"), (_("Calendar year"), report.year), (_("As of"), report.as_of),
        (_("Bound by the Convention"), _yes_no(a5.bound)), (_("Why"), a5.bound_reason),
        (_("Article 5 status"), status_label(a5.status)), (_("Original deadline"), a5.original_deadline),
        (_("Deadline"), a5.deadline), (_("Extensions"), a5.extensions),
        (_("Suspected hazardous areas (SHA)"), t.sha.count), (_("SHA remaining (m²)"), t.sha.area_m2),
        (_("Confirmed hazardous areas (CHA)"), t.cha.count), (_("CHA remaining (m²)"), t.cha.area_m2),
        (_("Remaining (m²)"), t.total.area_m2),
        (_("Cancelled in the year (m²)"), r.cancelled_m2), (_("Reduced in the year (m²)"), r.reduced_m2),
        (_("Cleared in the year (m²)"), r.cleared_m2), (_("Released in the year (m²)"), r.released_m2),
        (_("Added in the year (m²)"), report.added.added_m2), (_("Areas added in the year"), report.added.added_count),
        (_("Projected completion"), a5.projected_completion), (_("On track"), _yes_no(a5.on_track)),
    ]


def status_label(status: str) -> str:
    return {"obligation": _("obligation"), "completed": _("completed"), "withdrawal_notified": _("withdrawal notified"),
            "withdrawn": _("withdrawn"), "not_in_force": _("not in force"),
            "no_article5_obligation": _("no Article 5 obligation")}.get(status, status)


def contamination_label(code: str) -> str:
    return {"AP_MINE": _("AP mine"), "IMPROVISED_AP_MINE": _("improvised AP mine"), "AV_MINE": _("AV mine"),
            "ERW": _("ERW"), "CLUSTER_MUNITION": _("cluster munition"), "OTHER": _("other")}.get(code, code)


def release_rows(report: AnnualReport) -> list[list[Any]]:
    return [[r.year, _region(r.region), r.cancelled_m2, r.reduced_m2, r.cleared_m2, r.released_m2]
            for r in report.release_by_region]


def form_g_rows(report: AnnualReport) -> list[list[Any]]:
    rows: list[list[Any]] = [[r.year, _region(r.region), *(getattr(r.items_destroyed, k) for k in ITEM_KINDS)]
                             for r in report.release_by_region]
    rows.append([report.year, _("TOTAL"), *(getattr(report.released.items_destroyed, k) for k in ITEM_KINDS)])
    return rows


def work_plan_rows(report: AnnualReport) -> list[list[Any]]:
    return [[m.year, m.planned_m2, m.planned_areas, m.released_m2, _yes_no(m.met)] for m in report.milestones]


def annual_report_xlsx(report: AnnualReport) -> bytes:
    """The Article 7 report as a workbook, one sheet per form (see the module docstring)."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    names = sheet_names()
    summary = _sheet(book, names[0], (_("Item"), _("Value")), summary_rows(report))
    for (label, value), (cell,) in zip(summary_rows(report), summary.iter_rows(min_row=2, min_col=2, max_col=2),
                                       strict=True):
        if isinstance(value, date):
            cell.number_format = DATE_FORMAT
        elif isinstance(value, float) and "(m²)" in label:  # the labels of areas end so in every language
            cell.number_format = M2_FORMAT
    _sheet(book, names[1], form_c_header(), form_c_rows(report), {5: M2_FORMAT, 6: KM2_FORMAT})
    _sheet(book, names[2], release_header(), release_rows(report), {c: M2_FORMAT for c in range(3, 7)})
    _sheet(book, names[3], form_g_header(), form_g_rows(report))
    _sheet(book, names[4], work_plan_header(), work_plan_rows(report), {2: M2_FORMAT, 4: M2_FORMAT})
    return _bytes(book)


OVERVIEW_DATES = ("original_deadline", "deadline", "projected_completion")


def overview_xlsx(summary: Overview) -> bytes:
    """The overview as a workbook: the CSV's columns (under their titles) and rows, with numbers, booleans and dates
    typed."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    rows = []
    for row in summaries.overview_rows(summary):
        rows.append([date.fromisoformat(row[c]) if c in OVERVIEW_DATES and row[c] else row[c]
                     for c in summaries.OVERVIEW_COLUMNS])
    sheet = _sheet(book, _("Overview"), summaries.overview_titles(), rows)
    for name in OVERVIEW_DATES:
        column = summaries.OVERVIEW_COLUMNS.index(name) + 1
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = DATE_FORMAT
    sheet.cell(row=len(rows) + 3, column=1, value=_("As of {day}", day=day(summary.as_of)))
    return _bytes(book)


# --- PDF ---------------------------------------------------------------------------------------------
def _text(value: Any, decimals: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _yes_no(value) or ""
    if isinstance(value, float):
        return number(value, decimals)
    if isinstance(value, int):
        return number(value, 0)
    if isinstance(value, date):
        return day(value)
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
                            title=_("Article 7 report: {name} ({iso3}), calendar year {year}", name=report.name,
                                    iso3=report.state, year=report.year), author="landrelease")
    chart = charts.draw(charts.BurnDown.from_data(report.burn_down, report.article5.release_rate_m2_per_year), "png")
    story: list[Any] = [
        Paragraph(escape(_("Article 7 report: {name} ({iso3}), calendar year {year}", name=report.name,
                           iso3=report.state, year=report.year)), styles["Title"]),
        Paragraph(escape(_("As of {day}", day=day(report.as_of))), styles["Normal"]), Spacer(1, 0.3 * cm),
        _table((_("Item"), _("Value")), summary_rows(report), [8 * cm, 17 * cm]),
        PageBreak(),
        Paragraph(escape(_("Burn-down")), styles["Heading2"]),
        Image(io.BytesIO(chart), width=24 * cm, height=14.4 * cm),
        PageBreak(),
        Paragraph(escape(_("Form C: mined areas")), styles["Heading2"]),
        _table(form_c_header(), form_c_rows(report), decimals={5: 3, 8: 6, 9: 6}),
        Spacer(1, 0.4 * cm),
        Paragraph(escape(_("Land release per year and province / region")), styles["Heading2"]),
        _table(release_header(), release_rows(report)), Spacer(1, 0.4 * cm),
        Paragraph(escape(_("Form G: mines and explosive ordnance destroyed")), styles["Heading2"]),
        _table(form_g_header(), form_g_rows(report)), Spacer(1, 0.4 * cm),
        Paragraph(escape(_("Work-plan milestones and land released")), styles["Heading2"]),
        _table(work_plan_header(), work_plan_rows(report)),
    ]
    doc.build(story)
    return out.getvalue()
