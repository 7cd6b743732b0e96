"""A State's burn-down chart: remaining area over time, the Article 5 deadlines, milestones, projection.

The figures at the as-of date (remaining SHA/CHA, land released in the 365 days before, deadline,
extensions, projected completion, on track) are those of `app.committee.summaries` (GET /api/v1/states/{iso3}/
summary), so the chart and the summaries never disagree. What only the chart needs is computed
here in PostGIS from the ledger (no hazards are loaded into Python):
- remaining area at each month end D = the baselines of the valid hazards recorded on or before D
  minus the released areas of the valid events dated on or before D (released pieces never overlap,
  so the sum is exact; a reclassification moves area from the SHA to its CHA child and nets out). A
  hazard counts as CHA at D when it was recorded as CHA or reclassified on or before D;
- the deadline lines: every original deadline and extension in effect by the as-of date
  (`app.committee.article5`: a decision counts from its day, else its meeting's closing day, else the
  day its reference fact applies from);
- work-plan milestones (area to address per year, of the latest decision in effect) are drawn as
  the remaining area they plan for: the remaining area at the end of the year before the first
  milestone, less the milestones so far;
- the projection at the current rate: a dashed line from the remaining area at the as-of date to
  zero at the projected completion.

The chart is drawn with matplotlib (Agg, no display) as SVG or PNG. Element ids in the SVG name
what they show (`article5-deadline` (the current one), `article5-original-deadline`,
`article5-extension-<date>`, `article5-reopening-<date>`, `work-plan-milestones`, `projection`,
`remaining-area`, `as-of`), so reports and tests can find them. The SVG holds no CSS: matplotlib's
style attributes and its one `<style>` rule are written as SVG presentation attributes (the same
look), so the dashboard shows it inline under a Content-Security-Policy without inline styles.
"""
from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.committee import article5, summaries  # noqa: E402
from app.committee.i18n import _, day  # noqa: E402
from app.committee.results import ChartData, ChartDeadline, ChartMilestone, SeriesPoint  # noqa: E402
from app.committee.units import M2_PER_KM2, km2  # noqa: E402
from app.geometry import sql_extent  # noqa: E402
from app.ledger import require_state  # noqa: E402

DEADLINE_KINDS = ("original_deadline", "extension", "reopening")
DAYS_PER_YEAR = 365
# Beyond this horizon a projection is drawn to the chart's edge and reported as a date, not plotted.
PROJECTION_HORIZON_YEARS = 30
SHA_COLOUR = "#f5a623"
CHA_COLOUR = "#d0021b"
RELEASED_COLOUR = "#2e9d4f"

