"""Land is counted once per State: no square metre counts in the remaining area of two of its hazards.

The rule (shared/domain.md, "Land is counted once per State"), and how it is kept:
- remaining(H, D) only shrinks as D grows (events take land away, none gives it back), so two
  hazards X and Y share the most land on the first day both count, D0 = the later of their
  recorded dates. They overlap when remaining(X, D0) and remaining(Y, D0) share at least
  MIN_AREA_M2 (after the sliver rule: edges given in a projected CRS differ by millimetres); if they
  do not on D0 they never do, and no released area can count twice either.
- Land released before a hazard is recorded does not remain then: a new hazard on it (new
  contamination, residual finds after release: Oslo Action Plan Action 26) is no overlap.
- A new hazard (JSON or file import) that overlaps a hazard of its State is a 409 naming each
  hazard it overlaps, the area and the day; nothing is stored (all or nothing for a collection or a
  file). With `overlap=clip` it is recorded clipped to the land no other hazard counts from its
  recorded date on, and the answer says what was clipped. Within one request or file the hazards
  are taken in (recorded_on, external_id) order, each clipped by the stored hazards and by the
  polygons of the new ones before it (as given: one statement, no hazard-by-hazard loop). A hazard
  with nothing left after clipping is a 409 (leave it out).
- A void, or a split (the CHA split off keeps land that later events on its SHA would have
  released), can give land back to a hazard at some date: such a write is a 409 naming both
  hazards when it makes two hazards overlap by more than they did. Every other event only takes
  land away and cannot. Overlaps stored before this rule are listed by `stored_overlaps`, for the
  centre to clean, and are not blamed on the next write.
- The writes that check take a per-State advisory lock, so that two concurrent writes cannot both
  pass the check on the same land.
All of it is SQL over the spatial indexes; new hazards are checked in one statement, whatever
their number.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.geometry import MIN_AREA_M2, SQL_EMPTY, sql_area, sql_difference, sql_grid_intersection, sql_without_slivers
from app.problems import Problem

MAX_LISTED = 50  # overlaps named in a message
MAX_IN_ANSWER = 1_000  # overlaps listed in an answer's `overlaps` (`overlap_count` gives them all)


def lock_state(session: Session, iso3: str) -> None:
    """Serialise the writes of one State that check overlaps (until the transaction ends)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('landrelease overlaps ' || :iso3, 0))"),
                    {"iso3": iso3})


def _remaining_at(hazard: str, day: str) -> str:
    """SQL: the remaining geometry of `hazard` (an alias of hazardous_areas) at the end of `day`."""
    released = (f"(SELECT ST_Union(e.released_geom) FROM land_release_events e WHERE e.hazard_id = {hazard}.id "
                f"AND e.voided_at IS NULL AND e.date <= {day})")
    return (f"CASE WHEN NOT EXISTS (SELECT 1 FROM land_release_events e WHERE e.hazard_id = {hazard}.id "
            f"AND e.voided_at IS NULL AND e.date <= {day} AND e.released_geom IS NOT NULL) "
            f"THEN {hazard}.baseline_geom "
            f"ELSE {sql_difference(f'{hazard}.baseline_geom', f'COALESCE({released}, {SQL_EMPTY})')} END")


def _shared_area(a: str, b: str) -> str:
    return sql_area(sql_without_slivers(sql_grid_intersection(a, b)))


def _counts_on(hazard: str, day: str) -> str:
    return f"{hazard}.voided_at IS NULL AND ({hazard}.released_on IS NULL OR {hazard}.released_on > {day})"


# Pairs of hazards of a State that overlap, as (a, b, day, overlap_m2) with `a` in :ids (every
# hazard when :ids is NULL, each pair then once).
_PAIRS = f"""
    WITH candidates AS (
        SELECT a.id AS a_id, a.external_id AS a_external_id, b.id AS b_id, b.external_id AS b_external_id,
               GREATEST(a.recorded_on, b.recorded_on) AS day,
               {_remaining_at('a', 'GREATEST(a.recorded_on, b.recorded_on)')} AS a_geom,
               {_remaining_at('b', 'GREATEST(a.recorded_on, b.recorded_on)')} AS b_geom
        FROM hazardous_areas a
        JOIN hazardous_areas b ON b.state_iso3 = a.state_iso3 AND b.baseline_geom && a.baseline_geom
                              AND b.id <> a.id
        WHERE a.state_iso3 = :iso3
          AND (CASE WHEN CAST(:ids AS uuid[]) IS NULL THEN a.id < b.id
                    ELSE a.id = ANY(CAST(:ids AS uuid[])) END)
          AND {_counts_on('a', 'GREATEST(a.recorded_on, b.recorded_on)')}
          AND {_counts_on('b', 'GREATEST(a.recorded_on, b.recorded_on)')}
          AND ST_Intersects(a.baseline_geom, b.baseline_geom)
    ), measured AS (
        SELECT a_id, a_external_id, b_id, b_external_id, day, {_shared_area('a_geom', 'b_geom')} AS overlap_m2
        FROM candidates
    )
    SELECT * FROM measured WHERE overlap_m2 >= {MIN_AREA_M2} ORDER BY a_external_id, b_external_id
"""


