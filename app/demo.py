"""The demo data set (geodata/demo): three States' hazards and years of land release, through the ledger;
the registers of organisations of Cambodia and Bosnia and Herzegovina, and a few operators' submissions
awaiting review (and one returned for correction) in Bosnia and Herzegovina, so that the review queue has
work."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import date
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import database, ledger, organisations, submissions
from app.audit import Actor
from app.geometry import read_polygonal
from app.submissions.results import ReleaseReport

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parents[1] / "geodata" / "demo"
DEMO_ACTOR = Actor(name="demo loader")


def demo_states() -> list[str]:
    return sorted(p.name.split("_")[0] for p in DEMO_DIR.glob("*_hazards.geojson"))


def load_demo_if_empty() -> bool:
    """Load the demo set when the ledger holds no hazard yet; True when it was loaded.

    The whole set loads in one transaction, so an interrupted first start leaves nothing behind
    and the next start loads it again.
    """
    loaded = False
    with database.get_engine().connect() as conn, conn.begin():
        if conn.execute(text("SELECT EXISTS (SELECT 1 FROM hazardous_areas)")).scalar_one():
            log.info("the database already holds hazards: demo data not loaded")
        else:
            conn.execute(text("SET LOCAL synchronous_commit TO off"))
            # the ledger commits after each write: inside this transaction those are savepoints
            with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
                for iso3 in demo_states():
                    load_state(iso3, session)
                load_submissions(session)
            loaded = True
    _print_demo_admin_key()
    return loaded


def _print_demo_admin_key() -> None:
    """A demo database without any API key gets an admin key, shown once.

    The secret goes to the terminal (stdout) only, inside a banner, and never through logging: log
    records end up in files and log collectors, where a key must not be.
    """
    from app.access import create_key

    with database.session() as session:
        if session.execute(text("SELECT EXISTS (SELECT 1 FROM api_keys)")).scalar_one():
            return
        _, secret = create_key(session, name="demo admin", role="admin", actor=DEMO_ACTOR)
    log.info("demo: created an admin API key (printed once on the terminal, not logged)")
    print(demo_key_banner(secret), flush=True)


def demo_key_banner(secret: str) -> str:
    rule = "=" * 78
    return (f"\n{rule}\n  DEMO ADMIN API KEY (shown only this once; it is not stored anywhere you can read it back)\n\n"
            f"    {secret}\n\n"
            "  Send it as 'Authorization: Bearer <key>'. More keys: landrelease keys create --help\n"
            f"{rule}\n")


# name, short name (as the demo events spell it), kind
DEMO_ORGANISATIONS = {
    "KHM": [("Cambodian Mine Action Centre", "CMAC", "national_authority"), ("The HALO Trust", "HALO Trust", "ngo"),
            ("Mines Advisory Group", "MAG", "ngo"), ("APOPO", None, "ngo"), ("Norwegian People's Aid", "NPA", "ngo")],
    "BIH": [("Norwegian People's Aid", "NPA", "ngo"), ("BH Mine Action Centre", "BHMAC", "national_authority"),
            ("Armed Forces of BiH", None, "military"), ("Civil Protection FBiH", None, "national_authority"),
            ("DanChurchAid", "DCA", "ngo"), ("Civil Protection RS", None, "national_authority")],
}


def load_organisations(iso3: str, session: Session) -> dict[str, uuid.UUID]:
    """The State's demo register; the ids by short name (or name)."""
    ids = {}
    for name, short_name, kind in DEMO_ORGANISATIONS.get(iso3, []):
        entry = organisations.create(session, iso3, organisations.OrganisationIn.model_validate(
            {"name": name, "short_name": short_name, "kind": kind, "accredited_from": "2010-01-01"}), DEMO_ACTOR)
        ids[short_name or name] = entry.id
    return ids


