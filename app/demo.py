"""The demo data set (geodata/demo): three States' hazards and years of land release, through the ledger."""
from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import database, ledger
from app.audit import Actor
from app.geometry import read_polygonal

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


def load_state(iso3: str, session: Session) -> tuple[int, int]:
    """Record one State's demo hazards and events through the ledger, in `session`."""
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
