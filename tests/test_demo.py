"""The demo data set loads through the real ledger with the areas its generator simulated."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from app import database
from app.demo import load_demo_if_empty, load_state


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
