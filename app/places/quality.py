"""The data-quality report of what a State has stored: each row a hazard or event to look at, and why.

Row kinds (`KINDS`), each with a link to the hazard (`/api/v1/hazards/{id}`) or the event (its OGC item):
- `outside_state`: a hazard beyond its State's boundary (app.places.boundaries, stored before the
  check or flagged), with where it lies and how far; `border_flag`: a hazard accepted across the
  border on request (a border minefield);
- `swapped_coordinates` / `utm_zone`: an outside hazard that would lie in the State with longitude
  and latitude swapped, or read in the next UTM zone;
- `overlap` / `duplicate`: two hazards counting the same land (app.ledger.overlaps), with the overlap's share
  of the smaller one (`ratio`); from DUPLICATE_RATIO on, a duplicate (the same area surveyed twice);
- `event_outside_hazard`: a valid event whose polygon lies mostly (more than EVENT_OUTSIDE_RATIO) outside
  its hazard;
- `implausible_area`: a hazard smaller than MIN_PLAUSIBLE_M2 or larger than MAX_PLAUSIBLE_M2;
- `long_edge`: consecutive vertices more than MAX_EDGE_M apart, in the polygon as drawn (the GICHD's
  check: a polygon digitised from a few far-apart points, or a vertex typed wrong);
- `repaired`: a hazard whose geometry was repaired (repair=true) when it was recorded (the audit log).
Every check runs in PostGIS over the State's stored rows (voided ones left out).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.ledger import overlaps
from app.places.boundaries import TOLERANCE_M, find_outside

KINDS = ("outside_state", "border_flag", "swapped_coordinates", "utm_zone", "duplicate", "overlap",
         "event_outside_hazard", "implausible_area", "long_edge", "repaired")
DUPLICATE_RATIO = 0.9
EVENT_OUTSIDE_RATIO = 0.5
MIN_PLAUSIBLE_M2 = 25.0  # 5 m x 5 m
MAX_PLAUSIBLE_M2 = 100_000_000.0  # 100 km2 in one hazard
MAX_EDGE_M = 5_000.0
# the ledger stores every edge cut into 100 m segments (app.geometry): the edges as drawn come back by
# dropping the vertices within this (about 1 m) of a straight line between their neighbours
AS_DRAWN_DEG = 1e-5


class QualityRow(BaseModel):
    kind: str = Field(description="One of " + ", ".join(KINDS))
    hazard_id: str
    event_id: str | None = None
    external_id: str = Field(description="The hazard's")
    message: str
    value: float | None = Field(None, description="beyond_m, ratio, area_m2 or edge length in metres, by kind")
    link: str = Field(description="The hazard (or the event) to look at")
    lies_in: str | None = None
    other_hazard_id: str | None = None
    other_external_id: str | None = None
    other_link: str | None = None
    repair: dict[str, Any] | None = None


class QualityReport(BaseModel):
    state: str
    tolerance_m: float = Field(description="How far beyond the State's boundary a polygon may reach unflagged")
    counts: dict[str, int]
    rows: list[QualityRow]


def _hazard_row(kind: str, hazard_id: Any, external_id: str, message: str, value: float | None = None,
                **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "hazard_id": str(hazard_id), "event_id": None, "external_id": external_id,
            "message": message, "value": value, "link": f"/api/v1/hazards/{hazard_id}", **extra}


def _outside(session: Session, iso3: str) -> list[dict[str, Any]]:
    source = ("SELECT h.id, h.external_id AS label, h.state_iso3 AS iso3, h.baseline_geom AS g "
              "FROM hazardous_areas h WHERE h.state_iso3 = :iso3 AND h.voided_at IS NULL")
    flagged = set(session.execute(text("SELECT id FROM hazardous_areas WHERE state_iso3 = :iso3 "
                                       "AND voided_at IS NULL AND border_flag"), {"iso3": iso3}).scalars())
    rows = []
    for o in find_outside(session, source, {"iso3": iso3}):
        kind = "border_flag" if o.id in flagged else "outside_state"
        rows.append(_hazard_row(kind, o.id, o.label, o.message(iso3), round(o.beyond_m, 1), lies_in=o.lies_in))
        if o.swapped_inside:
            rows.append(_hazard_row("swapped_coordinates", o.id, o.label,
                                    f"{o.label}: with longitude and latitude swapped it would lie in {iso3}"))
        if o.utm_zone_inside:
            rows.append(_hazard_row("utm_zone", o.id, o.label,
                                    f"{o.label}: read in UTM zone {o.utm_zone_inside} instead of {o.utm_zone_given} "
                                    f"it would lie in {iso3}"))
    return rows


def _overlaps(session: Session, iso3: str) -> list[dict[str, Any]]:
    pairs = overlaps.stored_overlaps(session, iso3)
    if not pairs:
        return []
    ids = list({p[k] for p in pairs for k in ("hazard_id", "other_hazard_id")})
    areas = {r.id: r.baseline_area_m2 for r in session.execute(text(
        "SELECT id::text AS id, baseline_area_m2 FROM hazardous_areas WHERE id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": ids})}
    rows = []
    for p in pairs:
        ratio = p["overlap_m2"] / max(min(areas[p["hazard_id"]], areas[p["other_hazard_id"]]), 1e-9)
        kind = "duplicate" if ratio >= DUPLICATE_RATIO else "overlap"
        rows.append(_hazard_row(
            kind, p["hazard_id"], p["external_id"],
            f"{p['external_id']} and {p['other_external_id']} count {p['overlap_m2']:,.0f} m2 twice "
            f"({ratio:.0%} of the smaller)", round(ratio, 4), other_hazard_id=p["other_hazard_id"],
            other_external_id=p["other_external_id"], other_link=f"/api/v1/hazards/{p['other_hazard_id']}"))
    return rows


_EVENTS_OUTSIDE = f"""
    SELECT e.id, e.hazard_id, h.external_id, e.kind, e.date, e.outside_area_m2 / a.area AS ratio
    FROM land_release_events e
    JOIN hazardous_areas h ON h.id = e.hazard_id
    CROSS JOIN LATERAL (SELECT ST_Area(e.submitted_geom::geography) AS area) a
    WHERE e.state_iso3 = :iso3 AND e.voided_at IS NULL AND h.voided_at IS NULL AND e.submitted_geom IS NOT NULL
      AND a.area > 0 AND e.outside_area_m2 > {EVENT_OUTSIDE_RATIO} * a.area
    ORDER BY h.external_id, e.date