def _pair(row: Any) -> dict[str, Any]:
    return {"hazard_id": str(row.a_id), "external_id": row.a_external_id, "other_hazard_id": str(row.b_id),
            "other_external_id": row.b_external_id, "from": row.day.isoformat(), "overlap_m2": row.overlap_m2}


def stored_overlaps(session: Session, iso3: str) -> list[dict[str, Any]]:
    """Every pair of hazards of the State that count the same land, from the day both count."""
    return [_pair(row) for row in session.execute(text(_PAIRS), {"iso3": iso3, "ids": None})]


def _overlaps_of(session: Session, iso3: str, hazard_ids: list[uuid.UUID]) -> dict[frozenset[uuid.UUID], Any]:
    rows = session.execute(text(_PAIRS), {"iso3": iso3, "ids": hazard_ids})
    return {frozenset((row.a_id, row.b_id)): row for row in rows}


class WriteCheck:
    """The overlaps of some hazards before a write that may give them land back; `verify` after it."""

    def __init__(self, session: Session, iso3: str, hazard_id: uuid.UUID) -> None:
        lock_state(session, iso3)
        self.session, self.iso3, self.hazard_id = session, iso3, uuid.UUID(str(hazard_id))
        self.before = _overlaps_of(session, iso3, self._hazards())

    def _hazards(self) -> list[uuid.UUID]:
        """The hazard and the CHAs split off it (a replay changes both)."""
        return [self.hazard_id, *self.session.execute(
            text("SELECT id FROM hazardous_areas WHERE parent_id = :id AND voided_at IS NULL"),
            {"id": self.hazard_id}).scalars()]

    def verify(self, what: str) -> None:
        """Refuse the write (409) when it makes two hazards overlap by more than before."""
        grown = [row for key, row in _overlaps_of(self.session, self.iso3, self._hazards()).items()
                 if row.overlap_m2 - (self.before[key].overlap_m2 if key in self.before else 0.0) >= MIN_AREA_M2]
        if grown:
            listed = "; ".join(f"{r.a_external_id} (id {r.a_id}) and {r.b_external_id} (id {r.b_id}) by "
                               f"{r.overlap_m2:,.0f} m2 from {r.day}" for r in grown[:MAX_LISTED])
            raise Problem(409, f"{what} would make land count twice in {self.iso3}: {listed}. The other hazard was "
                               "recorded on land this one no longer counted; correct one of the two first.",
                          title="Hazards would overlap", overlaps=[_pair(r) for r in grown])


