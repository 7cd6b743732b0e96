"""What the Committee on Article 5 Implementation asks of a State, at a date: SQL aggregates over the ledger.

Everything is as of the end of a day D:
- a hazard counts from the day it was recorded; voided hazards and voided events never count;
- remaining(hazard, D) = baseline - the released areas of its valid events dated on or before D
  (the pieces never overlap, so the sum is exact); a hazard released in full on or before D is gone;
- its class at D is CHA when recorded as CHA or reclassified on or before D;
- released land is the area of cancellation, reduction and clearance events; a reclassification
  is not released land (it moves land from an SHA to a new CHA);
- "added" land is the baseline area of hazards recorded in a year that were previously unknown:
  a CHA split off an SHA by a reclassification is not new land and is not added.
The sums are computed by PostgreSQL; Python only arranges the grouped rows. The CSV forms are
spreadsheet-safe (app/committee/spreadsheet.py): a name or region cannot become a formula in the Committee's
spreadsheet.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import submissions
from app.committee import article5, spreadsheet, units
from app.committee.i18n import _
from app.committee.results import (
    Added,
    AnnualReport,
    Article5Progress,
    Beneficiaries,
    ItemsDestroyed,
    Milestone,
    MinedArea,
    MinesDestroyed,
    Overview,
    OverviewRow,
    RegionRelease,
    Released,
    ReleasedArea,
    ReleasedBy,
    ReleasedFor,
    ReleaseTotal,
    ReleaseYear,
    Remaining,
    RemainingDetail,
    StateSummary,
    YearRelease,
)
from app.committee.units import CSV_KM2_DECIMALS, M2_PER_KM2
from app.geometry import sql_spans_antimeridian, sql_unwrapped, sql_wrapped_longitude
from app.layers import sql_releases_land
from app.ledger import require_state
from app.ledger.as_of import hazards_sql
from app.models import ITEM_KINDS, RELEASE_KINDS

# The column of each kind of event that releases land (app.models.RELEASE_KINDS, the one declaration):
# a kind added there without its column here fails at import, not in a sum.
_RELEASE_COLUMN = {"cancellation": "cancelled_m2", "reduction": "reduced_m2", "clearance": "cleared_m2"}
RELEASE_METHODS = {kind: _RELEASE_COLUMN[kind] for kind in RELEASE_KINDS}
NO_REGION = "(no region)"
NO_PROVINCE = "(no province)"
RATE_WINDOW_DAYS = 365

_STATES_FILTER = "(CAST(:states AS text[]) IS NULL OR {column} = ANY(CAST(:states AS text[])))"

# The hazards that remain at :as_of, with their class and remaining area then (areas only, no geometry).
# The ledger keeps `remaining_area_m2 = baseline_area_m2 - sum(released_area_m2 of the valid events)`
# and sets `released_on` when a hazard is released in full, so the area at D has two equal forms:
#   from the baseline:      baseline_area_m2 - sum(released of valid events dated on or before D)
#   from the current state: remaining_area_m2 + sum(released of valid events dated after D)
# Both sum the events once, grouped by hazard, and join the sums to the hazards (no sub-query per
# hazard; the events are also filtered by State, an event carrying its hazard's State). The first
# reads the events before D, the second those after D: `remaining` picks the form that should read
# fewer, by whether D is within RECENT_DAYS of today (the default date is today, when the second form
# reads no event at all; land release grows over the years, and in the benchmark's data half of the
# events fall in the last six years).
RECENT_DAYS = 5 * 365


def _remaining_sql(from_current_state: bool) -> str:
    if from_current_state:
        events, area = "e.date > :as_of", "h.remaining_area_m2 + COALESCE(ev.released_m2, 0)"
    else:
        events, area = "e.date <= :as_of", "h.baseline_area_m2 - COALESCE(ev.released_m2, 0)"
    return f"""
    SELECT h.state_iso3, h.region, h.province_code, h.contamination,
           CASE WHEN h.reclassified_on <= :as_of THEN 'CHA' ELSE h.classification END AS classification,
           GREATEST({area}, 0) AS remaining_m2
    FROM hazardous_areas h
    LEFT JOIN (
        SELECT e.hazard_id, sum(e.released_area_m2) AS released_m2
        FROM land_release_events e
        WHERE e.voided_at IS NULL AND {events} AND {_STATES_FILTER.format(column="e.state_iso3")}
        GROUP BY e.hazard_id
    ) ev ON ev.hazard_id = h.id
    WHERE h.voided_at IS NULL AND h.recorded_on <= :as_of
      AND (h.released_on IS NULL OR h.released_on > :as_of)
      AND {_STATES_FILTER.format(column="h.state_iso3")}