# The remaining total and SHA area of one State at the first recording date, every month end and the
# as-of date: each hazard adds its baseline on the day it was recorded, each valid event takes its
# released area away on its date (from the SHA while its hazard is an SHA), and a hazard reclassified
# as a whole moves what remained of it then from SHA to CHA. The changes are summed per point of the
# series and accumulated in order, so the work grows with hazards + events, not with their product.
_SERIES_SQL = """
WITH h AS MATERIALIZED (
    SELECT h.id, h.recorded_on, h.baseline_area_m2 AS area, h.classification, h.reclassified_on
    FROM hazardous_areas h
    WHERE h.state_iso3 = :iso3 AND h.voided_at IS NULL AND h.recorded_on <= :as_of
), e AS MATERIALIZED (
    SELECT e.hazard_id, e.date, e.released_area_m2 AS area, h.classification, h.reclassified_on
    FROM land_release_events e JOIN h ON h.id = e.hazard_id
    WHERE e.voided_at IS NULL AND e.date <= :as_of
), first AS (
    SELECT min(recorded_on) AS on_date FROM h
), dates AS (
    SELECT DISTINCT d::date AS on_date FROM (
        SELECT (m + interval '1 month' - interval '1 day')::date AS d
        FROM first, generate_series(date_trunc('month', first.on_date), CAST(:as_of AS date), interval '1 month') m
        UNION ALL SELECT on_date FROM first
        UNION ALL SELECT CAST(:as_of AS date) WHERE EXISTS (SELECT 1 FROM h)
    ) s
    WHERE d IS NOT NULL AND d <= :as_of
), changes AS (
    SELECT h.recorded_on AS d, h.area AS total, CASE WHEN h.classification = 'SHA' THEN h.area ELSE 0 END AS sha
    FROM h
    UNION ALL
    SELECT e.date, -e.area,
           CASE WHEN e.classification = 'SHA' AND (e.reclassified_on IS NULL OR e.reclassified_on >= e.date)
                THEN -e.area ELSE 0 END
    FROM e
    UNION ALL
    SELECT h.reclassified_on, 0,
           -(h.area - COALESCE((SELECT sum(e.area) FROM e WHERE e.hazard_id = h.id AND e.date <= h.reclassified_on), 0))
    FROM h WHERE h.classification = 'SHA' AND h.reclassified_on <= :as_of
), per_point AS (
    SELECT CASE WHEN c.d <= first.on_date THEN first.on_date
                ELSE LEAST((date_trunc('month', c.d) + interval '1 month' - interval '1 day')::date,
                           CAST(:as_of AS date)) END AS on_date,
           sum(c.total) AS total, sum(c.sha) AS sha
    FROM changes c, first
    GROUP BY 1
)
SELECT d.on_date,
       sum(COALESCE(p.total, 0)) OVER w AS total_m2,
       sum(COALESCE(p.sha, 0)) OVER w AS sha_m2
FROM dates d LEFT JOIN per_point p ON p.on_date = d.on_date
WINDOW w AS (ORDER BY d.on_date)
ORDER BY d.on_date
"""

_REMAINING_AT_SQL = """
SELECT COALESCE((SELECT sum(h.baseline_area_m2) FROM hazardous_areas h
                 WHERE h.state_iso3 = :iso3 AND h.voided_at IS NULL AND h.recorded_on <= :on_date), 0)
     - COALESCE((SELECT sum(e.released_area_m2) FROM land_release_events e
                 JOIN hazardous_areas h ON h.id = e.hazard_id
                 WHERE e.state_iso3 = :iso3 AND h.voided_at IS NULL AND e.voided_at IS NULL
                   AND h.recorded_on <= :on_date AND e.date <= :on_date), 0)
"""

# One milestone per year: that of the latest decision in effect at the as-of date (app.committee.article5).
_MILESTONES_SQL = f"SELECT m.year, m.area_m2, m.areas FROM ({article5.milestones_sql()}) m ORDER BY m.year"

_BOUNDS_SQL = f"""
SELECT xmin, ymin, xmax, ymax FROM ({sql_extent("h.baseline_geom", "hazardous_areas h WHERE h.state_iso3 = :iso3 "
                                                 "AND h.voided_at IS NULL AND h.recorded_on <= :as_of")}) x
WHERE xmin IS NOT NULL
"""


@dataclass
class Progress:
    """Where a State stands at a date: the figures of its summary (app.committee.summaries)."""

    iso3: str
    name: str
    as_of: date
    remaining_m2: float
    released_last_year_m2: float
    deadline: date | None
    extensions: int | None
    projected_completion: date | None
    on_track: bool | None

    @classmethod
    def of(cls, session: Session, iso3: str, as_of: date) -> Progress:
        row = summaries.overview(session, as_of, [iso3]).states[0]
        a5 = row.article5
        return cls(iso3=iso3, name=row.name, as_of=as_of, remaining_m2=row.remaining.total.area_m2,
                   released_last_year_m2=row.released_last_year.released_m2, deadline=a5.deadline,
                   extensions=a5.extensions, projected_completion=a5.projected_completion, on_track=a5.on_track)


