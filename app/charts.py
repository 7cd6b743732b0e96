"""Article 5 progress as figures and a burn-down chart: remaining area over time, deadlines, milestones.

Every figure is computed in PostGIS from the ledger (no hazards are loaded into Python):
- remaining area at a date D = the baselines of the valid hazards recorded on or before D minus the
  released areas of the valid events dated on or before D (released pieces never overlap, so the
  sum is exact; a reclassification moves area from the SHA to its CHA child and nets out). A hazard
  counts as CHA at D when it was recorded as CHA or reclassified on or before D.
- released last year = the land released (cancelled, reduced, cleared; not reclassified) in the
  365 days up to and including the as-of date; the current rate is that amount per year.
- the Article 5 deadline at a date = the latest deadline of the decisions (original deadline,
  extensions) taken on or before that date; extensions = how many of those were extensions.
- projected completion = the as-of date plus remaining / current rate; on track when that is on or
  before the deadline.
- work-plan milestones (area to address per year) are drawn as the remaining area they plan for:
  the remaining area at the end of the year before the first milestone, less the milestones so far.

The chart is drawn with matplotlib (Agg, no display) as SVG or PNG. Element ids in the SVG name
what they show (`article5-deadline` (the current one), `article5-original-deadline`,
`article5-extension-<date>`, `work-plan-milestones`, `projection`,
`remaining-area`, `as-of`), so reports and tests can find them.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

try:  # the Article 5 decision history (issue 7): the deadline and extensions as the Committee records them
    from app.article5 import standings as article5_standings
except ImportError:  # pragma: no cover - before that module exists, the decisions table read directly
    article5_standings = None

M2_PER_KM2 = 1_000_000.0
DAYS_PER_YEAR = 365
# Beyond this horizon a projection is drawn to the chart's edge and reported as a date, not plotted.
PROJECTION_HORIZON_YEARS = 30
SHA_COLOUR = "#f5a623"
CHA_COLOUR = "#d0021b"
RELEASED_COLOUR = "#2e9d4f"

# The remaining SHA and total area of one State at each date of `dates` (a VALUES-free SQL series).
_SERIES_SQL = """
WITH h AS MATERIALIZED (
    SELECT h.id, h.recorded_on, h.baseline_area_m2 AS area, h.classification, h.reclassified_on
    FROM hazardous_areas h
    WHERE h.state_iso3 = :iso3 AND h.voided_at IS NULL AND h.recorded_on <= :as_of
), e AS MATERIALIZED (
    SELECT e.date, e.released_area_m2 AS area, h.classification, h.reclassified_on
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
)
SELECT d.on_date,
       COALESCE((SELECT sum(h.area) FROM h WHERE h.recorded_on <= d.on_date), 0)
     - COALESCE((SELECT sum(e.area) FROM e WHERE e.date <= d.on_date), 0) AS total_m2,
       COALESCE((SELECT sum(h.area) FROM h WHERE h.recorded_on <= d.on_date AND h.classification = 'SHA'
                   AND (h.reclassified_on IS NULL OR h.reclassified_on > d.on_date)), 0)
     - COALESCE((SELECT sum(e.area) FROM e WHERE e.date <= d.on_date AND e.classification = 'SHA'
                   AND (e.reclassified_on IS NULL OR e.reclassified_on > d.on_date)), 0) AS sha_m2
FROM dates d
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

_DECISIONS_SQL = """
SELECT d.kind, d.deadline, d.decided_on, d.meeting
FROM article5_decisions d JOIN states s ON s.iso3 = d.state_iso3
WHERE d.state_iso3 = :iso3 AND d.kind IN ('original_deadline', 'extension') AND d.deadline IS NOT NULL
  AND COALESCE(d.decided_on, (s.entry_into_force + interval '10 years')::date, d.deadline) <= :as_of
ORDER BY d.deadline, d.decided_on NULLS FIRST
"""

# One milestone per year: the one of the latest decision taken by the as-of date.
_MILESTONES_SQL = """
SELECT DISTINCT ON (m.year) m.year, m.area_m2, m.areas
FROM work_plan_milestones m
LEFT JOIN article5_decisions d ON d.id = m.decision_id
WHERE m.state_iso3 = :iso3 AND (d.decided_on IS NULL OR d.decided_on <= :as_of)
ORDER BY m.year, d.decided_on DESC NULLS LAST, m.id DESC
"""