"""


def _remaining_groups_sql(from_current_state: bool, detail: bool) -> str:
    """Count and area per State and class (with `detail`, also per contamination type and region).

    The hazards are first grouped by every key at once (a few hundred groups), so that the three
    dimensions are summed over those groups, not over the hazards three times.
    """
    keys = "state_iso3, classification, region, province_code, contamination" if detail else \
        "state_iso3, classification"
    by_dimension = [
        "SELECT state_iso3, 'classification' AS dimension, classification AS key, sum(n) AS n, sum(area_m2) AS area_m2 "
        "FROM g GROUP BY state_iso3, classification"
    ]
    if detail:
        by_dimension += [
            "SELECT state_iso3, 'contamination', c, sum(n), sum(area_m2) "
            "FROM g CROSS JOIN LATERAL unnest(g.contamination) AS c GROUP BY state_iso3, c",
            f"SELECT state_iso3, 'region', COALESCE(region, '{NO_REGION}'), sum(n), sum(area_m2) "
            f"FROM g GROUP BY state_iso3, COALESCE(region, '{NO_REGION}')",
            f"SELECT state_iso3, 'province', COALESCE(province_code, '{NO_PROVINCE}'), sum(n), sum(area_m2) "
            f"FROM g GROUP BY state_iso3, COALESCE(province_code, '{NO_PROVINCE}')",
        ]
    return f"""
    WITH g AS (
        SELECT {keys}, count(*) AS n, sum(remaining_m2) AS area_m2
        FROM ({_remaining_sql(from_current_state)}) hz
        GROUP BY {keys}
    )
    {" UNION ALL ".join(by_dimension)}
"""


# Valid events dated in (:since, :as_of], per State and year; the events of a voided hazard do not count
# (an anti-join against the few voided hazards, not a join with all of them). Summed per day first (a
# hash of a few thousand days), then per year.
_RELEASE_SQL = f"""
    SELECT state_iso3, CAST(extract(year FROM date) AS integer) AS year,
           {", ".join(f"sum({column}) AS {column}" for column in (*RELEASE_METHODS.values(), *ITEM_KINDS))}
    FROM (
        SELECT e.state_iso3, e.date,
               {", ".join(f"COALESCE(sum(e.released_area_m2) FILTER (WHERE e.kind = '{kind}'), 0) AS {column}"
                          for kind, column in RELEASE_METHODS.items())},
               {", ".join(f"COALESCE(sum(e.{item}), 0) AS {item}" for item in ITEM_KINDS)}
        FROM land_release_events e
        WHERE e.voided_at IS NULL AND e.date <= :as_of
          AND (CAST(:since AS date) IS NULL OR e.date > :since)
          AND NOT EXISTS (SELECT FROM hazardous_areas h WHERE h.id = e.hazard_id AND h.voided_at IS NOT NULL)
          AND {_STATES_FILTER.format(column="e.state_iso3")}
        GROUP BY e.state_iso3, e.date
    ) per_day
    GROUP BY state_iso3, year
"""

_ADDED_SQL = f"""
    SELECT state_iso3, CAST(extract(year FROM recorded_on) AS integer) AS year,
           sum(added_m2) AS added_m2, sum(added_count) AS added_count
    FROM (
        SELECT h.state_iso3, h.recorded_on, sum(h.baseline_area_m2) AS added_m2, count(*) AS added_count
        FROM hazardous_areas h
        WHERE h.voided_at IS NULL AND h.parent_id IS NULL AND h.recorded_on <= :as_of
          AND {_STATES_FILTER.format(column="h.state_iso3")}
        GROUP BY h.state_iso3, h.recorded_on
    ) per_day
    GROUP BY state_iso3, year