def bounds(session: Session, iso3: str, as_of: date) -> list[float] | None:
    """[west, south, east, north] of the State's hazards recorded by `as_of` (WGS84), None when none.

    Across the antimeridian east is beyond 180 degrees (east > west, as MapLibre takes bounds)."""
    row = session.execute(text(_BOUNDS_SQL), {"iso3": iso3, "as_of": as_of}).one_or_none()
    if row is None:
        return None
    west, south, east, north = (float(v) for v in row)
    return [west, south, east + 360 if east < west else east, north]


@dataclass
class Deadline:
    kind: str
    deadline: date
    decided_on: date | None
    meeting: str | None


@dataclass
class Milestone:
    year: int
    area_m2: float
    areas: int | None
    planned_remaining_m2: float


@dataclass
class BurnDown:
    """Everything the burn-down chart shows for one State at one date."""

    progress: Progress
    dates: list[date] = field(default_factory=list)
    total_m2: list[float] = field(default_factory=list)
    sha_m2: list[float] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)

    def data(self, bbox: list[float] | None) -> ChartData:
        """The data behind the chart (km2, `units.KM2_DECIMALS` places) with the map extent `bbox`."""
        p = self.progress
        return ChartData(
            state=p.iso3, name=p.name, as_of=p.as_of, remaining_km2=km2(p.remaining_m2), deadline=p.deadline,
            projected_completion=p.projected_completion, on_track=p.on_track,
            series=[SeriesPoint(date=d, remaining_km2=km2(t), sha_km2=km2(s), cha_km2=km2(t - s))
                    for d, t, s in zip(self.dates, self.total_m2, self.sha_m2, strict=True)],
            deadlines=[ChartDeadline(kind=d.kind, deadline=d.deadline, decided_on=d.decided_on, meeting=d.meeting)
                       for d in self.deadlines],
            milestones=[ChartMilestone(year=m.year, area_km2=km2(m.area_m2), areas=m.areas,
                                       planned_remaining_km2=km2(m.planned_remaining_m2))
                        for m in self.milestones],
            extensions=p.extensions, bbox=bbox,
        )

    @classmethod
    def from_data(cls, data: ChartData, released_last_year_m2: float) -> BurnDown:
        """The chart again from its data (km2 back to m2), to draw it where only the data travels (the reports)."""
        m2 = M2_PER_KM2
        return cls(
            progress=Progress(iso3=data.state, name=data.name, as_of=data.as_of, remaining_m2=data.remaining_km2 * m2,
                              released_last_year_m2=released_last_year_m2, deadline=data.deadline,
                              extensions=data.extensions, projected_completion=data.projected_completion,
                              on_track=data.on_track),
            dates=[p.date for p in data.series], total_m2=[p.remaining_km2 * m2 for p in data.series],
            sha_m2=[p.sha_km2 * m2 for p in data.series],
            deadlines=[Deadline(d.kind, d.deadline, d.decided_on, d.meeting) for d in data.deadlines],
            milestones=[Milestone(m.year, m.area_km2 * m2, m.areas, m.planned_remaining_km2 * m2)
                        for m in data.milestones],
        )


def burn_down(session: Session, iso3: str, as_of: date) -> BurnDown:
    """The burn-down of one State at `as_of` (a 404 when there is no such State: app.ledger.require_state)."""
    require_state(session, iso3)
    chart = BurnDown(progress=Progress.of(session, iso3, as_of))
    params = {"iso3": iso3, "as_of": as_of, "states": [iso3], "recording": None}
    for row in session.execute(text(_SERIES_SQL), params):
        total = max(float(row.total_m2), 0.0)
        chart.dates.append(row.on_date)
        chart.total_m2.append(total)
        chart.sha_m2.append(min(max(float(row.sha_m2), 0.0), total))
    chart.deadlines = sorted(
        (Deadline(d.kind, d.deadline, d.decided_on, d.meeting)
         for d in article5.decision_history(session, iso3)
         if d.kind in DEADLINE_KINDS and d.deadline and not d.superseded and d.effective_on <= as_of),
        key=lambda d: d.deadline)
    planned = [(r.year, float(r.area_m2), r.areas) for r in session.execute(text(_MILESTONES_SQL), params)]
    if planned:
        start = session.execute(text(_REMAINING_AT_SQL),
                                {"iso3": iso3, "on_date": date(planned[0][0] - 1, 12, 31)}).scalar_one()
        remaining = float(start)
        for year, area_m2, areas in planned:
            remaining = max(remaining - area_m2, 0.0)
            chart.milestones.append(Milestone(year, area_m2, areas, remaining))
    return chart