"""

_IMPLAUSIBLE = f"""
    SELECT id, external_id, baseline_area_m2 FROM hazardous_areas
    WHERE state_iso3 = :iso3 AND voided_at IS NULL
      AND (baseline_area_m2 < {MIN_PLAUSIBLE_M2} OR baseline_area_m2 > {MAX_PLAUSIBLE_M2})
    ORDER BY external_id
"""

_LONG_EDGES = f"""
    SELECT h.id, h.external_id, max(ST_Length(s.geom::geography)) AS longest
    FROM hazardous_areas h CROSS JOIN LATERAL ST_DumpSegments(ST_Simplify(h.baseline_geom, {AS_DRAWN_DEG})) s
    WHERE h.state_iso3 = :iso3 AND h.voided_at IS NULL AND h.parent_id IS NULL
    GROUP BY h.id, h.external_id
    HAVING max(ST_Length(s.geom::geography)) > {MAX_EDGE_M}
    ORDER BY h.external_id
"""

_REPAIRED = """
    SELECT h.id, h.external_id, a.detail -> 'repair' AS repair
    FROM audit_log a JOIN hazardous_areas h ON h.id::text = a.row_id
    WHERE a.state_iso3 = :iso3 AND a.table_name = 'hazardous_areas' AND a.action = 'create'
      AND a.detail ? 'repair' AND h.voided_at IS NULL
    ORDER BY h.external_id
"""


def quality_report(session: Session, iso3: str) -> QualityReport:
    """The report of `iso3`'s stored data: its rows, and how many of each kind."""
    params = {"iso3": iso3}
    rows = _outside(session, iso3) + _overlaps(session, iso3)
    for r in session.execute(text(_EVENTS_OUTSIDE), params):
        rows.append({"kind": "event_outside_hazard", "hazard_id": str(r.hazard_id), "event_id": str(r.id),
                     "external_id": r.external_id, "value": round(r.ratio, 4),
                     "message": f"The {r.kind} of {r.date} on {r.external_id} lies {r.ratio:.0%} outside its hazard",
                     "link": f"/collections/land_release_events/items/{r.id}"})
    for r in session.execute(text(_IMPLAUSIBLE), params):
        rows.append(_hazard_row("implausible_area", r.id, r.external_id,
                                f"{r.external_id} measures {r.baseline_area_m2:,.0f} m2 (plausible: "
                                f"{MIN_PLAUSIBLE_M2:,.0f} m2 to {MAX_PLAUSIBLE_M2 / 1e6:,.0f} km2)",
                                round(r.baseline_area_m2, 1)))
    for r in session.execute(text(_LONG_EDGES), params):
        rows.append(_hazard_row("long_edge", r.id, r.external_id,
                                f"{r.external_id} has consecutive vertices {r.longest / 1000:,.1f} km apart "
                                f"(more than {MAX_EDGE_M / 1000:.0f} km)", round(r.longest, 1)))
    for r in session.execute(text(_REPAIRED), params):
        rows.append(_hazard_row("repaired", r.id, r.external_id,
                                f"{r.external_id}'s geometry was repaired when it was recorded", None,
                                repair=r.repair))
    counts = {kind: sum(1 for r in rows if r["kind"] == kind) for kind in KINDS}
    return QualityReport(state=iso3, tolerance_m=TOLERANCE_M, counts=counts,
                         rows=[QualityRow.model_validate(r) for r in rows])