"""


def _area(count: int = 0, area_m2: float = 0.0) -> dict[str, Any]:
    return {"count": int(count), "area_m2": float(area_m2)}


def remaining(session: Session, as_of: date, states: list[str] | None = None,
              detail: bool = False, from_current_state: bool | None = None) -> dict[str, dict[str, Any]]:
    """Per State: remaining SHA, CHA and total (count, area_m2); with `detail`, by contamination and region.

    A hazard with several contamination types counts under each of them, so `by_contamination`
    may add up to more than the total. `from_current_state` chooses the form of the remaining area
    (see `_remaining_sql`; both give the same answer); by default the current state for dates within
    RECENT_DAYS of today, the baseline for older ones.
    """
    if from_current_state is None:
        from_current_state = as_of >= date.today() - timedelta(days=RECENT_DAYS)
    result: dict[str, dict[str, Any]] = {}

    def entry(iso3: str) -> dict[str, Any]:
        if iso3 not in result:
            result[iso3] = {"sha": _area(), "cha": _area(), "total": _area()}
            if detail:
                result[iso3].update(by_contamination={}, by_region={}, by_province={})
        return result[iso3]

    for iso3 in states or []:
        entry(iso3)
    params = {"as_of": as_of, "states": states}
    for row in session.execute(text(_remaining_groups_sql(from_current_state, detail)), params):
        e = entry(row.state_iso3)
        if row.dimension == "classification":
            e[row.key.lower()] = _area(row.n, row.area_m2)
            e["total"] = _area(e["total"]["count"] + row.n, e["total"]["area_m2"] + row.area_m2)
        else:
            e["by_" + row.dimension][row.key] = _area(row.n, row.area_m2)
    if detail:
        codes = [code for e in result.values() for code in e["by_province"]]
        names = {r.code: r.name for r in session.execute(
            text("SELECT code, name FROM provinces WHERE code = ANY(:codes)"), {"codes": codes})}
        for e in result.values():
            e["by_province"] = {code: {**a, "name": names.get(code)} for code, a in e["by_province"].items()}
    for e in result.values():
        for key in ("by_contamination", "by_region", "by_province"):
            if key in e:
                e[key] = dict(sorted(e[key].items()))
    return result


def _release_row(row: Any | None) -> dict[str, Any]:
    values = {column: float(getattr(row, column)) if row else 0.0 for column in RELEASE_METHODS.values()}
    values["released_m2"] = sum(values.values())
    return values


def _items(row: Any | None) -> dict[str, int]:
    return {item: int(getattr(row, item)) if row else 0 for item in ITEM_KINDS}


def release_by_year(session: Session, as_of: date, states: list[str] | None = None,
                    since: date | None = None) -> dict[str, dict[int, Any]]:
    """Per State and year: the grouped release rows (area by method, items destroyed) up to `as_of`."""
    result: dict[str, dict[int, Any]] = {}
    for row in session.execute(text(_RELEASE_SQL), {"as_of": as_of, "since": since, "states": states}):
        result.setdefault(row.state_iso3, {})[row.year] = row
    return result


def released_in_window(session: Session, as_of: date, states: list[str] | None = None,
                       days: int = RATE_WINDOW_DAYS) -> dict[str, dict[str, Any]]:
    """Per State: land released by method in the `days` days up to and including `as_of`."""
    since = as_of - timedelta(days=days)
    rows = session.execute(
        text(f"SELECT state_iso3, {', '.join(f'sum({c}) AS {c}' for c in RELEASE_METHODS.values())} "
             f"FROM ({_RELEASE_SQL}) r GROUP BY state_iso3"),
        {"as_of": as_of, "since": since, "states": states},
    )
    return {row.state_iso3: _release_row(row) for row in rows}


def added_by_year(session: Session, as_of: date, states: list[str] | None = None) -> dict[str, dict[int, Any]]:
    result: dict[str, dict[int, Any]] = {}
    for row in session.execute(text(_ADDED_SQL), {"as_of": as_of, "states": states}):
        result.setdefault(row.state_iso3, {})[row.year] = row
    return result


def progress(standing: article5.Standing, remaining_m2: float, rate_m2_per_year: float,
             as_of: date) -> Article5Progress:
    """Deadline arithmetic: days left, projected completion at the last year's rate, the rate needed."""
    deadline = standing.deadline
    bound = standing.bound.bound and standing.status != article5.NO_OBLIGATION
    days_remaining = (deadline - as_of).days if deadline else None
    projected = None
    if rate_m2_per_year > 0:
        try:
            projected = as_of + timedelta(days=round(remaining_m2 / rate_m2_per_year * RATE_WINDOW_DAYS))
        except OverflowError:  # so slow it would never finish
            projected = None
    on_track = None
    if deadline and rate_m2_per_year > 0 and bound:
        on_track = projected is not None and projected <= deadline
    required = None
    if deadline and bound:
        if remaining_m2 <= 0:
            required = 0.0
        elif days_remaining is not None and days_remaining > 0:  # not None with a deadline
            required = remaining_m2 / (days_remaining / RATE_WINDOW_DAYS)
    return Article5Progress(**standing.fields(), days_remaining=days_remaining,
                            release_rate_m2_per_year=rate_m2_per_year, projected_completion=projected,
                            on_track=on_track, required_rate_m2_per_year=required)


def _milestones(session: Session, iso3: str, as_of: date, released: dict[int, Any]) -> list[Milestone]:
    rows = session.execute(text(f"SELECT * FROM ({article5.milestones_sql()}) m WHERE m.state_iso3 = :iso3 "
                                "ORDER BY m.year"),
                           {"as_of": as_of, "states": [iso3], "iso3": iso3, "recording": None})
    out = []
    for m in rows:
        released_m2 = _release_row(released.get(m.year))["released_m2"]
        year_over = date(m.year, 12, 31) <= as_of
        # Met once the year's release reaches the plan; not met only when the year is over without it.
        met = True if released_m2 >= m.area_m2 else (False if year_over else None)
        out.append(Milestone(year=m.year, planned_m2=float(m.area_m2), planned_areas=m.areas,
                             released_m2=released_m2, met=met, decision_id=m.decision_id))
    return out