def check_new_hazards(session: Session, iso3: str, hazard_ids: list[uuid.UUID], clip: bool) -> dict[uuid.UUID, Any]:
    """Check hazards just inserted (in this transaction, without events) against the State's others.

    Without `clip` any overlap is a 409 (the caller's transaction is to be rolled back). With it the
    new hazards are clipped (see the module docstring); returns, for each clipped hazard, its new
    area, the area clipped and the hazards it overlapped.
    """
    if not hazard_ids:
        return {}
    session.execute(text("CREATE TEMP TABLE new_hazard_ids (id uuid PRIMARY KEY) ON COMMIT DROP"))
    session.execute(text("INSERT INTO new_hazard_ids SELECT unnest(CAST(:ids AS uuid[]))"), {"ids": hazard_ids})
    session.execute(text("ANALYZE new_hazard_ids"))
    # each new hazard against what remains of the stored ones on the day both count, and against the
    # new ones before it in (recorded_on, external_id) order
    session.execute(text(
        f"""
        CREATE TEMP TABLE new_hazard_overlaps ON COMMIT DROP AS
        WITH candidates AS (
            SELECT n.id AS a_id, n.external_id AS a_external_id, o.id AS b_id, o.external_id AS b_external_id,
                   GREATEST(n.recorded_on, o.recorded_on) AS day, n.baseline_geom AS a_geom,
                   CASE WHEN x.id IS NULL THEN {_remaining_at('o', 'GREATEST(n.recorded_on, o.recorded_on)')}
                        ELSE o.baseline_geom END AS b_geom
            FROM new_hazard_ids nid
            JOIN hazardous_areas n ON n.id = nid.id
            JOIN hazardous_areas o ON o.state_iso3 = n.state_iso3 AND o.baseline_geom && n.baseline_geom
                                  AND o.id <> n.id
            LEFT JOIN new_hazard_ids x ON x.id = o.id
            WHERE n.state_iso3 = :iso3
              AND (x.id IS NULL OR (o.recorded_on, o.external_id) < (n.recorded_on, n.external_id))
              AND {_counts_on('o', 'GREATEST(n.recorded_on, o.recorded_on)')}
              AND ST_Intersects(o.baseline_geom, n.baseline_geom)
        )
        SELECT a_id, a_external_id, b_id, b_external_id, day, b_geom, {_shared_area('a_geom', 'b_geom')} AS overlap_m2
        FROM candidates
        """), {"iso3": iso3})
    session.execute(text(f"DELETE FROM new_hazard_overlaps WHERE overlap_m2 < {MIN_AREA_M2}"))
    pairs = session.execute(text("SELECT a_id, a_external_id, b_id, b_external_id, day, overlap_m2 "
                                 "FROM new_hazard_overlaps ORDER BY a_external_id, b_external_id")).all()
    if pairs and not clip:
        listed = "; ".join(f"{r.a_external_id} overlaps {r.b_external_id} by {r.overlap_m2:,.0f} m2 from {r.day}"
                           for r in pairs[:MAX_LISTED])
        raise Problem(409, f"{len(pairs)} overlap(s) with land another hazard of {iso3} already counts: {listed}. "
                           "Nothing was stored. Correct the polygons, or record the new hazards clipped to the land "
                           "not already counted with overlap=clip.",
                      title="Hazards overlap", overlaps=[_new_pair(r) for r in pairs[:MAX_IN_ANSWER]],
                      overlap_count=len(pairs))
    clipped: dict[uuid.UUID, Any] = {}
    if pairs:
        rows = session.execute(text(
            f"""
            WITH cut AS MATERIALIZED (
                SELECT h.id, h.baseline_area_m2 AS before_m2,
                       {sql_difference('h.baseline_geom', 'ST_Union(p.b_geom)')} AS geom
                FROM hazardous_areas h JOIN new_hazard_overlaps p ON p.a_id = h.id
                GROUP BY h.id, h.baseline_area_m2, h.baseline_geom
            ), measured AS MATERIALIZED (SELECT id, before_m2, geom, {sql_area('geom')} AS area FROM cut)
            UPDATE hazardous_areas h SET baseline_geom = m.geom, remaining_geom = m.geom,
                   baseline_area_m2 = m.area, remaining_area_m2 = m.area
            FROM measured m WHERE h.id = m.id
            RETURNING h.id, h.external_id, m.before_m2, m.area
            """)).all()
        empty = [r.external_id for r in rows if r.area < MIN_AREA_M2]
        if empty:
            raise Problem(409, f"Nothing of {', '.join(empty[:MAX_LISTED])} is left outside the land other hazards "
                               f"of {iso3} already count: leave {'it' if len(empty) == 1 else 'them'} out. "
                               "Nothing was stored.",
                          title="Hazards overlap", overlaps=[_new_pair(r) for r in pairs if r.a_external_id in empty])
        by_hazard: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for r in pairs:
            by_hazard.setdefault(r.a_id, []).append(_new_pair(r))
        clipped = {r.id: {"baseline_area_m2": r.area, "clipped_m2": r.before_m2 - r.area, "overlaps": by_hazard[r.id]}
                   for r in rows}
    session.execute(text("DROP TABLE new_hazard_overlaps, new_hazard_ids"))
    return clipped


def _new_pair(row: Any) -> dict[str, Any]:
    """An overlap of a new hazard (whose id is only kept if it is stored) with another hazard."""
    return {"external_id": row.a_external_id, "other_external_id": row.b_external_id,
            "other_hazard_id": str(row.b_id), "from": row.day.isoformat(), "overlap_m2": row.overlap_m2}
