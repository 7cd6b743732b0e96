"""Many hazards recorded in one transaction with binary COPY: the same outcome as `ledger.record_hazards`."""
from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import audit
from app.geometry import (
    MIN_AREA_M2,
    geodesic_areas_m2,
    quantized_m2,
    sql_area,
)
from app.layers import HAZARD_INPUTS
from app.ledger import NewHazard, overlaps, require_state
from app.ledger.book import HAZARD_INPUT_COLUMNS, copy_type
from app.places import boundaries, provinces
from app.problems import Problem

MAX_LISTED_HAZARDS = 1000  # the answer lists the hazards one by one up to this many
BULK_STATEMENT_TIMEOUT_MS = 15 * 60 * 1000


# The hazard's inputs as the layer declares them (app.layers.HAZARD_INPUTS), each a stored column.
_INPUTS = tuple((str(p.column), p.input.sql_type, p.input.nullable, p.type == "array")
                for p in HAZARD_INPUTS if p.input is not None)
_RESUBMITTED = f"""
    CREATE TEMPORARY TABLE hazard_import_resubmitted (
        ord integer NOT NULL,
        {", ".join(f"{column} {sql_type}{'' if null else ' NOT NULL'}" for column, sql_type, null, _ in _INPUTS)},
        wkb bytea NOT NULL
    ) ON COMMIT DROP
"""
_RESUBMITTED_COLUMNS = ("ord", *HAZARD_INPUT_COLUMNS, "wkb")
_RESUBMITTED_TYPES = ("int4", *(copy_type(sql_type) for _, sql_type, _, _ in _INPUTS), "bytea")
# stored content equal: an array's items compared as sorted sets (both are stored sorted, once each); an
# absent (NULL) optional array equals only an absent one
_SAME_INPUTS = " AND ".join(f"(CASE WHEN h.{column} IS NOT NULL THEN ARRAY(SELECT unnest(h.{column}) ORDER BY 1) END)"
                            f" IS NOT DISTINCT FROM s.{column}" if is_array
                            else f"h.{column} IS NOT DISTINCT FROM s.{column}"
                            for column, _, _, is_array in _INPUTS)
_HAZARD_COLUMNS = ("id", "state_iso3", *HAZARD_INPUT_COLUMNS, "province_code", "baseline_geom", "baseline_area_m2",
                   "remaining_geom", "remaining_area_m2")
# binary COPY: a geometry travels as EWKB, which is PostGIS's binary input format
_HAZARD_TYPES = ("uuid", "text", *(copy_type(sql_type) for _, sql_type, _, _ in _INPUTS), "text", "bytea",
                 "float8", "bytea", "float8")


def _spatial_order(geometries: np.ndarray) -> np.ndarray:
    """A Z-order (Morton) key of each geometry's bounding-box centre: inserting in this order keeps the
    GiST index updates of neighbouring rows on the same index pages."""
    if len(geometries) == 0:
        return np.zeros(0, dtype=np.int64)
    xmin, ymin, xmax, ymax = shapely.bounds(geometries).T
    x = np.clip(((xmin + xmax) / 2 + 180) / 360, 0, 1)
    y = np.clip(((ymin + ymax) / 2 + 90) / 180, 0, 1)

    def spread(v: np.ndarray) -> np.ndarray:  # the 16 bits of v on the even bit positions
        v = (np.nan_to_num(v) * 65535).astype(np.uint64)
        for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << np.uint64(shift))) & np.uint64(mask)
        return v

    return (spread(x) | (spread(y) << np.uint64(1))).astype(np.int64)


