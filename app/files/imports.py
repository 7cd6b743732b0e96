"""The import of hazards from GeoPackage, zipped Shapefile, GeoJSON, KML or CSV: reading (by `app.files.reader`
in a worker process), checking (`app.files.checks`), bulk loading (`app.files.bulk_load`).

- The file is read by `app.files.reader` in a worker process of its own, with the GDAL drivers of the
  format its name claims and no others, no network, and limits on memory, CPU, wall-clock time, rows
  (`max_import_features`) and vertices (`max_import_vertices`); see that module for what it refuses
  (meta-formats such as OGR VRT or GDALG, content that is not what the name says, GeoPackage views,
  unsafe zip members, Shapefiles whose .shx and .dbf disagree, several layers without `layer`). A file
  that exceeds a limit ends its worker: the answer is a 413 (or 422) naming the limit. At most
  `import_readers` workers run at once; an import that finds none free within `import_seconds` is a
  503. Messages name the file by its own name only, never a path on the server.
- The CRS comes from the file (.prj, GeoPackage SRS, ...); GeoJSON, KML and CSV without one are WGS84
  longitude/latitude; a file without any CRS can be given one with `crs` (e.g. a Shapefile without
  .prj). A CRS of another celestial body, a local/engineering CRS, or one PROJ cannot transform to
  WGS84 is a 422.
- A row whose geometry the reader cannot decode is a rejected row ("missing or unreadable geometry"),
  never dropped.
- Columns are matched to the hazard fields by name, case-insensitively, through `COLUMN_ALIASES`
  (which includes the 10-character names of Shapefiles and of our own export); a `mapping`
  (`{"external_id": "HAZ_REF", ...}`, or `external_id=HAZ_REF,classification=CLASS`) overrides it.
- Every row is checked with the same rules as the JSON API: the properties with the API's
  `HazardProperties` model, the geometry with `app.geometry.read_polygonal` (after a vectorised
  transformation of the whole file to WGS84 that first cuts every edge into short segments in the
  file's own CRS, where it is straight: `geometry.to_wgs84_densified`). For speed the rules run on
  whole columns first (`geometry.screen_polygonal`, and each distinct property value once); the
  rows that do not plainly pass go through `read_polygonal` and the model one by one, so every
  message is the JSON API's.
  Classification and contamination codes are read case-insensitively; contamination may be a list
  or a string separated by `;`, `,` or `|`.
- All or nothing: one rejected row and nothing is stored; the answer lists every rejected row (its
  1-based number in the file, its external_id, and what is wrong with which column).
- Accepted rows are loaded in one transaction: their geodesic areas are measured on both cores
  (`geometry.geodesic_areas_m2`), then the hazards and their audit entries are COPYed (binary, in
  spatial order for the GiST indexes) straight into their tables. Re-importing
  identical hazards is safe (they are reported as unchanged); an external_id that exists with
  different content is a 409, as in the JSON API.
- Land is counted once per State, as in the JSON API (app/ledger/overlaps.py): after the COPY one
  statement checks the new hazards against the State's and against each other; any overlap is a
  409 listing every pair and nothing is stored, or with `overlap=clip` they are stored clipped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from sqlalchemy.orm import Session

from app import audit
from app.files.bulk_load import record_hazards_bulk
from app.files.checks import check_rows
from app.files.columns import resolve_columns
from app.files.reader import KINDS, ReadRequest
from app.geometry import (
    WGS84,
    CRSNotKnown,
    parse_crs,
)
from app.ledger import NewHazard, require_state
from app.problems import Problem
from app.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)
    layer: str | None = None
    crs: str | None = None  # only for files that carry no CRS
    repair: bool = False
    source: str | None = None  # the file name, for the audit log
    border: str = "refuse"  # a hazard beyond its State's boundary: refused, or with "accept" flagged (app/places)


READER_PROBLEM_FIELDS = ("layers", "views", "limit", "limit_name")  # what a refusal of the reader may carry
WKB_CHUNK = 10_000  # geometries decoded at a time from what the reader wrote
_readers: dict[int, threading.BoundedSemaphore] = {}  # by the number of workers allowed at once
_readers_lock = threading.Lock()


def _reader_slot(allowed: int) -> threading.BoundedSemaphore:
    with _readers_lock:
        return _readers.setdefault(allowed, threading.BoundedSemaphore(allowed))


def _run_reader(request: ReadRequest, timeout: int) -> None:
    """`app.files.reader` in a worker process of its own, which writes the rows into `request.out`; the
    problem that ended it, if any.

    At most `import_readers` workers run at once (each may use `import_memory_mb`); an import waits up to
    `timeout` seconds for its turn, then is a 503.
    """
    slot = _reader_slot(get_settings().import_readers)
    if not slot.acquire(timeout=timeout):
        raise Problem(503, "Other imports are being read at the moment: send the file again in a minute.",
                      title="Service Unavailable", headers={"Retry-After": "60"})
    try:
        _read_in_worker(request, timeout)
    finally:
        slot.release()


def _read_in_worker(request: ReadRequest, timeout: int) -> None:
    out = Path(request.out)
    # a clean environment: none of the service's GDAL options, credentials or proxies reach the worker
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(out),
           "CPL_TMPDIR": str(out), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(str(Path(p).resolve()) for p in sys.path if p)}
    with (out / "answer.json").open("w+b") as answer, (out / "messages.txt").open("wb") as messages:
        worker = subprocess.Popen([sys.executable, "-m", "app.files.reader"], stdin=subprocess.PIPE, stdout=answer,
                                  stderr=messages, cwd=out, env=env, start_new_session=True)
        try:
            assert worker.stdin is not None
            with contextlib.suppress(BrokenPipeError), worker.stdin:
                worker.stdin.write(json.dumps(dataclasses.asdict(request)).encode())
            worker.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Problem(413, f"Reading '{request.name}' took longer than {timeout} s, the limit for an import: "
                               "split the file.", limit_name="import_seconds") from None
        finally:
            if worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        answer.seek(0)
        last = answer.read(1024 * 1024).strip().rsplit(b"\n", 1)[-1]
    if worker.returncode != 0:
        with (out / "messages.txt").open("rb") as f:
            f.seek(max(0, (out / "messages.txt").stat().st_size - 2000))
            log.warning("the file reader of an import ended with %s: %s", _ending(worker.returncode),
                        f.read().decode("utf-8", "replace"))
    if worker.returncode == -signal.SIGXCPU:
        raise Problem(413, f"Reading '{request.name}' took more than {request.cpu_seconds} s of CPU, the limit for "
                           "an import: split the file.", limit_name="import_cpu_seconds")
    if worker.returncode != 0 or not last:
        raise Problem(422, f"Reading '{request.name}' failed: the file is malformed, or it needs more than the "
                           f"{request.memory_mb} MB of memory an import may use (the reader stopped with "
                           f"{_ending(worker.returncode)}).", limit_name="import_memory_mb")
    result: dict[str, Any] = json.loads(last)
    if "problem" in result:  # only what a refusal carries, whatever the worker wrote
        problem = result["problem"]
        status = problem.get("status") if problem.get("status") in (413, 415, 422) else 422
        raise Problem(status, str(problem.get("detail")),
                      **{k: problem[k] for k in READER_PROBLEM_FIELDS if k in problem})
    if "ok" not in result:
        raise Problem(422, f"Reading '{request.name}' failed: the reader gave no answer.")


def _ending(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def _rows_read(out: Path) -> tuple[gpd.GeoDataFrame, str | None, str]:
    """The rows the worker wrote: a GeoDataFrame without CRS, the CRS the file says, the layer."""
    with (out / "attributes.json").open() as f:
        attributes = json.load(f)
    index = np.load(out / "wkb_index.npy", allow_pickle=False).T
    data = (out / "geometry.bin").read_bytes()
    geometries = np.empty(len(index), dtype=object)
    for start in range(0, len(index), WKB_CHUNK):  # a chunk of WKB copies at a time
        wkb = [data[s:s + n] if n >= 0 else None for s, n in index[start:start + WKB_CHUNK].tolist()]
        geometries[start:start + len(wkb)] = shapely.from_wkb(np.array(wkb, dtype=object), on_invalid="ignore")
    del data
    geometry = gpd.GeoSeries(geometries)  # a WKB shapely cannot decode: a row without geometry (a rejected row)
    columns = dict(zip(attributes["columns"], attributes["values"], strict=True))
    frame = gpd.GeoDataFrame(pd.DataFrame(columns, index=geometry.index), geometry=geometry)
    return frame, attributes["crs"], attributes["layer"]


def _earth_crs(crs: CRS, name: str) -> CRS:
    """The CRS when it is an Earth CRS that transforms to WGS84; a 422 for another celestial body, a local or
    engineering CRS, or one PROJ cannot transform."""
    horizontal = crs.source_crs if crs.is_bound and crs.source_crs is not None else crs
    if horizontal.is_compound:
        horizontal = horizontal.sub_crs_list[0]
    ellipsoid = horizontal.ellipsoid
    problem = Problem(422, f"The CRS of '{name}' ({crs.name}) is not an Earth CRS that can be transformed to WGS84: "
                           "give the file a CRS of the Earth (e.g. EPSG:32648).")
    if not (horizontal.is_geographic or horizontal.is_projected) or ellipsoid is None \
            or not 6.3e6 < ellipsoid.semi_major_metre < 6.4e6:
        raise problem
    try:
        Transformer.from_crs(crs, WGS84, always_xy=True)
    except (ProjError, CRSError) as exc:
        raise problem from exc
    return crs


def read_file(path: Path, options: ImportOptions) -> tuple[gpd.GeoDataFrame, CRS, str | None]:
    """The file's rows as a GeoDataFrame in its own CRS, the CRS, and the layer read (by `app.files.reader`,
    in a worker process)."""
    if path.suffix.lower() not in KINDS:
        raise Problem(415, f"'{path.name}' is not a format this service reads: send a GeoPackage (.gpkg), a zipped "
                           "Shapefile (.zip), GeoJSON (.geojson/.json), KML (.kml/.kmz) or CSV with a WKT column.")
    given = None
    if options.crs:
        try:
            given = _earth_crs(parse_crs(options.crs), path.name)
        except CRSNotKnown as exc:
            raise Problem(400, str(exc), invalid_params=[{"name": "crs", "reason": str(exc)}]) from exc
    settings = get_settings()
    out = Path(tempfile.mkdtemp(prefix="landrelease-read-"))
    try:
        request = ReadRequest(path=str(path.resolve()), name=path.name, out=str(out), layer=options.layer,
                              max_features=settings.max_import_features, max_vertices=settings.max_import_vertices,
                              memory_mb=settings.import_memory_mb, cpu_seconds=settings.import_cpu_seconds,
                              all_drivers=sorted(pyogrio.list_drivers()))
        try:
            _run_reader(request, settings.import_seconds)
        except Problem as problem:  # no path of the server in any message
            for folder in (f"{path.resolve().parent}/", f"{out}/"):
                if len(folder) > 1:
                    problem.detail = problem.detail.replace(folder, "")
            raise
        frame, crs_text, layer = _rows_read(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if crs_text is None:
        if given is not None:
            crs = given
        elif path.suffix.lower() in (".geojson", ".json", ".kml", ".kmz", ".csv"):
            crs = WGS84
        else:
            raise Problem(422, f"'{path.name}' does not say its CRS (a Shapefile without .prj?): give it with "
                               "crs=EPSG:<code>.")
    else:
        try:
            crs = _earth_crs(CRS.from_user_input(crs_text), path.name)
        except CRSError as exc:
            raise Problem(422, f"The CRS of '{path.name}' is not one PROJ understands, so it cannot be transformed "
                               "to WGS84.") from exc
        if given is not None and not crs.equals(given, ignore_axis_order=True):
            raise Problem(422, f"The file says its CRS is {crs.to_string()}, not {options.crs}: "
                               "leave crs out, the file's own CRS is used.")
    return frame.set_crs(crs), crs, layer


@dataclass
class CheckedFile:
    """A file's hazards, read and every row checked (none rejected)."""

    hazards: list[NewHazard]
    crs: CRS
    layer: str | None
    mapping: dict[str, str]  # field: column of the file
    warnings: list[dict[str, Any]]


