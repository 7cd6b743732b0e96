"""The dashboard: burn-down charts as files, the data behind a chart, and the pages themselves.

The HTML pages are static shells (app/web): they hold no data. Their script asks the API with the key
kept in the browser session, so the pages follow the same access rules as every other read: the
overview reads GET /api/v1/summary, a State's page GET /api/v1/states/{iso3}/summary, the chart and
its data below, and the map the OGC vector tiles (/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y});
the review page (/dashboard/{iso3}/review) GET /api/v1/states/{iso3}/submissions and the submissions'
approve, return and reject; the data-quality page (/dashboard/{iso3}/quality) GET /api/v1/states/{iso3}/quality.
"""
from __future__ import annotations

import json
import re
from datetime import date
from html import escape
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from app.access import ApiKey, public_state_reader
from app.committee import charts, i18n
from app.committee.results import ChartData
from app.params import ISO3, CalendarDate
from app.problems import Problem
from app.read_routing import get_read_session

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
STATIC_PATH = "/dashboard/static"

# The charts and pages in the request's language (?lang= or Accept-Language: app.committee.i18n).
router = APIRouter(tags=["Dashboard"], dependencies=[Depends(i18n.use_language)])

AS_OF = Query(None, description="The date to look from (YYYY-MM-DD, the end of that day); default today")


def _burn_down(session: Session, iso3: str, as_of: date | None) -> charts.BurnDown:
    code = iso3.upper()
    day = as_of or date.today()  # CalendarDate keeps it within 1900..2200
    return charts.burn_down(session, code, day)  # a 404 for an unknown State


def _chart_response(session: Session, iso3: str, as_of: date | None, fmt: str) -> Response:
    chart = _burn_down(session, iso3, as_of)
    body = charts.draw(chart, fmt)
    name = f"{chart.progress.iso3}_burn-down_{chart.progress.as_of.isoformat()}.{fmt}"
    return Response(body, media_type=charts.CHART_FORMATS[fmt],
                    headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/api/v1/states/{iso3}/chart.svg", summary="Burn-down chart of a State (SVG)",
            response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
def chart_svg(iso3: ISO3, as_of: CalendarDate | None = AS_OF, _: ApiKey | None = Depends(public_state_reader),
              session: Session = Depends(get_read_session)) -> Response:
    """Remaining SHA and CHA over time, the Article 5 deadline and extensions, the work-plan milestones and
    the projection at the current rate (the land released in the 365 days up to `as_of`)."""
    return _chart_response(session, iso3, as_of, "svg")


@router.get("/api/v1/states/{iso3}/chart.png", summary="Burn-down chart of a State (PNG)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def chart_png(iso3: ISO3, as_of: CalendarDate | None = AS_OF, _: ApiKey | None = Depends(public_state_reader),
              session: Session = Depends(get_read_session)) -> Response:
    """The same chart as `chart.svg`, as a PNG image for reports."""
    return _chart_response(session, iso3, as_of, "png")


@router.get("/api/v1/states/{iso3}/chart.json", summary="The data behind the burn-down chart, and the map extent",
            response_model=ChartData)
def chart_data(iso3: ISO3, as_of: CalendarDate | None = AS_OF, _: ApiKey | None = Depends(public_state_reader),
               session: Session = Depends(get_read_session)) -> ChartData:
    """Remaining SHA/CHA at each month end (km²), the deadlines in effect, the work-plan milestones with the
    remaining area they plan for, the projection, and `bbox` ([W, S, E, N], WGS84) of the State's hazards."""
    chart = _burn_down(session, iso3, as_of)
    p = chart.progress
    return chart.data(charts.bounds(session, p.iso3, p.as_of))


# --- the pages -----------------------------------------------------------------------------------
def _page(name: str) -> HTMLResponse:
    """The page in the request's language, with the messages its scripts need."""
    html = i18n.render_page((WEB_DIR / name).read_text(encoding="utf-8"))
    messages = escape(json.dumps(i18n.page_messages(), ensure_ascii=False), quote=True)
    html = html.replace("<body ", f'<body data-messages="{messages}" ', 1)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", "Content-Language": i18n.current()})


@router.get("/dashboard", include_in_schema=False)
def overview_page() -> HTMLResponse:
    return _page("overview.html")


@router.get("/dashboard/{iso3}", include_in_schema=False)
def state_page(iso3: str) -> HTMLResponse:
    if not re.fullmatch(r"[A-Za-z]{3}", iso3):
        raise Problem(404, f"'{iso3}' is not a State: use an ISO 3166 alpha-3 code such as /dashboard/KHM")
    return _page("state.html")


@router.get("/dashboard/{iso3}/review", include_in_schema=False)
def review_page(iso3: str) -> HTMLResponse:
    """The State's submissions: the centre's review queue, or an operator's own submissions."""
    if not re.fullmatch(r"[A-Za-z]{3}", iso3):
        raise Problem(404, f"'{iso3}' is not a State: use an ISO 3166 alpha-3 code such as /dashboard/KHM/review")
    return _page("review.html")


@router.get("/dashboard/{iso3}/quality", include_in_schema=False)
def quality_page(iso3: str) -> HTMLResponse:
    """The data-quality report of a State (GET /api/v1/states/{iso3}/quality, app/places)."""
    if not re.fullmatch(r"[A-Za-z]{3}", iso3):
        raise Problem(404, f"'{iso3}' is not a State: use an ISO 3166 alpha-3 code such as /dashboard/KHM/quality")
    return _page("quality.html")


def mount_static(app: FastAPI) -> None:
    """Serve the pages' script, style and the packaged MapLibre GL JS (nothing comes from a CDN)."""
    app.mount(STATIC_PATH, StaticFiles(directory=WEB_DIR / "static"), name="dashboard-static")
