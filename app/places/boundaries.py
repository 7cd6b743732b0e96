"""Where a polygon lies against its State's boundary: the check of every write, and the hints.

Rules:
- A hazard or event lies in its State when every point of its polygon is within TOLERANCE_M of the
  State's boundary (Natural Earth 1:10m as QGIS ships it, already generalised: along Cambodia's
  border it has a vertex every 5-6 km, so its line departs from the true border by up to a kilometre
  or two; geodata/boundaries/README.md). Points are taken every TOLERANCE_M along the edges of the
  part outside the State, so a long edge cannot cut across a corner of a neighbour unseen.
- A hazard beyond the tolerance is a 422 naming where it falls ("lies in THA, 12.3 km beyond KHM's
  boundary"; "at sea" when no country holds it), saying so when its longitude and latitude swapped,
  or its coordinates read in the next UTM zone, would put it inside the State. With `border=accept`
  (a border minefield on a disputed or undemarcated border, e.g. Cambodia-Thailand) it is recorded
  with `border_flag` set, which the layers and the data-quality report show.
- An event may cover land of its own hazard wherever that lies: only what it covers outside both its
  hazard's polygon and its State counts against it; an event on a hazard accepted across the border
  (flagged) is not checked (its ground was accepted as it lies; an event that misses its hazard
  releases nothing and is refused by the ledger anyway).
- A State the boundaries do not know is not checked.
The checks run in PostGIS over the subdivided, indexed parts of the countries (`country_parts`), in
the write's own transaction: one statement for all the hazards of a request or a file.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.problems import Problem

TOLERANCE_M = 2_000.0
NEAR_DEG = 0.25  # more than TOLERANCE_M in every direction up to 85 degrees of latitude
BORDER_CHOICES = ("refuse", "accept")


@dataclass(frozen=True)
class Outside:
    """A polygon found beyond its State's boundary, and what would explain it."""

    id: uuid.UUID
    label: str  # the hazard's external_id, or "event <id>"
    lies_in: str | None  # the country holding most of what lies outside; None: no country (at sea)
    beyond_m: float  # how far its farthest point lies from the State
    share_outside: float  # of its area
    swapped_inside: bool  # longitude and latitude swapped, it lies in the State
    utm_zone_inside: str | None  # read in this UTM zone instead, it lies in the State (e.g. "48N")
    utm_zone_given: str | None

    def message(self, iso3: str) -> str:
        where = f"lies in {self.lies_in}" if self.lies_in else "lies outside any country (at sea?)"
        if self.lies_in and self.share_outside < 0.5:
            where = f"crosses into {self.lies_in} ({self.share_outside:.0%} of its area)"
        text_ = f"{self.label} {where}, {self.beyond_m / 1000:.1f} km beyond {iso3}'s boundary"
        if self.swapped_inside:
            text_ += f"; with longitude and latitude swapped it would lie in {iso3}: check the coordinates' order"
        if self.utm_zone_inside:
            text_ += (f"; read in UTM zone {self.utm_zone_inside} instead of {self.utm_zone_given} it would lie in "
                      f"{iso3}: check the CRS")
        return text_

    def as_dict(self, iso3: str) -> dict[str, Any]:
        return {"id": str(self.id), "label": self.label, "lies_in": self.lies_in, "beyond_m": round(self.beyond_m, 1),
                "share_outside": round(self.share_outside, 4), "swapped_inside": self.swapped_inside,
                "utm_zone_inside": self.utm_zone_inside, "message": self.message(iso3)}


def sql_plainly_inside(iso3: str, g: str) -> str:
    """SQL true when the polygon `g` (SQL, not NULL) needs no more of the check against the State `iso3` (SQL):
    it is empty, the boundaries do not know the State (asked of `countries` by its key; every country has
    its parts), or one of the State's parts covers it. The first test of `sql_outside`, and what a write
    that measures its polygon in its own statement asks there (`app.ledger.book.record_event`)."""
    return (f"(ST_IsEmpty({g}) OR NOT EXISTS (SELECT 1 FROM countries k WHERE k.iso3 = {iso3}) "
            f"OR EXISTS (SELECT 1 FROM country_parts p WHERE p.iso3 = {iso3} AND p.geom && {g} "
            f"AND ST_Covers(p.geom, {g})))")


