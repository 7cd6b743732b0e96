"""The one registry of the Committee's output formats.

A format has a name (the `format` query parameter), a media type, and for each typed result it can
render (app.committee.results) a renderer and a file-name pattern over the result's fields. JSON is
the typed result itself (the route's `response_model`); every other format is a whole document made
before the status line (a 200 is never a cut file) and sent as an attachment with its length. The
CSVs are spreadsheet-safe (app.committee.spreadsheet).

The CSVs' header row holds the columns' titles in the request's language; `?headers=names` gives the
columns' machine names instead, for programs (`CsvHeaders`; `Rendering.render_with_names`).

The XLSX and PDF documents are made in app.committee.documents. To add a format: add an `OutputFormat`
to `FORMATS` with its renderings; the routes' `format` parameter and their OpenAPI `responses` follow
(`query_type`, `responses`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from fastapi.responses import Response
from pydantic import BaseModel

from app.committee import documents, summaries
from app.committee.results import AnnualReport, Overview

JSON = "json"


@dataclass(frozen=True)
class Rendering:
    """How one format renders one kind of result."""

    render: Callable[[Any], str | bytes]
    filename: str  # a str.format pattern over the result's fields, e.g. "article7-{state}-{year}.csv"
    # the same document with the columns' machine names as its header row (a CSV read by programs)
    render_with_names: Callable[[Any], str | bytes] | None = None


@dataclass(frozen=True)
class OutputFormat:
    name: str
    media_type: str
    description: str
    renderings: Mapping[type[BaseModel], Rendering] = field(default_factory=dict)

    @property
    def bare_media_type(self) -> str:
        return self.media_type.split(";")[0].strip()


FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    OutputFormat(JSON, "application/json", "JSON (the default)"),
    OutputFormat("csv", "text/csv; charset=utf-8", "a spreadsheet-safe CSV file, areas in km2 (3 decimals)", {
        Overview: Rendering(summaries.overview_csv, "article5-overview-{as_of}.csv",
                            partial(summaries.overview_csv, column_names=True)),
        AnnualReport: Rendering(summaries.annual_report_csv, "article7-{state}-{year}.csv",
                                partial(summaries.annual_report_csv, column_names=True)),
    }),
    *(OutputFormat(f"csv-{name}", "text/csv; charset=utf-8", f"the year's {what} as a spreadsheet-safe CSV file", {
        AnnualReport: Rendering(render, f"article7-{{state}}-{{year}}-{name}.csv", partial(render, column_names=True)),
    }) for name, what, render in (
        ("mines", "AP mines destroyed by type, model and disposal (Form G)", summaries.ap_mines_csv),
        ("beneficiaries", "direct and indirect beneficiaries by sex and age", summaries.beneficiaries_csv),
        ("land-use", "land released by its use after release (m2 and km2)", summaries.land_use_csv),
        ("organisations", "land released by organisation and methods (m2 and km2)", summaries.organisations_csv),
    )),
    OutputFormat("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "an XLSX workbook (the Article 7 report: one sheet per form; areas in m2)", {
        Overview: Rendering(documents.overview_xlsx, "article5-overview-{as_of}.xlsx"),
        AnnualReport: Rendering(documents.annual_report_xlsx, "article7-{state}-{year}.xlsx"),
    }),
    OutputFormat("pdf", "application/pdf", "a PDF document with the burn-down chart, for circulation", {
        AnnualReport: Rendering(documents.annual_report_pdf, "article7-{state}-{year}.pdf"),
    }),
)}


def names(result_type: type[BaseModel]) -> tuple[str, ...]:
    """The formats a result can be given in, JSON first."""
    return tuple(name for name, f in FORMATS.items() if name == JSON or result_type in f.renderings)


def query_type(result_type: type[BaseModel]) -> Any:
    """The type of a route's `format` parameter: one of the result's format names."""
    return Literal[names(result_type)]  # a Literal of the tuple's members


def description(result_type: type[BaseModel]) -> str:
    return "; ".join(f"{name}: {FORMATS[name].description}" for name in names(result_type))


def responses(result_type: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route answering with the result: the JSON schema comes from the route's
    `response_model`; the other formats are documents (strings) of their media type."""
    content = {FORMATS[name].bare_media_type: {"schema": {"type": "string"}}
               for name in names(result_type) if name != JSON}
    listed = ", ".join(names(result_type))
    return {200: {"description": f"The result as {listed} (the `format` parameter)", "content": content}}


CsvHeaders = Literal["titles", "names"]
HEADERS_DESCRIPTION = ("The CSV's header row: `titles`, the columns' titles in the answer's language (the default, "
                       "for people), or `names`, the columns' machine names (snake_case, the same in every language: "
                       "for programs reading the CSV)")


def respond(result: BaseModel, name: str, headers: CsvHeaders = "titles") -> BaseModel | Response:
    """The result in the named format: itself for JSON (the route's response_model renders it), else the
    rendered document as an attachment; `headers="names"` asks for a CSV headed with the column names."""
    if name == JSON:
        return result
    rendering = FORMATS[name].renderings[type(result)]
    render = rendering.render_with_names if headers == "names" and rendering.render_with_names else rendering.render
    filename = rendering.filename.format(**dict(result))
    return Response(render(result), media_type=FORMATS[name].media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