# Per State at a date: remaining SHA/CHA (count, area), released in the year before, deadline.
_FIGURES_SQL = """
WITH h AS (
    SELECT h.state_iso3,
           CASE WHEN h.classification = 'CHA' OR h.reclassified_on <= :as_of THEN 'CHA' ELSE 'SHA' END AS cls,
           GREATEST(h.baseline_area_m2 - COALESCE(ev.released_m2, 0), 0) AS remaining_m2
    FROM hazardous_areas h
    LEFT JOIN LATERAL (
        SELECT sum(e.released_area_m2) AS released_m2 FROM land_release_events e
        WHERE e.hazard_id = h.id AND e.voided_at IS NULL AND e.date <= :as_of
    ) ev ON true
    WHERE h.voided_at IS NULL AND h.recorded_on <= :as_of AND (h.released_on IS NULL OR h.released_on > :as_of)
      AND (:all_states OR h.state_iso3 = ANY(:states))
), remaining AS (
    SELECT state_iso3,
           count(*) FILTER (WHERE cls = 'SHA') AS sha_count,
           COALESCE(sum(remaining_m2) FILTER (WHERE cls = 'SHA'), 0) AS sha_m2,
           count(*) FILTER (WHERE cls = 'CHA') AS cha_count,
           COALESCE(sum(remaining_m2) FILTER (WHERE cls = 'CHA'), 0) AS cha_m2
    FROM h GROUP BY state_iso3
), released AS (
    SELECT e.state_iso3, sum(e.released_area_m2) AS m2
    FROM land_release_events e JOIN hazardous_areas h ON h.id = e.hazard_id
    WHERE e.voided_at IS NULL AND h.voided_at IS NULL AND e.kind <> 'reclassification'
      AND e.date > CAST(:as_of AS date) - :days AND e.date <= :as_of
      AND (:all_states OR e.state_iso3 = ANY(:states))
    GROUP BY e.state_iso3
), deadlines AS (
    SELECT d.state_iso3, max(d.deadline) AS deadline, count(*) FILTER (WHERE d.kind = 'extension') AS extensions
    FROM article5_decisions d JOIN states s ON s.iso3 = d.state_iso3
    WHERE d.kind IN ('original_deadline', 'extension') AND d.deadline IS NOT NULL
      AND COALESCE(d.decided_on, (s.entry_into_force + interval '10 years')::date, d.deadline) <= :as_of
    GROUP BY d.state_iso3
), recorded AS (
    SELECT DISTINCT h.state_iso3 FROM hazardous_areas h WHERE h.voided_at IS NULL AND h.recorded_on <= :as_of
)
SELECT s.iso3, s.name,
       COALESCE(r.sha_count, 0) AS sha_count, COALESCE(r.sha_m2, 0) AS sha_m2,
       COALESCE(r.cha_count, 0) AS cha_count, COALESCE(r.cha_m2, 0) AS cha_m2,
       COALESCE(rel.m2, 0) AS released_last_year_m2,
       dl.deadline, COALESCE(dl.extensions, 0) AS extensions,
       rec.state_iso3 IS NOT NULL AS has_hazards
FROM states s
LEFT JOIN remaining r ON r.state_iso3 = s.iso3
LEFT JOIN released rel ON rel.state_iso3 = s.iso3
LEFT JOIN deadlines dl ON dl.state_iso3 = s.iso3
LEFT JOIN recorded rec ON rec.state_iso3 = s.iso3
WHERE (:all_states OR s.iso3 = ANY(:states))
ORDER BY s.name
"""

_BOUNDS_SQL = """
SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (
    SELECT ST_Extent(h.baseline_geom) AS b FROM hazardous_areas h
    WHERE h.state_iso3 = :iso3 AND h.voided_at IS NULL AND h.recorded_on <= :as_of
) x WHERE b IS NOT NULL
"""


def state_name(conn: Connection, iso3: str) -> str | None:
    """The State's name, None when there is no such State."""
    return conn.execute(text("SELECT name FROM states WHERE iso3 = :iso3"), {"iso3": iso3}).scalar()