# --- drawing -------------------------------------------------------------------------------------
CHART_FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


def _km2(value_m2: float) -> float:
    return value_m2 / M2_PER_KM2


# matplotlib's settings are process-wide and it is not thread-safe: one chart is drawn at a time.
_DRAWING = threading.Lock()


def draw(chart: BurnDown, fmt: str) -> bytes:
    """The burn-down chart as SVG or PNG bytes."""
    if fmt not in CHART_FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}")
    with _DRAWING:
        return _draw(chart, fmt)


def _draw(chart: BurnDown, fmt: str) -> bytes:
    p = chart.progress
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 10, "svg.hashsalt": "landrelease"}):
        fig = Figure(figsize=(9, 5.4), dpi=110)
        # Any: matplotlib's stubs take floats, not the dates its date converter (matplotlib.dates) draws.
        ax: Any = fig.add_subplot()
        title = _("{name} ({iso3}): remaining hazardous area, as of {as_of}", name=p.name, iso3=p.iso3,
                  as_of=day(p.as_of))
        ax.set_title(title, loc="left")
        ax.set_ylabel(_("remaining area (km²)"))

        x_dates = list(chart.dates)
        if x_dates:
            sha = [_km2(v) for v in chart.sha_m2]
            cha = [_km2(t - s) for t, s in zip(chart.total_m2, chart.sha_m2, strict=True)]
            stack = ax.stackplot(x_dates, sha, cha, colors=[SHA_COLOUR, CHA_COLOUR], alpha=0.35,
                                 labels=[_("SHA remaining"), _("CHA remaining")], step="post")
            stack[0].set_gid("remaining-sha")
            stack[1].set_gid("remaining-cha")
            (line,) = ax.plot(x_dates, [_km2(v) for v in chart.total_m2], color="#333333", linewidth=1.6,
                              drawstyle="steps-post", label=_("remaining (SHA + CHA)"))
            line.set_gid("remaining-area")
        else:
            ax.text(0.5, 0.5, _("no hazardous areas recorded by this date"), transform=ax.transAxes,
                    ha="center", va="center", color="#666666")

        x_min = x_dates[0] if x_dates else p.as_of - timedelta(days=5 * DAYS_PER_YEAR)
        x_max = p.as_of
        for d in chart.deadlines:
            x_min, x_max = min(x_min, d.deadline), max(x_max, d.deadline)
        for m in chart.milestones:
            x_max = max(x_max, date(m.year, 12, 31))
        completion = p.projected_completion
        horizon = p.as_of + timedelta(days=PROJECTION_HORIZON_YEARS * DAYS_PER_YEAR)
        if completion is not None and p.remaining_m2 > 0:
            x_max = max(x_max, min(completion, horizon))
        x_max = x_max + timedelta(days=120)

        as_of_line = ax.axvline(p.as_of, color="#888888", linestyle=":", linewidth=1)
        as_of_line.set_gid("as-of")

        # Article 5 deadlines: the current one bold, earlier ones (the original, superseded extensions) thin.
        drawn: dict[date, Deadline] = {d.deadline: d for d in chart.deadlines}  # one line per date
        for d in drawn.values():
            current = p.deadline is not None and d.deadline == p.deadline
            if d.kind == "original_deadline":
                label = _("original deadline {deadline}", deadline=day(d.deadline))
                gid = "article5-original-deadline"
            else:
                label = (_("extended to {deadline}", deadline=day(d.deadline)) if d.kind == "extension"
                         else _("reopened to {deadline}", deadline=day(d.deadline)))
                gid = f"article5-{d.kind}-{d.deadline.isoformat()}"
            if current:
                label = _("Article 5 deadline {deadline}", deadline=day(d.deadline))
                if p.extensions:
                    label += (_(" (1 extension)") if p.extensions == 1
                              else _(" ({count} extensions)", count=p.extensions))
            vline = ax.axvline(d.deadline, color="#1f4e9c" if current else "#7f9cc9",
                               linewidth=2.0 if current else 1.0, linestyle="-" if current else "--")
            vline.set_gid("article5-deadline" if current else gid)
            caption = ax.text(d.deadline, 0.98, label, transform=ax.get_xaxis_transform(), rotation=90,
                              ha="right", va="top", fontsize=8.5, color=vline.get_color(),
                              bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.0})
            caption.set_gid(("article5-deadline" if current else gid) + "-label")

        if chart.milestones:
            points = ax.scatter([date(m.year, 12, 31) for m in chart.milestones],
                                [_km2(m.planned_remaining_m2) for m in chart.milestones],
                                marker="D", s=28, color="#6a3d9a", zorder=5, label=_("work-plan milestones"))
            points.set_gid("work-plan-milestones")

        if completion is not None and p.remaining_m2 > 0:
            end = min(completion, horizon)
            fraction = (end - p.as_of).days / max((completion - p.as_of).days, 1)
            (projection,) = ax.plot([p.as_of, end], [_km2(p.remaining_m2), _km2(p.remaining_m2) * (1 - fraction)],
                                    color="#333333", linestyle="--", linewidth=1.3,
                                    label=_("at the current rate: done {day}", day=day(completion)))
            projection.set_gid("projection")
        elif p.remaining_m2 > 0:
            ax.text(0.99, 0.02, _("nothing released in the last 365 days: no projection"), transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8, color="#666666").set_gid("projection")

        ax.set_xlim(x_min - timedelta(days=60), x_max)
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=12))
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=8.5, frameon=False)
        fig.tight_layout()

        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {}
        fig.savefig(out, format=fmt, metadata=metadata)
    return without_css(out.getvalue()) if fmt == "svg" else out.getvalue()