def state_summary(session: Session, iso3: str, as_of: date) -> StateSummary:
    """The summary of one State at the end of `as_of` (see the module docstring for the rules)."""
    standing = article5.standing(session, iso3, as_of)
    left = remaining(session, as_of, [iso3], detail=True)[iso3]
    releases = release_by_year(session, as_of, [iso3]).get(iso3, {})
    added = added_by_year(session, as_of, [iso3]).get(iso3, {})
    years = sorted(set(releases) | set(added))
    by_year = []
    for year in range(years[0], as_of.year + 1) if years else []:
        row, new = releases.get(year), added.get(year)
        by_year.append({"year": year, **_release_row(row), "items_destroyed": _items(row),
                        "added_m2": float(new.added_m2) if new else 0.0,
                        "added_count": int(new.added_count) if new else 0})
    total = {column: sum(y[column] for y in by_year) for column in (*RELEASE_METHODS.values(), "released_m2")}
    items_total = {item: sum(y["items_destroyed"][item] for y in by_year) for item in ITEM_KINDS}
    window = released_in_window(session, as_of, [iso3]).get(iso3, _release_row(None))
    return StateSummary(
        state=iso3, name=standing.name, as_of=as_of,
        remaining=RemainingDetail.model_validate(left),
        released=Released(
            total=ReleaseTotal(**total, items_destroyed=ItemsDestroyed(**items_total),
                               added_m2=sum(y["added_m2"] for y in by_year),
                               added_count=sum(y["added_count"] for y in by_year)),
            last_year=ReleasedArea(**window),
            by_year=[ReleaseYear.model_validate(y) for y in by_year]),
        article5=progress(standing, left["total"]["area_m2"], window["released_m2"], as_of),
        milestones=_milestones(session, iso3, as_of, releases),
        pending=submissions.backlog(session, [iso3], as_of).get(iso3, []),
    )


# --- the Committee's overview --------------------------------------------------------------------
def overview(session: Session, as_of: date, states: list[str] | None = None) -> Overview:
    """One row per State: what remains, what was released in the last year, and the deadline outlook."""
    standings = article5.standings(session, as_of, states)
    left = remaining(session, as_of, list(standings))
    window = released_in_window(session, as_of, list(standings))
    pending = submissions.backlog(session, list(standings), as_of)
    rows = []
    for iso3, standing in standings.items():
        remains = left.get(iso3) or {"sha": _area(), "cha": _area(), "total": _area()}
        released = window.get(iso3, _release_row(None))
        rows.append(OverviewRow(
            state=iso3, name=standing.name, remaining=Remaining.model_validate(remains),
            released_last_year=ReleasedArea(**released),
            article5=progress(standing, remains["total"]["area_m2"], released["released_m2"], as_of),
            pending=pending.get(iso3, [])))
    return Overview(as_of=as_of, states=rows)


OVERVIEW_COLUMNS = (
    "state", "name", "status", "bound", "bound_reason",
    "sha_count", "sha_km2", "cha_count", "cha_km2", "remaining_count", "remaining_km2",
    "cancelled_last_year_km2", "reduced_last_year_km2", "cleared_last_year_km2", "released_last_year_km2",
    "original_deadline", "deadline", "extensions", "days_remaining", "projected_completion", "on_track",
    "required_rate_km2_per_year",
)


def overview_titles() -> tuple[str, ...]:
    """The overview's column titles in the current language, in OVERVIEW_COLUMNS' order (the CSV's and the
    workbook's header row; `?headers=names` gives OVERVIEW_COLUMNS themselves, for programs)."""
    titles = {
        "state": _("ISO code"), "name": _("State"), "status": _("Article 5 status"),
        "bound": _("Bound by the Convention"), "bound_reason": _("Why"),
        "sha_count": _("SHA areas"), "sha_km2": _("SHA remaining (km²)"), "cha_count": _("CHA areas"),
        "cha_km2": _("CHA remaining (km²)"), "remaining_count": _("Remaining areas"),
        "remaining_km2": _("Remaining area (km²)"),
        "cancelled_last_year_km2": _("Cancelled in the last 365 days (km²)"),
        "reduced_last_year_km2": _("Reduced in the last 365 days (km²)"),
        "cleared_last_year_km2": _("Cleared in the last 365 days (km²)"),
        "released_last_year_km2": _("Released in the last 365 days (km²)"),
        "original_deadline": _("Original deadline"), "deadline": _("Deadline"), "extensions": _("Extensions"),
        "days_remaining": _("Days remaining"), "projected_completion": _("Projected completion"),
        "on_track": _("On track"), "required_rate_km2_per_year": _("Required rate (km² per year)"),
    }
    return tuple(titles[column] for column in OVERVIEW_COLUMNS)


def km2(area_m2: float | None) -> float | None:
    """An area in km2 as the CSVs give it (app.committee.units)."""
    return units.km2(area_m2, CSV_KM2_DECIMALS)