@dataclass
class Progress:
    """Where a State stands at a date, with what the projection at the current rate says."""

    iso3: str
    name: str
    as_of: date
    sha_count: int
    sha_m2: float
    cha_count: int
    cha_m2: float
    released_last_year_m2: float
    deadline: date | None
    extensions: int | None
    has_hazards: bool

    @property
    def remaining_m2(self) -> float:
        return self.sha_m2 + self.cha_m2

    @property
    def projected_completion(self) -> date | None:
        """The date the remaining area would be released at the current rate; None when it never would."""
        if self.remaining_m2 <= 0:
            return self.as_of
        if self.released_last_year_m2 <= 0:
            return None
        days = math.ceil(self.remaining_m2 / self.released_last_year_m2 * DAYS_PER_YEAR)
        try:
            return self.as_of + timedelta(days=days)
        except OverflowError:
            return None

    @property
    def on_track(self) -> bool | None:
        """Would the State finish by its deadline at the current rate? None without a deadline."""
        if self.remaining_m2 <= 0:
            return True
        if self.deadline is None:
            return None
        completion = self.projected_completion
        return completion is not None and completion <= self.deadline

    @property
    def needed_rate_m2_per_year(self) -> float | None:
        """The yearly release needed to finish by the deadline (None without one or once it has passed)."""
        if self.deadline is None or self.deadline <= self.as_of:
            return None
        return self.remaining_m2 / ((self.deadline - self.as_of).days / DAYS_PER_YEAR)

    def as_dict(self) -> dict[str, Any]:
        completion = self.projected_completion
        needed = self.needed_rate_m2_per_year
        return {
            "state": self.iso3, "name": self.name, "as_of": self.as_of.isoformat(),
            "has_hazards": self.has_hazards,
            "remaining": {
                "SHA": {"count": self.sha_count, "area_m2": round(self.sha_m2, 2),
                        "area_km2": round(self.sha_m2 / M2_PER_KM2, 6)},
                "CHA": {"count": self.cha_count, "area_m2": round(self.cha_m2, 2),
                        "area_km2": round(self.cha_m2 / M2_PER_KM2, 6)},
                "total": {"count": self.sha_count + self.cha_count, "area_m2": round(self.remaining_m2, 2),
                          "area_km2": round(self.remaining_m2 / M2_PER_KM2, 6)},
            },
            "released_last_year": {"area_m2": round(self.released_last_year_m2, 2),
                                   "area_km2": round(self.released_last_year_m2 / M2_PER_KM2, 6),
                                   "from": (self.as_of - timedelta(days=DAYS_PER_YEAR - 1)).isoformat(),
                                   "to": self.as_of.isoformat()},
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "extensions": self.extensions,
            "projected_completion": completion.isoformat() if completion else None,
            "on_track": self.on_track,
            "needed_rate_km2_per_year": round(needed / M2_PER_KM2, 6) if needed is not None else None,
        }


def progress(conn: Connection, as_of: date, states: list[str] | None = None) -> list[Progress]:
    """Every State (or those listed), in name order, at the end of day `as_of`."""
    rows = conn.execute(text(_FIGURES_SQL), {
        "as_of": as_of, "days": DAYS_PER_YEAR, "all_states": states is None, "states": states or [],
    })
    found = [
        Progress(iso3=r.iso3, name=r.name, as_of=as_of, sha_count=r.sha_count, sha_m2=float(r.sha_m2),
                 cha_count=r.cha_count, cha_m2=float(r.cha_m2), released_last_year_m2=float(r.released_last_year_m2),
                 deadline=r.deadline, extensions=r.extensions, has_hazards=r.has_hazards)
        for r in rows
    ]
    if article5_standings is not None and found:
        standing = article5_standings(conn, as_of, [p.iso3 for p in found])
        for p in found:
            if p.iso3 in standing:
                p.deadline, p.extensions = standing[p.iso3].deadline, standing[p.iso3].extensions
    return found


def bounds(conn: Connection, iso3: str, as_of: date) -> list[float] | None:
    """[west, south, east, north] of the State's hazards recorded by `as_of` (WGS84), None when none."""
    row = conn.execute(text(_BOUNDS_SQL), {"iso3": iso3, "as_of": as_of}).one_or_none()
    return [float(v) for v in row] if row is not None else None


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "series": [{"date": d.isoformat(), "remaining_km2": round(t / M2_PER_KM2, 6),
                        "sha_km2": round(s / M2_PER_KM2, 6), "cha_km2": round((t - s) / M2_PER_KM2, 6)}
                       for d, t, s in zip(self.dates, self.total_m2, self.sha_m2, strict=True)],
            "deadlines": [{"kind": d.kind, "deadline": d.deadline.isoformat(),
                           "decided_on": d.decided_on.isoformat() if d.decided_on else None, "meeting": d.meeting}
                          for d in self.deadlines],
            "milestones": [{"year": m.year, "area_km2": round(m.area_m2 / M2_PER_KM2, 6), "areas": m.areas,
                            "planned_remaining_km2": round(m.planned_remaining_m2 / M2_PER_KM2, 6)}
                           for m in self.milestones],
        }


