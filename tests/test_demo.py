"""The demo data set loads through the real ledger with the areas its generator simulated."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from app import database
from app.demo import DEMO_DIR, demo_states, load_demo_if_empty, load_state


def test_demo_state_loads_through_the_ledger(client) -> None:
    with database.session() as session:
        hazards, events = load_state("BIH", session)
        session.commit()
    assert (hazards, events) == (159, 664)
    with database.get_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT sum(baseline_area_m2) FILTER (WHERE parent_id IS NULL) AS baseline, "
            "sum(remaining_area_m2) AS remaining, "
            "sum(remaining_area_m2) FILTER (WHERE parent_id IS NULL) AS remaining_recorded, "
            "count(*) FILTER (WHERE status = 'released') AS closed FROM hazardous_areas WHERE state_iso3 = 'BIH'"
        )).one()
        voided = conn.execute(text("SELECT count(*) FROM land_release_events WHERE voided_at IS NOT NULL")).scalar_one()
    # the generator's own shapely simulation of the accounting rules gave these figures
    assert row.baseline / 1e6 == pytest.approx(63.184, abs=0.002)
    assert row.remaining_recorded / 1e6 == pytest.approx(32.812, abs=0.002)
    # plus the CHAs split off the SHAs by reclassification (0.446 km2), which are not released land
    assert row.remaining / 1e6 == pytest.approx(32.812 + 0.446, abs=0.003)
    assert row.closed == 31
    assert voided == 0
    summary = client.get("/api/v1/states/BIH/summary").json()
    assert summary["remaining"]["total"]["area_m2"] == pytest.approx(row.remaining, rel=1e-9)
    # the database now holds hazards: serve --demo leaves it alone
    assert load_demo_if_empty() is False


def test_interrupted_demo_load_leaves_nothing(client, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.demo as demo

    monkeypatch.setattr(demo, "demo_states", lambda: ["BIH", "XXX"])  # the second State's files do not exist
    with pytest.raises(FileNotFoundError):
        load_demo_if_empty()
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazardous_areas")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM land_release_events")).scalar_one() == 0


def test_the_whole_demo_loads_on_a_fresh_database(client) -> None:
    """What `serve --demo` loads: every State's hazards and events, with land remaining in each."""
    assert demo_states() == ["BIH", "IRQ", "KHM"]
    assert load_demo_if_empty() is True
    with database.get_engine().connect() as conn:
        states = {row.state_iso3: row for row in conn.execute(text(
            "SELECT h.state_iso3, count(*) FILTER (WHERE h.parent_id IS NULL) AS recorded, "
            "sum(h.baseline_area_m2) AS baseline, sum(h.remaining_area_m2) AS remaining, "
            "(SELECT count(*) FROM land_release_events e WHERE e.state_iso3 = h.state_iso3) AS events, "
            "(SELECT sum(e.released_area_m2) FROM land_release_events e WHERE e.state_iso3 = h.state_iso3 "
            " AND e.voided_at IS NULL) AS released "
            "FROM hazardous_areas h WHERE h.voided_at IS NULL GROUP BY h.state_iso3"))}
    assert sorted(states) == demo_states()
    for iso3, row in states.items():
        hazards = json.loads((DEMO_DIR / f"{iso3}_hazards.geojson").read_text())["features"]
        events = json.loads((DEMO_DIR / f"{iso3}_events.json").read_text())
        assert (row.recorded, row.events) == (len(hazards), len(events)), iso3
        assert 0 < row.remaining < row.baseline, iso3
        # every hazard's baseline is what remains of it plus what its events released (a split-off CHA's
        # baseline is what its reclassification took from the SHA)
        assert row.remaining + row.released == pytest.approx(row.baseline, abs=1e-3), iso3
        summary = client.get(f"/api/v1/states/{iso3}/summary").json()
        assert summary["remaining"]["total"]["area_m2"] == pytest.approx(row.remaining, rel=1e-9), iso3