def _csv(header: tuple[str, ...], rows: Iterator[dict[str, Any]], titles: tuple[str, ...] | None) -> str:
    """The rows' `header` columns, under their titles (or under the column names themselves: titles None)."""
    return spreadsheet.csv_text(titles or header, ([row[column] for column in header] for row in rows))


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def overview_rows(summary: Overview) -> Iterator[dict[str, Any]]:
    """The overview's rows as the CSV and XLSX give them (OVERVIEW_COLUMNS; areas in km2, 3 decimals)."""
    for s in summary.states:
        a5, rem, rel = s.article5, s.remaining, s.released_last_year
        yield {
            "state": s.state, "name": s.name, "status": a5.status, "bound": a5.bound,
            "bound_reason": a5.bound_reason,
            "sha_count": rem.sha.count, "sha_km2": km2(rem.sha.area_m2),
            "cha_count": rem.cha.count, "cha_km2": km2(rem.cha.area_m2),
            "remaining_count": rem.total.count, "remaining_km2": km2(rem.total.area_m2),
            "cancelled_last_year_km2": km2(rel.cancelled_m2), "reduced_last_year_km2": km2(rel.reduced_m2),
            "cleared_last_year_km2": km2(rel.cleared_m2), "released_last_year_km2": km2(rel.released_m2),
            "original_deadline": _day(a5.original_deadline), "deadline": _day(a5.deadline),
            "extensions": a5.extensions, "days_remaining": a5.days_remaining,
            "projected_completion": _day(a5.projected_completion), "on_track": a5.on_track,
            "required_rate_km2_per_year": km2(a5.required_rate_m2_per_year),
        }


def overview_csv(summary: Overview, column_names: bool = False) -> str:
    """The overview as spreadsheet-safe CSV (app/committee/spreadsheet.py) with a header row of the columns' titles in
    the current language (`column_names`: OVERVIEW_COLUMNS, for programs); areas in km2 rounded to 3 decimals."""
    return _csv(OVERVIEW_COLUMNS, overview_rows(summary), None if column_names else overview_titles())


# --- the Article 7 report ------------------------------------------------------------------------
def annual_report(session: Session, iso3: str, year: int) -> AnnualReport:
    """The mined areas a State reports under Article 7 for the end of `year`, and that year's land release.

    Each area's location is the centroid of what remained of it at the end of the year. That remainder
    is what remains today plus the land released from it since, pieces that do not overlap (the
    ledger clips every release to what remained), so its planar centroid is the area-weighted mean of
    their centroids: no geometric union or difference per hazard, which at the large size took longer
    than the statement timeout. A hazard that lies on both sides of the antimeridian (stored split at
    180 degrees) is located with its longitudes read in [0, 360), then brought back to (-180, 180].
    """
    name = require_state(session, iso3)
    as_of = date(year, 12, 31)
    spans = sql_spans_antimeridian("h.baseline_geom")
    released = sql_unwrapped("e.released_geom", spans)
    remains = sql_unwrapped("h.remaining_geom", spans)
    areas = session.execute(
        text(
            f"""
            WITH released_since AS (
                SELECT e.hazard_id, sum(ST_Area(e.released_geom)) AS a,
                       sum(ST_Area(e.released_geom) * ST_X(ST_Centroid({released}))) AS ax,
                       sum(ST_Area(e.released_geom) * ST_Y(ST_Centroid(e.released_geom))) AS ay
                FROM land_release_events e JOIN hazardous_areas h ON h.id = e.hazard_id
                WHERE e.state_iso3 = :iso3 AND e.voided_at IS NULL AND e.date > :as_of
                      AND e.released_geom IS NOT NULL AND NOT ST_IsEmpty(e.released_geom)
                GROUP BY e.hazard_id
            ),
            located AS (
                SELECT hz.external_id, hz.name, hz.region, hz.province_code, hz.classification, hz.contamination,
                       hz.remaining_area_m2, ST_Area(h.remaining_geom) + COALESCE(r.a, 0) AS a,
                       CASE WHEN ST_IsEmpty(h.remaining_geom) THEN 0
                            ELSE ST_Area(h.remaining_geom) * ST_X(ST_Centroid({remains})) END
                       + COALESCE(r.ax, 0) AS ax,
                       CASE WHEN ST_IsEmpty(h.remaining_geom) THEN 0
                            ELSE ST_Area(h.remaining_geom) * ST_Y(ST_Centroid(h.remaining_geom)) END
                       + COALESCE(r.ay, 0) AS ay
                FROM ({hazards_sql(True)}) hz
                JOIN hazardous_areas h ON h.id = hz.id
                LEFT JOIN released_since r ON r.hazard_id = hz.id
                WHERE hz.state_iso3 = :iso3 AND hz.status = 'active' AND hz.remaining_area_m2 > 0
            )
            SELECT COALESCE(json_agg(json_build_object(
                'external_id', l.external_id, 'name', l.name, 'region', l.region,
                'province_code', l.province_code,
                'province', (SELECT p.name FROM provinces p WHERE p.code = l.province_code),
                'classification', l.classification, 'contamination', l.contamination,
                'remaining_m2', l.remaining_area_m2,
                'centroid_lon', round(CAST({sql_wrapped_longitude('l.ax / NULLIF(l.a, 0)')} AS numeric), 7),
                'centroid_lat', round(CAST(l.ay / NULLIF(l.a, 0) AS numeric), 7))
                ORDER BY l.region NULLS LAST, l.external_id), '[]'::json)
            FROM located l
            """
        ),
        {"as_of": as_of, "iso3": iso3},
    ).scalar_one()
    from app.committee import charts  # charts reads these summaries: imported here, not at the top

    totals = remaining(session, as_of, [iso3])[iso3]
    row = release_by_year(session, as_of, [iso3], since=date(year - 1, 12, 31)).get(iso3, {}).get(year)
    new = added_by_year(session, as_of, [iso3]).get(iso3, {}).get(year)
    by_region = [RegionRelease(year=r.year, region=r.region, **_release_row(r), items_destroyed=ItemsDestroyed(
        **_items(r))) for r in session.execute(text(_RELEASE_BY_REGION_SQL), {"iso3": iso3, "as_of": as_of})]
    releases = release_by_year(session, as_of, [iso3]).get(iso3, {})
    window = released_in_window(session, as_of, [iso3]).get(iso3, _release_row(None))
    chart = charts.burn_down(session, iso3, as_of)
    return AnnualReport(
        state=iso3, name=name, year=year, as_of=as_of,
        mined_areas=[MinedArea.model_validate(a) for a in areas], totals=Remaining.model_validate(totals),
        released=YearRelease(**_release_row(row), items_destroyed=ItemsDestroyed(**_items(row))),
        added=Added(added_m2=float(new.added_m2) if new else 0.0, added_count=int(new.added_count) if new else 0),
        release_by_region=by_region, milestones=_milestones(session, iso3, as_of, releases),
        article5=progress(article5.standing(session, iso3, as_of), totals["total"]["area_m2"],
                          window["released_m2"], as_of),
        burn_down=chart.data(charts.bounds(session, iso3, as_of)),
        **_year_records(session, iso3, year, as_of),
    )


