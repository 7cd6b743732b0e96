"""The bulk history import (app/files/history.py, app/ledger/history.py): a State's hazards and their whole
land-release history from files give exactly what recording the same events one by one through the API
gives, with the same refusals, all or nothing; progress is reported while it runs (HTTP job, CLI bar)."""
from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
from shapely.geometry import box
from sqlalchemy import text

from app import database
from app.audit import Actor
from app.cli import main as cli_main
from app.committee import summaries
from app.files import history
from app.ledger import overlaps, void_event
from app.problems import Problem
from app.settings import get_settings
from tests.conftest import reset_database
from tests.ledger_scenarios import UTM48N, X0, Y0, post_event, post_hazard, rect

PRECISION_M2 = 0.01  # the ledger stores areas in whole numbers of ~1 mm2: both paths must agree to that
HAZARDS = 50
RECORDED = "2015-03-01"


def _day(offset: int) -> str:
    return f"2016-{1 + offset // 28:02d}-{1 + offset % 28:02d}"


def _sample() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """50 squares of 100 m (200 m apart) and 203 events over them, in the order a file would list them:
    back-dated events, events that overlap each other, events reaching past the hazard (one along its
    edge, one with a corner on it), events of one day of different kinds, a split, a whole-hazard
    reclassification and a hazard released in full. (x, y, w, h) in metres from the hazard's corner."""
    rng = random.Random(19)
    hazards, events = [], []
    for i in range(HAZARDS):
        hazards.append({"external_id": f"H-{i:03d}", "classification": "SHA" if i % 2 == 0 else "CHA",
                        "recorded_on": RECORDED, "x": (i % 10) * 200.0, "y": (i // 10) * 200.0})
        j = rng.uniform(-3, 3)
        plan = [("clearance", 10, (0, 0, 30 + j, 100)),  # a strip along the west edge, recorded first
                ("reduction", 5, (20 + j, 0, 40, 50)),  # back-dated, overlapping the strip
                ("cancellation", 5, (50, 40 + j, 60, 60)),  # the same day; 10 m past the east edge
                ("clearance", 20, (60 + j, 0, 40 - j, 40 + j))]  # a corner on the east edge
        for n, (kind, day, shape) in enumerate(plan):
            events.append({"hazard": f"H-{i:03d}", "external_id": f"H-{i:03d}-E{n + 1}", "kind": kind,
                           "date": _day(day + i % 7), "shape": shape, "ap_mines": n if kind == "clearance" else 0,
                           "organisation": ("HALO Trust", "MAG", "NPA")[n % 3], "methods": "manual;mdd"})
    events += [
        {"hazard": "H-000", "external_id": "H-000-SPLIT", "kind": "reclassification", "date": _day(15),
         "shape": (30, 60, 20, 30)},
        {"hazard": "H-002", "external_id": "H-002-WHOLE", "kind": "reclassification", "date": _day(40), "shape": None},
        {"hazard": "H-004", "external_id": "H-004-ALL", "kind": "clearance", "date": _day(60),
         "shape": (-10, -10, 120, 120), "work_status": "completed"},
    ]
    return hazards, events


def _polygon(hazard: dict[str, Any], shape: tuple[float, float, float, float] | None) -> Any:
    if shape is None:
        return None
    x, y, w, h = shape
    x0, y0 = X0 + hazard["x"] + x, Y0 + hazard["y"] + y
    return box(x0, y0, x0 + w, y0 + h)


def _write_gpkg(path: Path, hazards: list[dict[str, Any]], events: list[dict[str, Any]],
                placed: dict[str, dict[str, Any]] | None = None) -> Path:
    """The hazards and events as our own export's two layers (an event drawn on `placed[hazard]`, by default
    its own hazard)."""
    path.unlink(missing_ok=True)
    by_id = placed or {h["external_id"]: h for h in hazards}
    hazard_frame = gpd.GeoDataFrame(
        {k: [h[k] for h in hazards] for k in ("external_id", "classification", "recorded_on")},
        geometry=[_polygon(h, (0, 0, 100, 100)) for h in hazards], crs=UTM48N)
    event_frame = gpd.GeoDataFrame(
        {"hazard_external_id": [e["hazard"] for e in events], "external_id": [e["external_id"] for e in events],
         "kind": [e["kind"] for e in events], "date": [e["date"] for e in events],
         "organisation": [e.get("organisation") for e in events], "methods": [e.get("methods") for e in events],
         "work_status": [e.get("work_status") for e in events], "ap_mines": [e.get("ap_mines", 0) for e in events]},
        geometry=[_polygon(by_id[e["hazard"]], e["shape"]) for e in events], crs=UTM48N)
    pyogrio.write_dataframe(hazard_frame, path, layer="hazardous_areas", driver="GPKG")
    pyogrio.write_dataframe(event_frame, path, layer="land_release_events", driver="GPKG", append=True)
    return path


def _run_job(client, files: dict[str, Path], **form: str) -> dict[str, Any]:
    """POST the files as a history import, then poll its job until it ends; the job's last status."""
    opened = {name: (path.name, path.open("rb")) for name, path in files.items()}
    try:
        response = client.post("/api/v1/states/KHM/history-imports", files=opened, data=form)
    finally:
        for _, f in opened.values():
            f.close()
    assert response.status_code == 202, response.text
    url = response.headers["Location"]
    assert response.json()["url"] == url
    for _ in range(1200):
        job = client.get(url).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the job did not end: {job}")


def _ledger() -> dict[str, Any]:
    """Every hazard's remaining area, status and dates, and every event's released and outside areas, by
    external_id (a split-off CHA by its parent's)."""
    with database.session() as session:
        hazards = {
            (f"{r.parent}/CHA" if r.parent else r.external_id): (r.baseline_area_m2, r.remaining_area_m2, r.status,
                                                                  r.released_on, r.reclassified_on, r.recorded_on)
            for r in session.execute(text(
                "SELECT h.external_id, p.external_id AS parent, h.baseline_area_m2, h.remaining_area_m2, h.status, "
                "h.released_on, h.reclassified_on, h.recorded_on FROM hazardous_areas h "
                "LEFT JOIN hazardous_areas p ON p.id = h.parent_id WHERE h.voided_at IS NULL"))}
        events = {r.external_id: (r.released_area_m2, r.outside_area_m2, r.organisation, r.ap_mines)
                  for r in session.execute(text(
                      "SELECT external_id, released_area_m2, outside_area_m2, organisation, ap_mines "
                      "FROM land_release_events"))}
    return {"hazards": hazards, "events": events}


def _assert_same(imported: dict[str, Any], one_by_one: dict[str, Any]) -> None:
    assert imported["hazards"].keys() == one_by_one["hazards"].keys()
    assert imported["events"].keys() == one_by_one["events"].keys()
    for key, (baseline, remaining, *rest) in one_by_one["hazards"].items():
        got = imported["hazards"][key]
        assert abs(got[0] - baseline) <= PRECISION_M2 and abs(got[1] - remaining) <= PRECISION_M2, (key, got)
        assert tuple(got[2:]) == tuple(rest), key
    for key, (released, outside, *rest) in one_by_one["events"].items():
        got = imported["events"][key]
        assert abs(got[0] - released) <= PRECISION_M2 and abs(got[1] - outside) <= PRECISION_M2, (key, got)
        assert tuple(got[2:]) == tuple(rest), key


def test_history_import_equals_recording_each_event_through_the_api(client, client_as, tmp_path) -> None:
    hazards, events = _sample()
    job = _run_job(client, {"events": _write_gpkg(tmp_path / "history.gpkg", hazards, events)})
    assert job["status"] == "done", job
    phases = job["phases"]  # every phase the import went through, in order (however short)
    assert "replaying events" in phases and phases.index("replaying events") < phases.index("writing results"), phases
    result = job["result"]
    assert result["hazards"]["created"] == HAZARDS and result["events"]["rows"] == len(events)
    assert result["events"]["split_hazards"] == 1  # H-000 took the ledger's own per-hazard path
    imported = _ledger()
    assert imported["hazards"]["H-004"][2] == "released" and imported["hazards"]["H-004"][1] == 0
    assert imported["hazards"]["H-002"][4] is not None  # reclassified as a whole
    assert imported["hazards"]["H-000/CHA"][0] > 500  # the split-off CHA
    assert imported["events"]["H-000-E3"][1] > 500  # 10 m past the east edge
    assert 2000 < imported["events"]["H-001-E1"][0] < 2900  # the back-dated reduction took part of the strip first
    with database.session() as session:
        audited = session.execute(text(
            "SELECT count(*) FILTER (WHERE table_name = 'land_release_events' AND action = 'create'), "
            "count(*) FILTER (WHERE action = 'import history'), "
            "count(DISTINCT detail->>'import') FILTER (WHERE detail ? 'import') FROM audit_log")).one()
    assert tuple(audited) == (len(events), 1, 1)  # every event, the import, and one import id for all

    reset_database()
    api = client_as("admin")
    by_id = {h["external_id"]: h for h in hazards}
    ids = {h["external_id"]: post_hazard(api, h["external_id"], rect(h["x"], h["y"], 100, 100),
                                         classification=h["classification"], recorded_on=h["recorded_on"])["id"]
           for h in hazards}
    for e in events:  # in the file's order: back-dated events replay the hazard, as they do in the ledger
        extra = {k: e[k] for k in ("organisation", "work_status") if e.get(k)}
        if e.get("methods"):
            extra["methods"] = e["methods"].split(";")
        x, y = by_id[e["hazard"]]["x"], by_id[e["hazard"]]["y"]
        post_event(api, ids[e["hazard"]], e["kind"], e["date"],
                   rect(x + e["shape"][0], y + e["shape"][1], *e["shape"][2:]) if e["shape"] else None,
                   external_id=e["external_id"], items_destroyed={"ap_mines": e.get("ap_mines", 0)}, **extra)
    _assert_same(imported, _ledger())


def test_a_states_summary_reads_its_hazards_from_the_covering_index(client, tmp_path) -> None:
    """The covering index of the valid hazards (migrations 0004, 0021) holds every column the summary reads of
    a hazard to group what remains, the province included, so that it can be an index-only scan, not a read of
    the hazards' rows (two geometries each; 309 ms against 39 ms for 51,000 hazards of one State)."""
    hazards, events = _sample()
    with database.session() as session:
        history.import_history(session, "KHM", history.HistoryOptions(events=_write_gpkg(
            tmp_path / "history.gpkg", hazards, events)), Actor("test"))
    with database.session() as session:
        for scan in ("indexscan", "indexonlyscan", "bitmapscan"):  # a table scan shows every column read
            session.execute(text(f"SET LOCAL enable_{scan} = off"))
        plan = session.execute(text("EXPLAIN (VERBOSE, FORMAT JSON) " + summaries._remaining_groups_sql(False, True)),
                               {"as_of": date.today(), "states": ["KHM"]}).scalar_one()
        covered = set(session.execute(text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) "
            "WHERE i.indexrelid = 'ix_hazardous_areas_valid_state_recorded_on'::regclass")).scalars())

    def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if node.get("Relation Name") == "hazardous_areas":
            yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    [scan] = scans(plan[0]["Plan"])
    read = set(re.findall(r"\bh\.(\w+)", " ".join([*scan["Output"], scan.get("Filter", "")])))
    assert {"province_code", "region", "contamination", "remaining_area_m2"} & read  # the query was read
    assert read - {"voided_at"} <= covered, read - covered  # voided_at: the index's predicate


def test_one_refused_event_stores_nothing_and_every_problem_is_listed(client, tmp_path) -> None:
    hazards, events = _sample()
    hazards = hazards[:4]
    events = [e for e in events if e["hazard"] in {h["external_id"] for h in hazards}]
    events += [  # inside the strip H-001 cleared on an earlier day; before H-003 was recorded; no such hazard
        {"hazard": "H-001", "external_id": "TWICE", "kind": "clearance", "date": _day(30), "shape": (2, 2, 20, 20)},
        {"hazard": "H-003", "external_id": "EARLY", "kind": "clearance", "date": "2014-01-01", "shape": (0, 0, 9, 9)},
        {"hazard": "H-003", "external_id": "NOWHERE", "kind": "clearance", "date": _day(30), "shape": (0, 0, 9, 9)},
    ]
    frame = [dict(e, hazard="H-999") if e["external_id"] == "NOWHERE" else e for e in events]
    by_id = {h["external_id"]: h for h in hazards} | {"H-999": hazards[3]}
    path = tmp_path / "bad.gpkg"
    _write_gpkg(path, hazards, frame, by_id)
    job = _run_job(client, {"events": path})
    assert job["status"] == "failed" and job["problem"]["status"] == 422, job
    rejected = {r["external_id"]: r["message"] for r in job["problem"]["rejected"]}
    assert set(rejected) == {"EARLY", "NOWHERE"}, rejected  # the checks that need no geometry come first
    assert "before the hazard was recorded" in rejected["EARLY"]
    assert "No hazard with external_id 'H-999'" in rejected["NOWHERE"]
    with database.session() as session:
        stored = session.execute(text("SELECT (SELECT count(*) FROM hazardous_areas), "
                                      "(SELECT count(*) FROM land_release_events), "
                                      "(SELECT count(*) FROM audit_log WHERE table_name <> 'api_keys')")).one()
    assert tuple(stored) == (0, 0, 0)

    # with those two left out, the event inside land already cleared is refused as the ledger refuses it
    _write_gpkg(path, hazards, events[:-2], by_id)
    job = _run_job(client, {"events": path})
    assert job["status"] == "failed" and [r["external_id"] for r in job["problem"]["rejected"]] == ["TWICE"], job
    assert "releases nothing" in job["problem"]["rejected"][0]["message"]
    assert job["problem"]["rejected"][0]["row"] == len(events) - 2  # its row in the file


def _geometries() -> dict[str, tuple[str, str | None]]:
    """Every hazard's remaining geometry and every event's released geometry (their WKB's md5), by external_id."""
    with database.session() as session:
        return {r.external_id: (r.kind, r.md5) for r in session.execute(text(
            "SELECT external_id, 'hazard' AS kind, md5(ST_AsBinary(remaining_geom)) AS md5 FROM hazardous_areas "
            "UNION ALL SELECT external_id, 'event', md5(ST_AsBinary(released_geom)) FROM land_release_events"))}


def test_the_replay_on_more_connections_gives_the_same_history_and_a_refusal_in_any_share_stores_nothing(
        client_as, tmp_path, database_url, monkeypatch) -> None:
    hazards, events = _sample()
    path = _write_gpkg(tmp_path / "history.gpkg", hazards, events)
    monkeypatch.setenv("DATABASE_URL", database_url)
    results = {}
    try:
        for workers in (1, 2, 3):
            reset_database()
            api = client_as("admin")  # the reset drops the keys
            monkeypatch.setenv("LANDRELEASE_HISTORY_WORKERS", str(workers))
            get_settings.cache_clear()
            job = _run_job(api, {"events": path})
            assert job["status"] == "done" and job["result"]["events"]["replay_connections"] == workers, job
            results[workers] = (_ledger(), _geometries(), job["result"]["events"]["steps"])
        assert results[1] == results[2] == results[3]

        # the hazards are shared out by their number of events: H-001 (6) stays on the import's connection,
        # H-003 (5) goes to the other one; an event inside land already cleared refuses the history in either
        monkeypatch.setenv("LANDRELEASE_HISTORY_WORKERS", "2")
        get_settings.cache_clear()
        chosen = hazards[1:8:2]  # H-001, H-003, H-005, H-007: no split, no whole reclassification
        plain = [e for e in events if e["hazard"] in {h["external_id"] for h in chosen}]
        inside = (2, 2, 20, 20)  # in the strip each hazard's first event cleared
        for refused in ("H-001", "H-003"):
            reset_database()
            api = client_as("admin")  # the reset drops the keys
            extra = [{"hazard": "H-001", "external_id": "A1", "kind": "clearance", "date": _day(30),
                      "shape": inside if refused == "H-001" else (32, 55, 6, 40)},
                     {"hazard": "H-001", "external_id": "A2", "kind": "clearance", "date": _day(31),
                      "shape": (42, 55, 6, 40)},
                     {"hazard": "H-003", "external_id": "B1", "kind": "clearance", "date": _day(30),
                      "shape": inside if refused == "H-003" else (32, 55, 6, 40)}]
            job = _run_job(api, {"events": _write_gpkg(tmp_path / "bad.gpkg", chosen, plain + extra)})
            assert job["status"] == "failed", job
            assert [r["external_id"] for r in job["problem"]["rejected"]] == ["A1" if refused == "H-001" else "B1"]
            assert "releases nothing" in job["problem"]["rejected"][0]["message"]
            with database.session() as session:
                stored = session.execute(text("SELECT (SELECT count(*) FROM hazardous_areas), "
                                              "(SELECT count(*) FROM land_release_events), "
                                              "(SELECT count(*) FROM audit_log WHERE table_name <> 'api_keys')")).one()
            assert tuple(stored) == (0, 0, 0), refused
        reset_database()  # and with none refused, both shares are stored
        api = client_as("admin")
        extra[2]["shape"] = (32, 55, 6, 40)
        job = _run_job(api, {"events": _write_gpkg(tmp_path / "bad.gpkg", chosen, plain + extra)})
        assert job["status"] == "done" and job["result"]["events"]["replay_connections"] == 2, job
        assert all(_ledger()["events"][e][0] > 200 for e in ("A1", "A2", "B1"))
    finally:
        get_settings.cache_clear()


def test_events_onto_stored_hazards_from_a_csv_with_the_cli(client, tmp_path, database_url, monkeypatch,
                                                             capsys) -> None:
    hazard = post_hazard(client, "S-1", rect(0, 0, 100, 100), classification="SHA")
    post_event(client, hazard["id"], "clearance", "2016-06-01", rect(0, 0, 50, 100), external_id="API-1")
    to_wgs84 = gpd.GeoSeries([box(X0 + 40, Y0, X0 + 80, Y0 + 100), box(X0 + 70, Y0 + 50, X0 + 100, Y0 + 100)],
                             crs=UTM48N).to_crs(4326)
    csv = tmp_path / "events.csv"
    csv.write_text("HAZ_REF,external_id,kind,date,ap_mines,WKT\n"
                   f"S-1,CSV-1,reduction,2016-03-01,0,\"{to_wgs84[0].wkt}\"\n"  # back-dated before API-1
                   f"S-1,CSV-2,clearance,2016-09-01,4,\"{to_wgs84[1].wkt}\"\n"
                   "S-1,CSV-3,reclassification,2016-10-01,0,\n")
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert cli_main(["import-history", str(csv), "--state", "KHM"]) == 1  # no column for the hazard
        assert "hazard_external_id" in capsys.readouterr().err
        assert cli_main(["import-history", str(csv), "--state", "KHM", "--map-event",
                         "hazard_external_id=HAZ_REF"]) == 0
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert "replaying events" in captured.err and "3/3" in captured.err.replace(" ", "")
    assert json.loads(captured.out)["events"]["rows"] == 3
    imported = _ledger()
    with database.session() as session:  # the ledger's own replay of the hazard gives the same
        hazard_id = session.execute(text("SELECT id FROM hazardous_areas WHERE external_id = 'S-1'")).scalar_one()
        from app.ledger import replay

        replay(session, hazard_id)
        session.flush()
        replayed = {r.external_id: r.released_area_m2 for r in session.execute(text(
            "SELECT external_id, released_area_m2 FROM land_release_events"))}
        remaining = session.execute(text("SELECT remaining_area_m2 FROM hazardous_areas")).scalar_one()
        session.rollback()
    assert imported["hazards"]["S-1"][1] == remaining and imported["hazards"]["S-1"][4].isoformat() == "2016-10-01"
    assert {k: v[0] for k, v in imported["events"].items()} == replayed
    assert 3900 < imported["events"]["API-1"][0] < 4100  # the back-dated reduction took 10 m of its 50 m first
    assert imported["events"]["CSV-2"][3] == 4


def test_a_history_job_is_for_the_states_writers_and_unknown_jobs_say_why(client, client_as, tmp_path) -> None:
    hazards, events = _sample()
    path = _write_gpkg(tmp_path / "history.gpkg", hazards[:1], events[:4])
    with path.open("rb") as f:
        assert client_as("viewer", "KHM").post("/api/v1/states/KHM/history-imports",
                                               files={"events": (path.name, f)}).status_code == 403
    other = client_as("editor", "THA")
    job = _run_job(client, {"events": path})
    assert job["status"] == "done" and job["done"] == job["total"], job
    assert other.get(f"/api/v1/states/KHM/history-imports/{job['id']}").status_code == 403
    missing = client.get("/api/v1/states/KHM/history-imports/0f6b8a52-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "restart" in missing.json()["detail"]


def _advisory_waiters() -> int:
    with database.get_engine().connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar()


def _until(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the writers did not reach the lock"
        time.sleep(0.05)


def test_a_void_and_a_history_import_on_one_state_both_finish(client, tmp_path) -> None:
    """Both take the State's lock and the hazard's row lock: in one order (the State's first), so the later one
    waits for the other instead of the two waiting for each other (a deadlock)."""
    hazard = post_hazard(client, "S-1", rect(0, 0, 100, 100), classification="SHA")
    mistake = post_event(client, hazard["id"], "clearance", "2016-03-01", rect(0, 0, 30, 100))
    strip = gpd.GeoSeries([box(X0 + 50, Y0, X0 + 80, Y0 + 100)], crs=UTM48N).to_crs(4326)[0]
    csv = tmp_path / "events.csv"
    csv.write_text(f"hazard_external_id,external_id,kind,date,WKT\nS-1,CSV-1,clearance,2016-06-01,\"{strip.wkt}\"\n")
    outcome: dict[str, Any] = {}

    def run(name: str, write: Any) -> None:
        try:
            with database.session() as session:
                outcome[name] = write(session)
        except Exception as exc:  # what a deadlock raises, for the assertion below
            outcome[name] = exc

    actor = Actor(name="test")
    history_import = threading.Thread(target=run, args=("import", lambda s: history.import_history(
        s, "KHM", history.HistoryOptions(events=csv), actor)))
    void = threading.Thread(target=run, args=("void", lambda s: void_event(
        s, uuid.UUID(mistake["id"]), "recorded on the wrong hazard", actor)))
    with database.session() as holder:  # the State's lock held while both writers line up behind it
        overlaps.lock_state(holder, "KHM")
        history_import.start()
        _until(lambda: _advisory_waiters() == 1)
        void.start()
        _until(lambda: _advisory_waiters() == 2)
        holder.commit()
    history_import.join(timeout=120)
    void.join(timeout=120)
    assert not isinstance(outcome["import"], Exception), outcome["import"]
    assert not isinstance(outcome["void"], Exception), outcome["void"]
    assert outcome["void"]["voided"] and outcome["import"]["events"]["rows"] == 1
    imported = _ledger()
    assert 2900 < imported["events"]["CSV-1"][0] < 3100  # the strip, released once the mistake is voided
    assert abs(imported["hazards"]["S-1"][1] + imported["events"]["CSV-1"][0] - imported["hazards"]["S-1"][0]) < 0.01


def test_two_voids_of_one_event_at_once_void_it_once(client) -> None:
    """Both read the event before the locks; the one that waited sees the other's void under them: a 409, and
    one void in the ledger and the audit log."""
    hazard = post_hazard(client, "S-1", rect(0, 0, 100, 100), classification="SHA")
    mistake = post_event(client, hazard["id"], "clearance", "2016-03-01", rect(0, 0, 30, 100))
    outcome: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            with database.session() as session:
                outcome[name] = void_event(session, uuid.UUID(mistake["id"]), f"mistake ({name})", Actor(name=name))
        except Problem as problem:
            outcome[name] = problem

    voids = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    with database.session() as holder:  # the State's lock held while both voids line up behind it
        overlaps.lock_state(holder, "KHM")
        for n, void in enumerate(voids, start=1):
            void.start()
            _until(lambda n=n: _advisory_waiters() == n)
        holder.commit()
    for void in voids:
        void.join(timeout=120)
    refused = [o for o in outcome.values() if isinstance(o, Problem)]
    assert len(refused) == 1 and refused[0].status == 409 and "already voided" in refused[0].detail, outcome
    with database.get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE row_id = :id AND action = 'void'"),
                            {"id": mistake["id"]}).scalar() == 1


def _post(client, files: dict[str, Path], **form: str) -> Any:
    opened = {name: (path.name, path.open("rb")) for name, path in files.items()}
    try:
        return client.post("/api/v1/states/KHM/history-imports", files=opened, data=form)
    finally:
        for _, f in opened.values():
            f.close()


def test_events_only_from_a_geopackage_over_http(client, tmp_path) -> None:
    """`events_only=true` reads a GeoPackage's events onto the hazards stored, not its hazards layer (an empty
    `hazards_layer` cannot say it: a form's empty field is no field)."""
    hazards, events = _sample()
    hazards = hazards[:2]
    events = [e for e in events if e["hazard"] in ("H-000", "H-001") and e["kind"] != "reclassification"]
    for h in hazards:
        post_hazard(client, h["external_id"], rect(h["x"], h["y"], 100, 100), classification=h["classification"],
                    recorded_on=h["recorded_on"])
    path = _write_gpkg(tmp_path / "export.gpkg", hazards, events)  # our own export: both layers
    both = _post(client, {"events": path}, events_only="true", hazards_layer="hazardous_areas")
    assert both.status_code == 422 and "events_only" in both.json()["detail"], both.text
    job = _run_job(client, {"events": path}, events_only="true")
    assert job["status"] == "done", job
    assert job["result"]["hazards"]["rows"] == 0 and job["result"]["events"]["rows"] == len(events)
    assert "reading hazards" not in job["phases"] and "replaying events" in job["phases"]


def test_a_file_that_cannot_be_imported_is_refused_before_any_job(client, tmp_path) -> None:
    post_hazard(client, "S-1", rect(0, 0, 100, 100))
    jobs = len(history._jobs)
    text_file = tmp_path / "events.txt"
    text_file.write_text("not a format\n")
    assert _post(client, {"events": text_file}).status_code == 415
    no_hazard_column = tmp_path / "events.csv"
    no_hazard_column.write_text("HAZ_REF,kind,date,WKT\nS-1,clearance,2016-01-01,\n")
    refused = _post(client, {"events": no_hazard_column})
    assert refused.status_code == 422 and "hazard_external_id" in refused.json()["detail"], refused.text
    hazards, events = _sample()
    gpkg = _write_gpkg(tmp_path / "history.gpkg", hazards[:1], events[:4])
    refused = _post(client, {"events": gpkg}, events_layer="events")
    assert refused.status_code == 422 and "land_release_events" in refused.json()["detail"], refused.text
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text("hazard_external_id,kind,date,WKT\nS-1,demolition,2016-01-01,\n")
    refused = _post(client, {"events": bad_row})
    assert refused.status_code == 422 and refused.json()["rejected"][0]["row"] == 1, refused.text
    assert len(history._jobs) == jobs  # no job was started
    with database.session() as session:
        assert session.execute(text("SELECT count(*) FROM land_release_events")).scalar() == 0


def test_the_queue_of_jobs_is_bounded_and_a_waiting_job_is_never_forgotten(client, tmp_path, monkeypatch) -> None:
    post_hazard(client, "S-1", rect(0, 0, 100, 100))
    strip = gpd.GeoSeries([box(X0, Y0, X0 + 30, Y0 + 100)], crs=UTM48N).to_crs(4326)[0]
    csv = tmp_path / "events.csv"
    csv.write_text(f"hazard_external_id,external_id,kind,date,WKT\nS-1,E-1,clearance,2016-06-01,\"{strip.wkt}\"\n")
    monkeypatch.setattr(history, "MAX_QUEUED_JOBS", 1)
    monkeypatch.setattr(history, "KEPT_JOBS", 1)
    history._running.acquire()  # the import running: the next ones wait
    try:
        first, second = _post(client, {"events": csv}), _post(client, {"events": csv})
        assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)
        full = _post(client, {"events": csv})
        assert full.status_code == 503 and int(full.headers["Retry-After"]) > 0, full.text
        assert "send the files again" in full.json()["detail"]
        for waiting in (first, second):  # kept while they wait, though only one finished job is kept
            assert client.get(waiting.headers["Location"]).json()["status"] == "queued"
    finally:
        history._running.release()
    ended = {}
    for response in (first, second):
        _until(lambda r=response: client.get(r.headers["Location"]).json()["finished_at"] is not None)
        ended[response] = client.get(response.headers["Location"]).json()
    assert ended[first]["status"] == "done" and ended[second]["problem"]["status"] == 409  # E-1 exists by then
    third = _post(client, {"events": csv})
    assert third.status_code == 202
    assert client.get(first.headers["Location"]).status_code == 404  # finished, and the oldest beyond KEPT_JOBS
    assert client.get(second.headers["Location"]).status_code == 200
    _until(lambda: client.get(third.headers["Location"]).json()["finished_at"] is not None)
