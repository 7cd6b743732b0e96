"""The ledger seen at a date: hazards as they stood at the end of a given day, as SQL.

Stored columns hold the state after every valid event. For an earlier date, a hazard's remaining
area is its baseline minus the released areas of the valid events dated on or before that day (the
released pieces never overlap, so the sum is exact), and its remaining geometry is the baseline
minus their union, computed only for hazards that had events after that day. A whole-hazard
reclassification stands for the land it reclassified: what remained just before it, by the same rule.
"""
from __future__ import annotations

from app.geometry import SQL_EMPTY, sql_difference


def hazards_sql(as_of: bool) -> str:
    """SELECT of every hazard with its properties and `remaining_geom`, `baseline_geom` at `:as_of`.

    With `as_of=False` the current state is returned (no parameter needed). The result has the
    columns the hazard properties of `app.layers.HAZARD_PROPERTIES` read, plus `remaining_geom` and
    `baseline_geom`.
    """
    if not as_of:
        return """
            SELECT h.id, h.state_iso3, h.external_id, h.name,
                   CASE WHEN h.reclassified_on IS NOT NULL THEN 'CHA' ELSE h.classification END AS classification,
                   h.contamination, h.region, h.recorded_on, h.date_of_information, h.parent_id, h.baseline_area_m2,
                   h.remaining_area_m2, h.status, h.released_on, h.remaining_geom, h.baseline_geom,
                   h.province_code, h.border_flag
            FROM hazardous_areas h
            WHERE h.voided_at IS NULL
        """
    remaining_then = sql_difference(
        "h.baseline_geom",
        f"COALESCE((SELECT ST_Union(e.released_geom) FROM land_release_events e "
        f"WHERE e.hazard_id = h.id AND e.voided_at IS NULL AND e.date <= :as_of), {SQL_EMPTY})",
    )
    return f"""
        SELECT h.id, h.state_iso3, h.external_id, h.name,
               CASE WHEN h.reclassified_on <= :as_of THEN 'CHA' ELSE h.classification END AS classification,
               h.contamination, h.region, h.recorded_on, h.date_of_information, h.parent_id, h.baseline_area_m2,
               CASE WHEN h.released_on <= :as_of THEN 0
                    ELSE GREATEST(h.baseline_area_m2 - COALESCE(ev.released_m2, 0), 0) END AS remaining_area_m2,
               CASE WHEN h.released_on <= :as_of THEN 'released' ELSE 'active' END AS status,
               CASE WHEN h.released_on <= :as_of THEN h.released_on END AS released_on,
               CASE WHEN COALESCE(ev.later, 0) = 0 THEN h.remaining_geom
                    WHEN COALESCE(ev.earlier, 0) = 0 THEN h.baseline_geom
                    ELSE ({remaining_then}) END AS remaining_geom,
               h.baseline_geom, h.province_code, h.border_flag
        FROM hazardous_areas h
        LEFT JOIN LATERAL (
            SELECT sum(e.released_area_m2) FILTER (WHERE e.date <= :as_of) AS released_m2,
                   count(*) FILTER (WHERE e.date <= :as_of) AS earlier,
                   count(*) FILTER (WHERE e.date > :as_of) AS later
            FROM land_release_events e
            WHERE e.hazard_id = h.id AND e.voided_at IS NULL
        ) ev ON true
        WHERE h.voided_at IS NULL AND h.recorded_on <= :as_of
    """


def whole_reclassification_sql(event: str) -> str:
    """True for a whole-hazard reclassification (one without a polygon of its own), of the event row `event`."""
    return f"({event}.kind = 'reclassification' AND {event}.submitted_geom IS NULL)"


def reclassified_land_sql(event: str) -> str:
    """The land a whole-hazard reclassification reclassified: what remained of its hazard just before it
    (the baseline minus what the valid events before it, in (date, arrival) order, released)."""
    released_before = (
        f"COALESCE((SELECT ST_Union(p.released_geom) FROM land_release_events p "
        f"WHERE p.hazard_id = {event}.hazard_id AND p.voided_at IS NULL AND p.released_geom IS NOT NULL "
        f"AND (p.date, p.arrival) < ({event}.date, {event}.arrival)), {SQL_EMPTY})"
    )
    baseline = f"(SELECT h.baseline_geom FROM hazardous_areas h WHERE h.id = {event}.hazard_id)"
    return sql_difference(baseline, released_before)