_STYLE_ATTRIBUTE = re.compile(rb' style="([^"]*)"')
_STYLE_RULE_FOR_ALL = re.compile(rb'\s*<style type="text/css">\*\{([^}]*)\}</style>')
_DECLARATION = re.compile(rb"^\s*([a-z-]+)\s*:\s*(.*?)\s*$")


def _attributes(declarations: bytes) -> bytes:
    pairs = [_DECLARATION.match(d) for d in declarations.split(b";") if d.strip()]
    return b"".join(b' %s="%s"' % (m.group(1), m.group(2)) for m in pairs if m)


def without_css(svg: bytes) -> bytes:
    """matplotlib's SVG with its CSS as presentation attributes.

    Every property matplotlib writes (fill, stroke*, opacity, font-size, font-family, text-anchor) is
    also a presentation attribute. Its `*{...}` rule sets inherited properties (line joins and caps),
    so it moves to the root `<svg>`, where each element's own attribute still wins, as it did over CSS.
    """
    rule = _STYLE_RULE_FOR_ALL.search(svg)
    if rule is not None:
        svg = svg[:rule.start()] + svg[rule.end():]
        svg = svg.replace(b"<svg ", b"<svg" + _attributes(rule.group(1)) + b" ", 1)
    return _STYLE_ATTRIBUTE.sub(lambda m: _attributes(m.group(1)), svg)