# Land release per year and region (the hazard's region), with the items destroyed, up to :as_of.
_RELEASE_BY_REGION_SQL = f"""
    SELECT CAST(extract(year FROM e.date) AS integer) AS year, COALESCE(h.region, '{NO_REGION}') AS region,
           {", ".join(f"COALESCE(sum(e.released_area_m2) FILTER (WHERE e.kind = '{kind}'), 0) AS {column}"
                      for kind, column in RELEASE_METHODS.items())},
           {", ".join(f"COALESCE(sum(e.{item}), 0) AS {item}" for item in ITEM_KINDS)}
    FROM land_release_events e JOIN hazardous_areas h ON h.id = e.hazard_id
    WHERE e.state_iso3 = :iso3 AND e.voided_at IS NULL AND h.voided_at IS NULL AND e.date <= :as_of
    GROUP BY 1, 2
    HAVING COALESCE(sum(e.released_area_m2) FILTER (WHERE e.kind IN ({", ".join(f"'{k}'" for k in RELEASE_METHODS)})),
                    0) > 0 OR {" OR ".join(f"COALESCE(sum(e.{item}), 0) > 0" for item in ITEM_KINDS)}
    ORDER BY 1, 2
"""


BENEFICIARY_COLUMNS = tuple(Beneficiaries.model_fields)