def read_and_check(session: Session, path: Path, options: ImportOptions) -> CheckedFile:
    """Read a file of hazards and check every row; any rejected row is a 422 listing them all."""
    frame, crs, layer = read_file(path, options)
    if len(frame) == 0:
        raise Problem(422, f"'{path.name}' has no rows.")
    columns = resolve_columns([c for c in frame.columns if c != frame.geometry.name], options.mapping)
    count = len(frame)
    try:
        hazards, rejected, warnings = check_rows(frame, crs, columns, options.repair)
    except ProjError as exc:  # PROJ could not transform the file's coordinates to WGS84
        raise Problem(422, f"The coordinates of '{path.name}' cannot be transformed from its CRS "
                           f"({crs.name}) to WGS84.") from exc
    del frame  # the accepted hazards hold their own (snapped) geometries
    if rejected:
        session.rollback()
        listed = "; ".join(f"row {r.row}" + (f" ({r.external_id})" if r.external_id else "") + ": "
                           + ", ".join(f"{e['column']}: {e['message']}" for e in r.errors) for r in rejected[:10])
        raise Problem(422, f"{len(rejected)} of {count} rows are not valid; nothing was stored. {listed}",
                      title="Invalid rows", rejected=[r.__dict__ for r in rejected], mapping=columns)
    return CheckedFile(hazards=hazards, crs=crs, layer=layer, mapping=columns,
                       warnings=[{"message": m, "rows": rows[:100], "count": len(rows)}
                                 for m, rows in warnings.items()])


def import_hazards(session: Session, iso3: str, path: Path, options: ImportOptions,
                   actor: audit.Actor, clip: bool = False) -> dict[str, Any]:
    """Read, check and record a file of hazards, all or nothing (overlaps refused, or clipped with `clip`)."""
    require_state(session, iso3)
    checked = read_and_check(session, path, options)
    result = record_hazards_bulk(session, iso3, checked.hazards, actor, source=options.source or path.name, clip=clip,
                                 border=options.border)
    crs_code = checked.crs.to_epsg()
    return {"state": iso3, "file": options.source or path.name, "layer": checked.layer,
            "crs": f"EPSG:{crs_code}" if crs_code else checked.crs.to_string(), "mapping": checked.mapping,
            "warnings": checked.warnings, **result}