def _already_recorded(session: Session, iso3: str, hazards: list[NewHazard]) -> dict[str, tuple[uuid.UUID, float]]:
    """The hazards of the file whose external_id the State has already: {external_id: (id, baseline area)}
    when each is identical to what is recorded (a safe re-import); a 409 listing them if any is not."""
    existing = {r.external_id: (r.id, r.baseline_area_m2) for r in session.execute(text(
        "SELECT id, external_id, baseline_area_m2 FROM hazardous_areas "
        "WHERE state_iso3 = :iso3 AND external_id = ANY(:ids)"),
        {"iso3": iso3, "ids": [h.external_id for h in hazards]})}
    if not existing:
        return existing
    session.execute(text("DROP TABLE IF EXISTS hazard_import_resubmitted"))
    session.execute(text(_RESUBMITTED))
    resubmitted = [i for i, h in enumerate(hazards) if h.external_id in existing]
    ewkb = _ewkb([hazards[i].geometry.geometry for i in resubmitted])
    raw = session.connection().connection.driver_connection
    assert raw is not None  # the session's open connection
    with raw.cursor() as cursor, cursor.copy(
            f"COPY hazard_import_resubmitted ({', '.join(_RESUBMITTED_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_RESUBMITTED_TYPES))
            for i, wkb in zip(resubmitted, ewkb, strict=True):
                copy.write_row((i, *hazards[i].stored_values().values(), wkb))
    conflicts = session.execute(text(
        f"""
        SELECT s.external_id, h.id AS existing_id
        FROM hazard_import_resubmitted s
        JOIN hazardous_areas h ON h.state_iso3 = :iso3 AND h.external_id = s.external_id
        WHERE NOT ({_SAME_INPUTS}
                   AND {sql_area('ST_SymDifference(h.baseline_geom, ST_GeomFromEWKB(s.wkb))')} < {MIN_AREA_M2})
        ORDER BY s.ord
        """), {"iso3": iso3}).all()
    session.execute(text("DROP TABLE hazard_import_resubmitted"))
    if conflicts:
        session.rollback()
        listed = [{"external_id": c.external_id, "existing_id": str(c.existing_id)} for c in conflicts]
        raise Problem(409, f"{len(conflicts)} hazard(s) already exist in {iso3} with different content: "
                           + ", ".join(c["external_id"] for c in listed[:20])
                           + ". Use new external_ids, or correct the existing hazards. Nothing was stored.",
                      conflicts=listed)
    return existing


def _ewkb(geometries: Any) -> np.ndarray:
    """EWKB with SRID 4326: what PostGIS reads as a geometry in a binary COPY."""
    return shapely.to_wkb(shapely.set_srid(np.asarray(geometries, dtype=object), 4326), include_srid=True)


LOAD_CHUNK = 5_000  # hazards measured and encoded at a time, while PostgreSQL stores the previous ones


def record_hazards_bulk(session: Session, iso3: str, hazards: list[NewHazard], actor: audit.Actor,
                        source: str | None = None, clip: bool = False, border: str = "refuse",
                        commit: bool = True) -> dict[str, Any]:
    """Record many hazards in one transaction with COPY; the same outcome as `ledger.record_hazards`.

    Identical re-imports are reported unchanged; an external_id that exists with different content
    is a 409 and nothing is stored. A new hazard overlapping land another hazard of the State counts
    (or a hazard of the file before it) is a 409 naming each pair, nothing stored; with `clip` it is
    recorded clipped (app/ledger/overlaps.py: one statement over the spatial index checks the whole file,
    after the COPY, in the same transaction). Commits on success, unless `commit` is False (the history
    import records the hazards' events in the same transaction: app.files.history).

    The geometries are accepted ones (`read_polygonal`/`screen_polygonal`), already on the grid, so
    they are stored as they are. The new hazards are COPYed (binary) straight into `hazardous_areas`
    in spatial order (GiST updates stay on the same pages), then their audit entries into
    `audit_log`. The geodesic areas are GeographicLib's (`geodesic_areas_m2`, the algorithm of
    PostGIS's `ST_Area(geography)`), measured chunk by chunk inside the COPY, so Python measures one
    chunk while PostgreSQL writes the previous one and its indexes on the other core. The table is
    ANALYZEd after the COPY, in the same transaction, so the overlap check is planned over its GiST index.
    """
    require_state(session, iso3)
    # a region names a province (app/places)
    regions = provinces.match_regions(session, iso3, (h.properties.get("region") for h in hazards),
                                      strict=border != "accept")
    overlaps.lock_state(session, iso3)
    # one big statement per step: the per-request statement timeout is for reads, not for a bulk load
    session.execute(text(f"SET LOCAL statement_timeout = {BULK_STATEMENT_TIMEOUT_MS}"))
    existing = _already_recorded(session, iso3, hazards)
    geometries = np.array([h.geometry.geometry for h in hazards], dtype=object)
    fresh = np.array([h.external_id not in existing for h in hazards], dtype=bool)
    order = np.flatnonzero(fresh)[np.argsort(_spatial_order(geometries[fresh]), kind="stable")]
    ids = np.array([uuid.uuid4() for _ in range(len(hazards))], dtype=object)
    areas = np.zeros(len(hazards))
    raw = session.connection().connection.driver_connection
    assert raw is not None  # the session's open connection
    try:
        with raw.cursor() as cursor:
            # the rows go out on a writer thread: PostgreSQL stores one chunk while the next is measured
            with cursor.copy(f"COPY hazardous_areas ({', '.join(_HAZARD_COLUMNS)}) FROM STDIN (FORMAT BINARY)",
                             writer=QueuedLibpqWriter(cursor)) as copy:
                copy.set_types(list(_HAZARD_TYPES))
                for start in range(0, len(order), LOAD_CHUNK):
                    chunk = order[start:start + LOAD_CHUNK]
                    areas[chunk] = quantized_m2(geodesic_areas_m2(geometries[chunk], threads=1))
                    for i, ewkb in zip(chunk.tolist(), _ewkb(geometries[chunk]), strict=True):
                        area = float(areas[i])
                        # the province its region names goes in with the row (the trigger `hazard_province`
                        # then has nothing to find); a hazard without one gets it from the trigger
                        province = regions.get(hazards[i].properties.get("region"))
                        copy.write_row((ids[i], iso3, *hazards[i].stored_values().values(), province, ewkb, area,
                                        ewkb, area))
            del geometries
            detail = {"import": (import_id := str(uuid.uuid4())), "source": source}
            # a repair is kept in the entry for the data-quality report (app/places)
            audit.copy_entries(cursor, actor, iso3, "hazardous_areas", "create", (
                (ids[i], hazards[i].external_id,
                 {**detail, "repair": repair} if (repair := hazards[i].geometry.repair) else detail)
                for i in order.tolist()))
    except psycopg.errors.UniqueViolation as exc:  # another request recorded one of these external_ids meanwhile
        session.rollback()
        raise Problem(409, "another request recorded some of these hazards at the same time; nothing was stored. "
                           "Send the file again: hazards recorded identically are then reported as unchanged.") from exc
    except psycopg.Error as exc:  # raised by the driver itself: hand it to the service's handlers as SQLAlchemy would
        with contextlib.suppress(DBAPIError):
            session.rollback()
        raise DBAPIError.instance("COPY hazardous_areas", None, exc, psycopg.Error) from exc
    if len(order):
        # The planner must know the table holds the rows just COPYed: an autovacuum ANALYZE that ran
        # meanwhile (it cannot see them) leaves reltuples 0 over the new pages, and the overlap check
        # is then planned as a nested loop over every pair of hazards (minutes for 20,000). Analyzed
        # in this transaction they count, and its lock keeps autovacuum from analyzing again before commit.
        session.execute(text("ANALYZE hazardous_areas"))
    try:
        boundaries.check_new_hazards(session, iso3, ids[order].tolist(), border)  # flagged, or a 422 (app/places)
        clipped = overlaps.check_new_hazards(session, iso3, ids[order].tolist(), clip)
    except Problem:
        session.rollback()
        raise
    index_of = {ids[i]: i for i in order.tolist()} if clipped else {}
    for hazard_id, cut in clipped.items():
        areas[index_of[hazard_id]] = cut["baseline_area_m2"]
    if clipped:  # one audit entry per clipped hazard, in one statement
        session.execute(
            text("INSERT INTO audit_log (state_iso3, actor, key_id, table_name, row_id, action, external_id, detail) "
                 "SELECT :iso3, :actor, CAST(:key_id AS uuid), 'hazardous_areas', r.id, 'clip', r.external_id, "
                 "r.detail "
                 "FROM unnest(CAST(:ids AS text[]), CAST(:external_ids AS text[]), CAST(:details AS jsonb[])) "
                 "AS r(id, external_id, detail)"),
            {"iso3": iso3, "actor": actor.name, "key_id": actor.key_id, "ids": [str(k) for k in clipped],
             "external_ids": [hazards[index_of[k]].external_id for k in clipped],
             "details": [json.dumps({"area_m2": c["clipped_m2"], "overlaps": c["overlaps"], "import": import_id})
                         for c in clipped.values()]})
    if commit:
        session.commit()
    listed: list[dict[str, Any]] = []
    if len(hazards) <= MAX_LISTED_HAZARDS:  # else only the totals come back
        for i, h in enumerate(hazards):
            hazard_id, area = (ids[i], areas[i]) if fresh[i] else existing[h.external_id]
            listed.append({"id": str(hazard_id), "external_id": h.external_id, "created": bool(fresh[i]),
                           "baseline_area_m2": float(area)})
    return {"import_id": import_id, "rows": len(hazards), "created": len(order),
            "unchanged": len(hazards) - len(order), "created_area_m2": float(areas[fresh].sum()), "hazards": listed,
            "clipped": [{"id": str(k), "external_id": hazards[index_of[k]].external_id, "area_m2": c["clipped_m2"],
                         "baseline_area_m2": c["baseline_area_m2"], "overlaps": c["overlaps"]}
                        for k, c in list(clipped.items())[:MAX_LISTED_HAZARDS]],
            "clipped_count": len(clipped)}