def sql_outside(source: str) -> str:
    """SELECT of the rows of `source` (id, label, iso3, g: the polygon to check, may be empty) that lie
    beyond TOLERANCE_M of their State, with where they fall and the hints (the columns of `Outside`).

    Only the State's parts within NEAR_DEG of a polygon are read for it (`near`); a polygon with none
    near lies wholly beyond the tolerance, and how far is its distance to the State's boundary. A polygon
    `sql_plainly_inside` vouches for is not looked at further."""
    return f"""
        WITH s AS MATERIALIZED ({source}),
        doubt AS MATERIALIZED (
            SELECT s.*, (SELECT ST_Union(p.geom) FROM country_parts p
                         WHERE p.iso3 = s.iso3 AND p.geom && ST_Expand(s.g, {NEAR_DEG})) AS near
            FROM s
            WHERE NOT {sql_plainly_inside('s.iso3', 's.g')}),
        outside AS MATERIALIZED (
            SELECT d.*, CASE WHEN d.near IS NULL THEN d.g ELSE ST_Difference(d.g, d.near) END AS o FROM doubt d),
        beyond AS MATERIALIZED (
            -- a point every TOLERANCE_M along the edges of what lies outside the State's parts near it
            SELECT o.* FROM outside o
            WHERE NOT ST_IsEmpty(o.o) AND (o.near IS NULL OR EXISTS (
                SELECT 1 FROM ST_DumpPoints(ST_Segmentize(o.o::geography, {TOLERANCE_M})::geometry) v
                WHERE NOT ST_DWithin(v.geom::geography, o.near::geography, {TOLERANCE_M})))),
        far AS MATERIALIZED (
            SELECT b.*, CASE
                WHEN b.near IS NULL THEN (SELECT ST_Distance(b.g::geography, c.geom::geography)
                                          FROM countries c WHERE c.iso3 = b.iso3)
                ELSE (SELECT max(ST_Distance(v.geom::geography, b.near::geography))
                      FROM ST_DumpPoints(ST_Segmentize(b.o::geography, {TOLERANCE_M})::geometry) v) END AS beyond_m
            FROM beyond b),
        found AS MATERIALIZED (
            SELECT f.*, floor((ST_X(ST_Centroid(f.g)) + 180) / 6)::int + 1 AS zone,
                   CASE WHEN ST_Y(ST_Centroid(f.g)) >= 0 THEN 32600 ELSE 32700 END AS utm,
                   ST_PointOnSurface(f.g) AS inner_point
            FROM far f)
        SELECT f.id, f.label, f.beyond_m,
               ST_Area(f.o::geography) / NULLIF(ST_Area(f.g::geography), 0) AS share_outside,
               (SELECT c.iso3 FROM country_parts c WHERE c.geom && f.o AND ST_Intersects(c.geom, f.o)
                GROUP BY c.iso3 ORDER BY sum(ST_Area(ST_Intersection(c.geom, f.o))) DESC LIMIT 1) AS lies_in,
               EXISTS (SELECT 1 FROM country_parts p WHERE p.iso3 = f.iso3
                       AND ST_Intersects(p.geom, ST_PointOnSurface(ST_FlipCoordinates(f.g)))) AS swapped_inside,
               (SELECT z.zone || CASE WHEN f.utm = 32600 THEN 'N' ELSE 'S' END
                FROM (VALUES (f.zone - 1), (f.zone + 1)) z(zone)
                WHERE z.zone BETWEEN 1 AND 60 AND f.zone BETWEEN 1 AND 60 AND EXISTS (
                    SELECT 1 FROM country_parts p WHERE p.iso3 = f.iso3 AND ST_Intersects(p.geom, ST_Transform(
                        ST_SetSRID(ST_Transform(f.inner_point, f.utm + f.zone), f.utm + z.zone), 4326)))
                LIMIT 1) AS utm_zone_inside,
               f.zone || CASE WHEN f.utm = 32600 THEN 'N' ELSE 'S' END AS utm_zone_given
        FROM found f
        ORDER BY f.label
    """


def find_outside(session: Session, source: str, params: dict[str, Any]) -> list[Outside]:
    rows = session.execute(text(sql_outside(source)), params).all()
    return [Outside(id=r.id, label=r.label, lies_in=r.lies_in, beyond_m=float(r.beyond_m),
                    share_outside=float(r.share_outside or 0.0), swapped_inside=bool(r.swapped_inside),
                    utm_zone_inside=r.utm_zone_inside, utm_zone_given=r.utm_zone_given) for r in rows]


_NEW_HAZARDS = ("SELECT h.id, h.external_id AS label, h.state_iso3 AS iso3, h.baseline_geom AS g "
                "FROM hazardous_areas h WHERE h.id = ANY(:ids)")


def check_new_hazards(session: Session, iso3: str, ids: list[uuid.UUID], border: str = "refuse") -> set[uuid.UUID]:
    """The just-inserted hazards `ids` against their State's boundary: a 422 naming each one beyond it
    (nothing is stored), or with `border="accept"` they are flagged; the ids flagged."""
    if not ids:
        return set()
    outside = find_outside(session, _NEW_HAZARDS, {"ids": ids})
    if not outside:
        return set()
    if border != "accept":
        session.rollback()
        shown = "; ".join(o.message(iso3) for o in outside[:10])
        raise Problem(422, f"{len(outside)} hazard(s) lie outside {iso3}; nothing was stored. {shown}. A border "
                           "minefield on a disputed or undemarcated border can be recorded with border=accept: it "
                           "is then flagged (border_flag).", title="Outside the State",
                      outside=[o.as_dict(iso3) for o in outside])
    flagged = [o.id for o in outside]
    session.execute(text("UPDATE hazardous_areas SET border_flag = true WHERE id = ANY(:ids)"), {"ids": flagged})
    return set(flagged)


def sql_events_outside(events: str, where: str = "true") -> str:
    """SQL, as `find_outside` reads it: for the events of `events` (a FROM item naming land_release_events `e`)
    that `where` keeps, the part of each polygon outside its hazard's (what it covers of the hazard is allowed
    wherever it lies; nothing for a hazard accepted across the border)."""
    return ("SELECT e.id, 'The event' AS label, e.state_iso3 AS iso3, "
            f"ST_Difference(e.submitted_geom, h.baseline_geom) AS g FROM {events} "
            f"JOIN hazardous_areas h ON h.id = e.hazard_id WHERE ({where}) AND e.submitted_geom IS NOT NULL "
            "AND NOT h.border_flag")


def check_new_event(session: Session, event_id: uuid.UUID) -> None:
    """The just-inserted event against its State's boundary: a 422 naming where it falls."""
    outside = find_outside(session, sql_events_outside("land_release_events e", "e.id = :id"), {"id": event_id})
    if outside:
        iso3 = session.execute(text("SELECT state_iso3 FROM land_release_events WHERE id = :id"),
                               {"id": event_id}).scalar_one()
        session.rollback()
        raise Problem(422, outside[0].message(iso3) + " (outside its hazard too); nothing was stored.",
                      title="Outside the State", outside=[outside[0].as_dict(iso3)])