def burn_down(conn: Connection, iso3: str, as_of: date) -> BurnDown | None:
    """The burn-down of one State at `as_of`; None when there is no such State."""
    found = progress(conn, as_of, [iso3])
    if not found:
        return None
    chart = BurnDown(progress=found[0])
    params = {"iso3": iso3, "as_of": as_of}
    for row in conn.execute(text(_SERIES_SQL), params):
        chart.dates.append(row.on_date)
        chart.total_m2.append(max(float(row.total_m2), 0.0))
        chart.sha_m2.append(min(max(float(row.sha_m2), 0.0), max(float(row.total_m2), 0.0)))
    chart.deadlines = [Deadline(r.kind, r.deadline, r.decided_on, r.meeting)
                       for r in conn.execute(text(_DECISIONS_SQL), params)]
    planned = [(r.year, float(r.area_m2), r.areas) for r in conn.execute(text(_MILESTONES_SQL), params)]
    if planned:
        start = conn.execute(text(_REMAINING_AT_SQL),
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


def draw(chart: BurnDown, fmt: str) -> bytes:
    """The burn-down chart as SVG or PNG bytes."""
    if fmt not in CHART_FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}")
    p = chart.progress
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "landrelease"}):
        fig = Figure(figsize=(9, 4.8), dpi=110)
        ax = fig.add_subplot()
        title = f"{p.name} ({p.iso3}): remaining hazardous area, as of {p.as_of.isoformat()}"
        ax.set_title(title, loc="left")
        ax.set_ylabel("remaining area (km²)")

        x_dates = list(chart.dates)
        if x_dates:
            sha = [_km2(v) for v in chart.sha_m2]
            cha = [_km2(t - s) for t, s in zip(chart.total_m2, chart.sha_m2, strict=True)]
            stack = ax.stackplot(x_dates, sha, cha, colors=[SHA_COLOUR, CHA_COLOUR], alpha=0.35,
                                 labels=["SHA remaining", "CHA remaining"], step="post")
            stack[0].set_gid("remaining-sha")
            stack[1].set_gid("remaining-cha")
            (line,) = ax.plot(x_dates, [_km2(v) for v in chart.total_m2], color="#333333", linewidth=1.6,
                              drawstyle="steps-post", label="remaining (SHA + CHA)")
            line.set_gid("remaining-area")
        else:
            ax.text(0.5, 0.5, "no hazardous areas recorded by this date", transform=ax.transAxes,
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
        for d in chart.deadlines:
            current = p.deadline is not None and d.deadline == p.deadline
            if d.kind == "extension":
                label = f"extended to {d.deadline.isoformat()}"
                gid = f"article5-extension-{d.deadline.isoformat()}"
            else:
                label = f"original deadline {d.deadline.isoformat()}"
                gid = "article5-original-deadline"
            if current:
                label = f"Article 5 deadline {d.deadline.isoformat()}"
                if p.extensions:
                    label += f" ({p.extensions} extension{'s' if p.extensions != 1 else ''})"
            vline = ax.axvline(d.deadline, color="#1f4e9c" if current else "#7f9cc9",
                               linewidth=2.0 if current else 1.0, linestyle="-" if current else "--")
            vline.set_gid("article5-deadline" if current else gid)
            caption = ax.text(d.deadline, 0.98, label, transform=ax.get_xaxis_transform(), rotation=90,
                              ha="right", va="top", fontsize=7.5, color=vline.get_color())
            caption.set_gid(("article5-deadline" if current else gid) + "-label")

        if chart.milestones:
            points = ax.scatter([date(m.year, 12, 31) for m in chart.milestones],
                                [_km2(m.planned_remaining_m2) for m in chart.milestones],
                                marker="D", s=28, color="#6a3d9a", zorder=5, label="work-plan milestones")
            points.set_gid("work-plan-milestones")

        if completion is not None and p.remaining_m2 > 0:
            end = min(completion, horizon)
            fraction = (end - p.as_of).days / max((completion - p.as_of).days, 1)
            (projection,) = ax.plot([p.as_of, end], [_km2(p.remaining_m2), _km2(p.remaining_m2) * (1 - fraction)],
                                    color="#333333", linestyle="--", linewidth=1.3,
                                    label=f"at the current rate: done {completion.isoformat()}")
            projection.set_gid("projection")
        elif p.remaining_m2 > 0:
            ax.text(0.99, 0.02, "nothing released in the last 365 days: no projection", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8, color="#666666").set_gid("projection")

        ax.set_xlim(x_min - timedelta(days=60), x_max)
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=12))
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8, frameon=False)
        fig.tight_layout()

        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {}
        fig.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()