def _year_records(session: Session, iso3: str, year: int, as_of: date) -> dict[str, Any]:
    """What the year's valid land-release reports record (their Minimum Data Requirements): the AP mines found
    by type, the beneficiaries, and the land released by use after release and by organisation and methods."""
    params = {"iso3": iso3, "first": date(year, 1, 1), "last": min(date(year, 12, 31), as_of)}
    year_events = ("SELECT * FROM land_release_events e WHERE e.state_iso3 = :iso3 AND e.voided_at IS NULL "
                   "AND e.date BETWEEN :first AND :last")
    mines = session.execute(text(
        f"SELECT d.category, d.model, d.disposal, sum(d.quantity) AS quantity FROM event_devices d "
        f"JOIN ({year_events}) e ON e.id = d.event_id WHERE d.category IN ('AP_MINE', 'IMPROVISED_AP_MINE') "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS LAST, 3 NULLS LAST"), params)
    people = session.execute(text(
        "SELECT " + ", ".join(f"COALESCE(sum({c}), 0) AS {c}" for c in BENEFICIARY_COLUMNS)
        + f" FROM ({year_events}) e"), params).one()
    uses = session.execute(text(
        f"SELECT use AS land_use, sum(e.released_area_m2) AS released_m2 FROM ({year_events}) e, "
        f"unnest(e.land_use) AS use WHERE {sql_releases_land('e.kind')} GROUP BY 1 ORDER BY 1"), params)
    by = session.execute(text(
        f"SELECT e.organisation, COALESCE(e.methods, '{{}}') AS methods, sum(e.released_area_m2) AS released_m2, "
        f"count(*) AS reports FROM ({year_events}) e WHERE {sql_releases_land('e.kind')} "
        "GROUP BY 1, 2 ORDER BY 3 DESC, 1 NULLS LAST"), params)
    return {
        "ap_mines_destroyed": [MinesDestroyed.model_validate(dict(r._mapping)) for r in mines],
        "beneficiaries": Beneficiaries.model_validate(dict(people._mapping)),
        "released_by_land_use": [ReleasedFor.model_validate(dict(r._mapping)) for r in uses],
        "released_by_organisation": [ReleasedBy.model_validate(dict(r._mapping)) for r in by],
    }


# The year's records (the Minimum Data Requirements) as CSV tables, one a format (app.committee.formats)
MINES_COLUMNS = ("state", "year", "category", "model", "disposal", "quantity")
BENEFICIARIES_COLUMNS = ("state", "year", "beneficiaries", "women", "girls", "men", "boys", "total")
LAND_USE_COLUMNS = ("state", "year", "land_use", "released_m2", "released_km2")
ORGANISATIONS_COLUMNS = ("state", "year", "organisation", "methods", "reports", "released_m2", "released_km2")


def record_titles(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The column titles of the year's record tables in the current language, in `columns`' order."""
    titles = {
        "state": _("ISO code"), "year": _("Year"), "category": _("Category"), "model": _("Model"),
        "disposal": _("Disposal"), "quantity": _("Quantity"), "beneficiaries": _("Beneficiaries"),
        "women": _("Women"), "girls": _("Girls"), "men": _("Men"), "boys": _("Boys"), "total": _("Total"),
        "land_use": _("Land use after release"), "released_m2": _("Released area (m²)"),
        "released_km2": _("Released area (km²)"), "organisation": _("Organisation"), "methods": _("Methods"),
        "reports": _("Reports"),
    }
    return tuple(titles[column] for column in columns)


def _record_csv(columns: tuple[str, ...], rows: Iterator[dict[str, Any]], column_names: bool) -> str:
    return _csv(columns, rows, None if column_names else record_titles(columns))


def ap_mines_csv(report: AnnualReport, column_names: bool = False) -> str:
    """The AP mines (and improvised AP mines) the year's reports found, by type, model and disposal (Form G)."""
    return _record_csv(MINES_COLUMNS, ({"state": report.state, "year": report.year, **m.model_dump()}
                                       for m in report.ap_mines_destroyed), column_names)


def beneficiaries_csv(report: AnnualReport, column_names: bool = False) -> str:
    """The year's beneficiaries by sex and age: a row of the direct ones, a row of the indirect ones."""
    people = report.beneficiaries.model_dump()
    def rows() -> Iterator[dict[str, Any]]:
        for reach in ("direct", "indirect"):
            counts = {group: people[f"{reach}_{group}"] for group in ("women", "girls", "men", "boys")}
            yield {"state": report.state, "year": report.year, "beneficiaries": reach, **counts,
                   "total": sum(counts.values())}
    return _record_csv(BENEFICIARIES_COLUMNS, rows(), column_names)


def land_use_csv(report: AnnualReport, column_names: bool = False) -> str:
    """The land the year released, by its use after release (a report naming several uses counts in each)."""
    return _record_csv(LAND_USE_COLUMNS, ({"state": report.state, "year": report.year, "land_use": u.land_use,
                                           "released_m2": round(u.released_m2, 2), "released_km2": km2(u.released_m2)}
                                          for u in report.released_by_land_use), column_names)


def organisations_csv(report: AnnualReport, column_names: bool = False) -> str:
    """The land the year released by organisation and methods (`;`-separated), with the reports behind it."""
    return _record_csv(ORGANISATIONS_COLUMNS, (
        {"state": report.state, "year": report.year, "organisation": b.organisation, "methods": ";".join(b.methods),
         "reports": b.reports, "released_m2": round(b.released_m2, 2), "released_km2": km2(b.released_m2)}
        for b in report.released_by_organisation), column_names)


REPORT_COLUMNS = ("external_id", "name", "region", "province_code", "province", "classification", "contamination",
                  "remaining_m2", "remaining_km2", "centroid_lon", "centroid_lat")


def report_titles() -> tuple[str, ...]:
    """The mined-areas table's column titles in the current language, in REPORT_COLUMNS' order."""
    titles = {
        "external_id": _("Area ID"), "name": _("Name"), "region": _("Region"), "province_code": _("Province code"),
        "province": _("Province"), "classification": _("Classification"), "contamination": _("Type of contamination"),
        "remaining_m2": _("Remaining area (m²)"), "remaining_km2": _("Remaining area (km²)"),
        "centroid_lon": _("Centroid longitude"), "centroid_lat": _("Centroid latitude"),
    }
    return tuple(titles[column] for column in REPORT_COLUMNS)


def annual_report_csv(report: AnnualReport, column_names: bool = False) -> str:
    """The mined areas table as spreadsheet-safe CSV (app/committee/spreadsheet.py) with a header row of the columns'
    titles in the current language (`column_names`: REPORT_COLUMNS, for programs), then a TOTAL row; km2 rounded to 3
    decimals."""
    def rows() -> Iterator[dict[str, Any]]:
        for a in report.mined_areas:
            yield {**a.model_dump(), "contamination": ";".join(a.contamination),
                   "remaining_m2": round(a.remaining_m2, 2), "remaining_km2": km2(a.remaining_m2)}
        total = report.totals.total
        yield {"external_id": _("TOTAL"), "name": _("{count} areas", count=total.count), "region": None,
               "province_code": None, "province": None, "classification": None,
               "contamination": None, "remaining_m2": round(total.area_m2, 2),
               "remaining_km2": km2(total.area_m2), "centroid_lon": None, "centroid_lat": None}
    return _csv(REPORT_COLUMNS, rows(), None if column_names else report_titles())


# --- for people ----------------------------------------------------------------------------------
def summary_table(result: StateSummary) -> str:
    """The summary of one State as a plain-text table (the `landrelease report` command)."""
    summary = result.model_dump(mode="json")
    def k(area_m2: float | None) -> str:
        return "-" if area_m2 is None else f"{area_m2 / M2_PER_KM2:,.3f}"

    rem, a5 = summary["remaining"], summary["article5"]
    lines = [f"{summary['name']} ({summary['state']}), as of {summary['as_of']}", "",
             f"{'Remaining contamination':33} {'areas':>7} {'km2':>10}"]
    for label, key in (("Suspected hazardous areas (SHA)", "sha"), ("Confirmed hazardous areas (CHA)", "cha"),
                       ("Total", "total")):
        lines.append(f"  {label:31} {rem[key]['count']:>7} {k(rem[key]['area_m2']):>10}")
    for title, key in (("By contamination", "by_contamination"), ("By region", "by_region"),
                       ("By province", "by_province")):
        if rem.get(key):
            lines.append(f"  {title}")
            for name, value in rem[key].items():
                label = value.get("name") or name  # a province by its name
                lines.append(f"    {label[:29]:29} {value['count']:>7} {k(value['area_m2']):>10}")
    lines += ["", f"{'Land release (km2)':20} {'cancelled':>10} {'reduced':>10} {'cleared':>10} {'AP mines':>10} "
                  f"{'added':>9}"]
    for y in summary["released"]["by_year"]:
        items = y["items_destroyed"]["ap_mines"] + y["items_destroyed"]["improvised_ap_mines"]
        lines.append(f"  {y['year']:<18} {k(y['cancelled_m2']):>10} {k(y['reduced_m2']):>10} "
                     f"{k(y['cleared_m2']):>10} {items:>10} {k(y['added_m2']):>9}")
    t = summary["released"]["total"]
    lines.append(f"  {'Total':<18} {k(t['cancelled_m2']):>10} {k(t['reduced_m2']):>10} {k(t['cleared_m2']):>10} "
                 f"{t['items_destroyed']['ap_mines'] + t['items_destroyed']['improvised_ap_mines']:>10} "
                 f"{k(t['added_m2']):>9}")
    lines += ["", "Article 5",
              f"  status                    {a5['status']}",
              f"  original deadline         {a5['original_deadline'] or '-'}",
              f"  deadline                  {a5['deadline'] or 'unknown'}"
              + (f" ({a5['extensions']} extension(s))" if a5["extensions"] is not None else ""),
              f"  days remaining            {a5['days_remaining'] if a5['days_remaining'] is not None else '-'}",
              f"  release rate (last year)  {k(a5['release_rate_m2_per_year'])} km2/year",
              f"  projected completion      {a5['projected_completion'] or '-'}",
              f"  on track                  {'-' if a5['on_track'] is None else ('yes' if a5['on_track'] else 'no')}",
              f"  required rate             {k(a5['required_rate_m2_per_year'])} km2/year"]
    if summary["milestones"]:
        lines += ["", f"{'Work-plan milestones':22} {'planned km2':>11} {'released km2':>13}  met"]
        for m in summary["milestones"]:
            met = "-" if m["met"] is None else ("yes" if m["met"] else "no")
            lines.append(f"  {m['year']:<20} {k(m['planned_m2']):>11} {k(m['released_m2']):>13}  {met}")
    return "\n".join(lines)