def load_submissions(session: Session) -> None:
    """Bosnia and Herzegovina's review queue: a new hazard from NPA's survey and a clearance report from
    DCA awaiting review, and the armed forces' cancellation report returned for correction."""
    ids = {row.short_name or row.name: row.id for row in session.execute(
        text("SELECT id, name, short_name FROM organisations WHERE state_iso3 = 'BIH'"))}
    hazard = session.execute(text(
        "SELECT id, ST_AsGeoJSON(ST_MakeEnvelope(ST_XMin(remaining_geom), ST_YMin(remaining_geom), "
        "(ST_XMin(remaining_geom) + ST_XMax(remaining_geom)) / 2, ST_YMax(remaining_geom), 4326), 7)::json AS west, "
        "ST_AsGeoJSON(ST_Translate(ST_Envelope(baseline_geom), 0, "
        "ST_YMax(baseline_geom) - ST_YMin(baseline_geom) + 0.002), 7)::json AS beside "
        "FROM hazardous_areas h WHERE state_iso3 = 'BIH' AND status = 'active' AND remaining_area_m2 > 20000 "
        "AND NOT EXISTS (SELECT 1 FROM hazardous_areas o WHERE o.state_iso3 = 'BIH' AND o.id <> h.id AND "
        "ST_Intersects(o.baseline_geom, ST_Expand(ST_Translate(ST_Envelope(h.baseline_geom), 0, "
        "ST_YMax(h.baseline_geom) - ST_YMin(h.baseline_geom) + 0.002), 0.001))) "
        "ORDER BY external_id LIMIT 1")).one_or_none()
    if hazard is None:
        return
    survey = ledger.NewHazard(external_id="BIH-NTS-NPA-0001", classification="SHA", recorded_on=date(2026, 10, 1),
                              geometry=read_polygonal(hazard.beside), name="Gornji Vakuf north (NPA survey)",
                              region="Central Bosnia", date_of_information=date(2026, 9, 20), priority="high",
                              evidence_kind="indirect", evidence=["witness", "old_records"],
                              blockages=["agriculture", "roads"])
    submissions.hold(session, "BIH", submissions.hazard_report([survey]), Actor(name="NPA field office"),
                     organisation_id=ids["NPA"])
    clearance = ReleaseReport.model_validate({
        "kind": "clearance", "date": "2026-11-01", "geometry": hazard.west,
        "devices": [{"category": "AP_MINE", "model": "PMA-2", "quantity": 2, "disposal": "destroyed_in_situ"},
                    {"category": "AP_MINE", "model": "PROM-1", "quantity": 1, "disposal": "destroyed_in_situ"},
                    {"category": "UXO", "model": "82 mm mortar bomb", "quantity": 1, "disposal": "removed"}],
        "start_date": "2026-08-17", "work_status": "completed", "methods": ["manual", "mechanical"],
        "clearance_depth_cm": 20, "land_use": ["agriculture", "grazing"], "handover_date": "2026-11-15",
        "handover_to": "the municipality", "direct_women": 12, "direct_girls": 9, "direct_men": 14, "direct_boys": 8,
        "indirect_women": 120, "indirect_girls": 85, "indirect_men": 130, "indirect_boys": 90})
    submissions.hold(session, "BIH", submissions.release_report(hazard.id, clearance, read_polygonal(hazard.west)),
                     Actor(name="DCA Bosnia"), organisation_id=ids["DCA"])
    cancellation = ReleaseReport.model_validate({"kind": "cancellation", "date": "2026-10-15",
                                                 "geometry": hazard.west})
    returned = submissions.hold(session, "BIH", submissions.release_report(hazard.id, cancellation,
                                                                           read_polygonal(hazard.west)),
                                Actor(name="Armed Forces of BiH demining battalion"),
                                organisation_id=ids["Armed Forces of BiH"])
    submissions.decide(session, returned, "return", "The polygon is the same as DCA's clearance of 1 November: "
                       "which land did the non-technical survey cancel?", DEMO_ACTOR)
    session.commit()


def load_state(iso3: str, session: Session) -> tuple[int, int]:
    """Record one State's demo hazards and events through the ledger, in `session`."""
    load_organisations(iso3, session)
    features = json.loads((DEMO_DIR / f"{iso3}_hazards.geojson").read_text())["features"]
    hazards = [
        ledger.NewHazard(
            external_id=f["properties"]["external_id"],
            classification=f["properties"]["classification"],
            recorded_on=date.fromisoformat(f["properties"]["recorded_on"]),
            geometry=read_polygonal(f["geometry"]),
            contamination=f["properties"].get("contamination") or ["AP_MINE"],
            name=f["properties"].get("name"),
            region=f["properties"].get("region"),
        )
        for f in features
    ]
    ids = {h["external_id"]: h["id"] for h in ledger.record_hazards(session, iso3, hazards, DEMO_ACTOR)}
    events = json.loads((DEMO_DIR / f"{iso3}_events.json").read_text())
    for event in events:
        ledger.record_event(session, ids[event["hazard_external_id"]], ledger.NewEvent(
            kind=event["kind"],
            date=date.fromisoformat(event["date"]),
            geometry=read_polygonal(event["geometry"]) if event.get("geometry") else None,
            organisation=event.get("organisation"),
            external_id=event.get("external_id"),
            items=event.get("items_destroyed") or {},
        ), DEMO_ACTOR)
    log.info("demo data: %s, %d hazards, %d events", iso3, len(hazards), len(events))
    return len(hazards), len(events)
