"""The bulk history import: hazards with their whole land-release history from files, all or nothing.

What it reads (each file through `app.files.reader`'s worker, as the hazard import reads one):
- a GeoPackage with two layers: the hazards (`hazards_layer`, default `hazardous_areas`) as the hazard
  import takes them (app.files.imports: columns, checks, bulk load), and their events (`events_layer`,
  default `land_release_events`): our own export reads back;
- or two files (e.g. two CSVs with a WKT column): the hazards, and the events;
- or the events alone, onto hazards already stored (a CSV, or a GeoPackage's events layer with `events_only`).
An event names its hazard by the hazard's external_id (`hazard_external_id`, or an alias of
`app.layers.EVENT_HAZARD_REFERENCE`, or a hazard of the file); its other columns are matched to the
declared event inputs (`app.layers.EVENT_INPUTS`: kind, date, organisation, the GICHD Minimum Data
Requirements fields) and the items destroyed (ap_mines, improvised_ap_mines, av_mines, other_eo) by
their names and aliases, or by an `event_mapping`; any CRS, from the file. A reclassification of a whole
hazard has no geometry (an empty WKT cell, a row without geometry).

How it is applied: every row is checked with the JSON API's rules (`EventProperties`, `read_polygonal`,
vectorised where it can be) and any rejected row is a 422 listing them all; then, in ONE transaction,
the hazards are bulk-loaded (`bulk_load.record_hazards_bulk`, without its commit) and the events applied
set-based by the ledger (`app.ledger.history.apply_history`): the outcome of recording them one by one,
with the same refusals; one refusal and nothing is stored. The audit log gets each hazard and each
event as the ledger writes them, and one entry for the import, all with the import's id.

Progress: `import_history` reports (phase, done, total) to a callback: the CLI draws a bar on stderr,
and over HTTP the import is a job (`start_job`) whose status the client polls. The files are read and
checked (`read_history`: format, layers, columns, every row) before the job is answered, so a file
that cannot be imported is its 4xx problem at once; the job records them (`record_history`). Jobs live
in this process (a restart loses them, and with them their result; the import itself is all or
nothing, so an interrupted import stored nothing): at most `MAX_RUNNING_JOBS` run at once and
`MAX_QUEUED_JOBS` wait (one more is a 503 with Retry-After); the last `KEPT_JOBS` finished jobs are
kept, and a job that has not finished is never forgotten.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from pydantic import ValidationError
from pyproj import CRS
from pyproj.exceptions import ProjError
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import audit, database
from app.files.bulk_load import BULK_STATEMENT_TIMEOUT_MS, record_hazards_bulk
from app.files.checks import Rejected, _column_cells, _read_geometry
from app.files.columns import EVENT_COLUMN_ALIASES, REQUIRED_EVENT_FIELDS, resolve_columns
from app.files.imports import CheckedFile, ImportOptions, read_and_check, read_file
from app.geometry import THREE_D_WARNING, PolygonalGeometry, screen_polygonal, to_wgs84_densified
from app.layers import EVENT_HAZARD_REFERENCE, EVENT_INPUTS, EVENT_PROPERTIES
from app.ledger import require_state
from app.ledger.history import HistoryEvent, Progress, apply_history
from app.ledger.input import EventProperties, ItemsDestroyed, new_event
from app.models import ITEM_KINDS
from app.problems import Problem
from app.settings import get_settings

log = logging.getLogger(__name__)
DEFAULT_HAZARDS_LAYER = "hazardous_areas"  # our own export's layers
DEFAULT_EVENTS_LAYER = "land_release_events"
MAX_RUNNING_JOBS = 1  # history imports at once in this process (each takes its State's write lock)
MAX_QUEUED_JOBS = 4  # jobs waiting for their turn, each holding its checked rows in memory; one more is a 503
RETRY_AFTER_S = 60  # what the 503 of a full queue tells the client to wait
KEPT_JOBS = 100  # finished jobs kept for their clients to read; a job that has not finished is never dropped


@dataclass
class HistoryOptions:
    """What to read: the events file, and the hazards (a file of their own, the GeoPackage's other layer, or none)."""

    events: Path
    hazards: Path | None = None  # None: the GeoPackage's hazards layer, or with `events_only` none
    events_only: bool = False  # the events go onto hazards already stored (a GeoPackage's hazards layer is not read)
    hazards_layer: str | None = None
    events_layer: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # the hazards' columns (app.files.columns)
    event_mapping: dict[str, str] = field(default_factory=dict)
    crs: str | None = None  # for files that carry no CRS
    repair: bool = False
    border: str = "refuse"
    source: str | None = None  # the file name(s), for the audit log


_BY_NAME = {p.name: p for p in (*EVENT_INPUTS, EVENT_HAZARD_REFERENCE,
                                *(p for p in EVENT_PROPERTIES if p.name in ITEM_KINDS))}
_INPUT_NAMES = tuple(p.name for p in EVENT_INPUTS)


def _geometries(frame: gpd.GeoDataFrame, crs: CRS, repair: bool) -> tuple[np.ndarray, list[dict[str, Any] | None]]:
    """Each row's accepted geometry (None where it has none or it is refused) and the problem with it."""
    settings = get_settings()
    values = np.asarray(frame.geometry.values, dtype=object)
    present = np.flatnonzero(np.array([g is not None for g in values], dtype=bool))
    accepted = np.full(len(values), None, dtype=object)
    problems: list[dict[str, Any] | None] = [None] * len(values)
    if len(present) == 0:
        return accepted, problems
    wgs84 = to_wgs84_densified(values[present], crs, settings.max_vertices_per_geometry)
    screen = screen_polygonal(wgs84, max_vertices=settings.max_vertices_per_geometry, densify=False)
    for k in np.flatnonzero(screen.accepted):
        accepted[present[k]] = PolygonalGeometry(screen.geometry[k],
                                                 warnings=[THREE_D_WARNING] if screen.three_d[k] else [])
    for k in np.flatnonzero(~screen.accepted):
        accepted[present[k]], problems[present[k]] = _read_geometry(wgs84[k], repair,
                                                                    settings.max_vertices_per_geometry)
    return accepted, problems


def check_events(frame: gpd.GeoDataFrame, crs: CRS, columns: dict[str, str],
                 repair: bool) -> tuple[list[HistoryEvent], list[Rejected]]:
    """Every event row through the JSON API's rules (`EventProperties`, `ItemsDestroyed`, `read_polygonal`)."""
    cells = {target: _column_cells(_BY_NAME[target], frame[column].tolist()) for target, column in columns.items()}
    geometries, geometry_problems = _geometries(frame, crs, repair)
    events: list[HistoryEvent] = []
    rejected: list[Rejected] = []
    reference = EVENT_HAZARD_REFERENCE.name
    for index in range(len(frame)):
        values = {t: v[index] for t, v in cells.items() if v[index] is not None}
        problems: list[dict[str, str]] = []
        hazard = values.pop(reference, None)
        if hazard is None:
            problems.append({"field": reference, "column": columns.get(reference, reference),
                             "message": "the event's hazard (its external_id) is missing"})
        items = {k: values.pop(k) for k in ITEM_KINDS if k in values}
        properties = kinds = None
        try:
            properties = EventProperties.model_validate({k: values[k] for k in _INPUT_NAMES if k in values})
        except ValidationError as exc:
            problems += [{"field": str(e["loc"][0]) if e["loc"] else "row",
                          "column": columns.get(str(e["loc"][0]), "row") if e["loc"] else "row",
                          "message": e["msg"]} for e in exc.errors()]
        try:
            kinds = ItemsDestroyed.model_validate(items)
        except ValidationError as exc:
            problems += [{"field": str(e["loc"][0]), "column": columns.get(str(e["loc"][0]), "row"),
                          "message": e["msg"]} for e in exc.errors()]
        if geometry_problems[index] is not None:
            problems.append(geometry_problems[index])  # type: ignore[arg-type]
        if problems:
            rejected.append(Rejected(index + 1, values.get("external_id"), problems))
            continue
        assert properties is not None and kinds is not None  # no problems: both were read
        events.append(HistoryEvent(index + 1, str(hazard),
                                   new_event(properties, geometries[index], kinds.model_dump())))
    return events, rejected


def read_events(path: Path, options: HistoryOptions, layer: str | None) -> tuple[list[HistoryEvent], dict[str, str]]:
    """The events of a file (a 422 listing every rejected row) and the columns matched."""
    frame, crs, _ = read_file(path, ImportOptions(layer=layer, crs=options.crs))
    if len(frame) == 0:
        raise Problem(422, f"'{path.name}' has no events.")
    columns = resolve_columns([c for c in frame.columns if c != frame.geometry.name], options.event_mapping,
                              EVENT_COLUMN_ALIASES, REQUIRED_EVENT_FIELDS)
    try:
        events, rejected = check_events(frame, crs, columns, options.repair)
    except ProjError as exc:
        raise Problem(422, f"The coordinates of '{path.name}' cannot be transformed from its CRS ({crs.name}) "
                           "to WGS84.") from exc
    if rejected:
        listed = "; ".join(f"row {r.row}" + (f" ({r.external_id})" if r.external_id else "") + ": "
                           + ", ".join(f"{e['column']}: {e['message']}" for e in r.errors) for r in rejected[:10])
        raise Problem(422, f"{len(rejected)} of {len(frame)} events are not valid; nothing was stored. {listed}",
                      title="Invalid rows", rejected=[r.__dict__ for r in rejected[:1000]], mapping=columns)
    return events, columns


def _quiet(phase: str, done: int, total: int) -> None:
    """No progress report."""


@dataclass
class HistoryFiles:
    """A history's files read and every row checked, none rejected: what `record_history` records."""

    hazards: CheckedFile | None  # None: the events go onto hazards already stored
    events: list[HistoryEvent]
    event_columns: dict[str, str]  # field: column of the events' file
    source: str
    border: str  # the hazards beyond the State's boundary: "refuse" or "accept" (flagged)
    seconds: float  # reading and checking took


def _check_options(options: HistoryOptions) -> None:
    """`events_only` contradicts a hazards file or layer: a 422 rather than a guess at which one is meant."""
    if options.events_only and (options.hazards is not None or options.hazards_layer):
        raise Problem(422, "events_only: the events go onto hazards already stored, so send no hazards file and no "
                           "hazards_layer with it (or leave events_only out to import the hazards too).",
                      invalid_params=[{"name": "events_only", "reason": "given with hazards or hazards_layer"}])


def read_history(session: Session, options: HistoryOptions, progress: Progress = _quiet) -> HistoryFiles:
    """Read and check the files (format, layers, columns, every row); a file that cannot be imported is its
    4xx problem (a 422 listing every rejected row). Writes nothing."""
    started = time.perf_counter()
    _check_options(options)
    gpkg = options.events.suffix.lower() == ".gpkg"
    hazards_path = options.hazards or (options.events if gpkg and not options.events_only else None)
    checked = None
    if hazards_path is not None:
        progress("reading hazards", 0, 1)
        layer = options.hazards_layer or (DEFAULT_HAZARDS_LAYER if hazards_path == options.events else None)
        checked = read_and_check(session, hazards_path, ImportOptions(
            mapping=options.mapping, layer=layer, crs=options.crs, repair=options.repair,
            source=options.source, border=options.border))
        progress("reading hazards", 1, 1)
    progress("reading events", 0, 1)
    events_layer = options.events_layer or (DEFAULT_EVENTS_LAYER if gpkg else None)
    events, event_columns = read_events(options.events, options, events_layer)
    progress("reading events", 1, 1)
    source = options.source or ", ".join(p.name for p in dict.fromkeys(
        x for x in (hazards_path, options.events) if x is not None))
    return HistoryFiles(checked, events, event_columns, source, options.border, time.perf_counter() - started)


def record_history(session: Session, iso3: str, files: HistoryFiles, actor: audit.Actor,
                   progress: Progress = _quiet) -> dict[str, Any]:
    """Record the hazards and their events read by `read_history`, all or nothing, and commit."""
    started = time.perf_counter()
    # one big statement per step, as in the hazard bulk load: the per-request statement timeout is for reads
    session.execute(text(f"SET LOCAL statement_timeout = {BULK_STATEMENT_TIMEOUT_MS}"))
    checked, events, source = files.hazards, files.events, files.source
    hazards: dict[str, Any] = {"rows": 0, "created": 0, "unchanged": 0}
    import_id = str(uuid.uuid4())
    if checked is not None:
        progress("recording hazards", 0, len(checked.hazards))
        loaded = record_hazards_bulk(session, iso3, checked.hazards, actor, source=source, border=files.border,
                                     commit=False)
        import_id = loaded["import_id"]
        hazards = {"rows": loaded["rows"], "created": loaded["created"], "unchanged": loaded["unchanged"],
                   "created_area_m2": loaded["created_area_m2"], "mapping": checked.mapping,
                   "warnings": checked.warnings}
        progress("recording hazards", len(checked.hazards), len(checked.hazards))
    try:
        applied = apply_history(session, iso3, events, actor, import_id=import_id, source=source, progress=progress)
    except Problem:
        session.rollback()
        raise
    progress("committing", 0, 1)
    session.commit()
    progress("committing", 1, 1)
    return {"state": iso3, "file": source, "import_id": import_id, "hazards": hazards,
            "events": {"rows": len(events), "mapping": files.event_columns, **applied},
            "seconds": round(files.seconds + time.perf_counter() - started, 1)}


def import_history(session: Session, iso3: str, options: HistoryOptions, actor: audit.Actor,
                   progress: Progress = _quiet) -> dict[str, Any]:
    """Read, check and record hazards and their events, all or nothing (see the module docstring)."""
    require_state(session, iso3)
    return record_history(session, iso3, read_history(session, options, progress), actor, progress)


# --- jobs ------------------------------------------------------------------------------------------
@dataclass
class HistoryJob:
    """A history import running (or run) in this process: what a client polls."""

    id: str
    state: str
    status: str = "queued"  # queued, running, done, failed
    phase: str = "queued"
    phases: list[str] = field(default_factory=list)  # every phase begun so far, in order (where a failure stopped)
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished_at: str | None = None

    def report(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total
        if phase not in self.phases:
            self.phases.append(phase)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "status": self.status, "phase": self.phase,
                "phases": list(self.phases), "done": self.done, "total": self.total, "result": self.result,
                "problem": self.problem, "created_at": self.created_at, "finished_at": self.finished_at}


_jobs: dict[str, HistoryJob] = {}
_jobs_lock = threading.Lock()
_running = threading.BoundedSemaphore(MAX_RUNNING_JOBS)


def _admit(job: HistoryJob) -> None:
    """Keep the job, unless as many as the queue holds are not finished (a 503); forget the oldest finished
    jobs beyond `KEPT_JOBS`, never one that has not finished."""
    with _jobs_lock:
        unfinished = sum(1 for j in _jobs.values() if j.finished_at is None)
        if unfinished >= MAX_RUNNING_JOBS + MAX_QUEUED_JOBS:
            raise Problem(503, f"{unfinished} history imports are running or waiting in this service, as many as it "
                               "takes: send the files again when one has finished.",
                          title="Service Unavailable", headers={"Retry-After": str(RETRY_AFTER_S)})
        _jobs[job.id] = job
        finished = [k for k, j in _jobs.items() if j.finished_at is not None]
        for old in finished[:max(len(finished) - KEPT_JOBS, 0)]:
            del _jobs[old]


def start_job(iso3: str, options: HistoryOptions, actor: audit.Actor) -> HistoryJob:
    """Read and check the files now (a file that cannot be imported is its problem, raised here, and no job),
    then record them on a thread of its own with a session of its own; the files may be removed on return."""
    job = HistoryJob(id=str(uuid.uuid4()), state=iso3, phase="reading files")
    _admit(job)  # its place in the queue is taken while the files are read
    try:
        with database.session() as session:
            require_state(session, iso3)
            session.rollback()  # no transaction (nor connection) held while the files are read
            files = read_history(session, options)
    except BaseException:
        with _jobs_lock:
            del _jobs[job.id]
        raise
    job.phase = "queued"

    def run() -> None:
        try:
            with _running:
                job.status = "running"
                with database.session() as session:
                    job.result = record_history(session, iso3, files, actor, progress=job.report)
                job.status, job.phase = "done", "done"
        except Problem as exc:
            job.status, job.problem = "failed", {"status": exc.status, "title": exc.title, "detail": exc.detail,
                                                 **exc.extra}
        except Exception:  # the job's own record says it failed; the service goes on
            log.exception("history import %s failed", job.id)
            job.status, job.problem = "failed", {"status": 500, "title": "Internal Server Error",
                                                 "detail": "The import failed; nothing was stored."}
        finally:
            job.finished_at = datetime.now(UTC).isoformat()

    threading.Thread(target=run, name=f"history-import-{job.id}", daemon=True).start()
    return job


def find_job(iso3: str, job_id: str) -> HistoryJob:
    """The job of this State with this id; a 404 when this process has none (a restart forgets its jobs)."""
    job = _jobs.get(job_id)
    if job is None or job.state != iso3:
        raise Problem(404, f"No history import {job_id} of {iso3} in this service: jobs are kept in memory, and a "
                           "restart forgets them (an interrupted import stored nothing: send it again).")
    return job


__all__ = ["HistoryFiles", "HistoryJob", "HistoryOptions", "check_events", "find_job", "import_history", "read_history",
           "record_history", "start_job"]
