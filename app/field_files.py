"""Field data as files: hazards in from GeoPackage, zipped Shapefile, GeoJSON, KML or CSV; the ledger out.

Import
- The file is read by `app.file_reader` in a worker process of its own, with the GDAL drivers of the
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
- Land is counted once per State, as in the JSON API (app/overlaps.py): after the COPY one
  statement checks the new hazards against the State's and against each other; any overlap is a
  409 listing every pair and nothing is stored, or with `overlap=clip` they are stored clipped.

Export
- `gpkg`: one GeoPackage with two layers, `hazardous_areas` and `land_release_events`;
  `shp`: a zip with one Shapefile per layer (short column names, see `SHAPEFILE_NAMES`);
  `geojson` and `csv` (geometry as WKT): one layer, `hazardous_areas` unless `layer` says otherwise.
- The CSV is spreadsheet-safe (app/spreadsheet.py): every text cell is quoted, and one that a
  spreadsheet would run as a formula (a name `=HYPERLINK(...)`) begins with a `'`, kept on re-import.
- Geometry is WGS84 longitude/latitude; hazards carry their remaining geometry at `as_of` (today by
  default); events are the valid (not voided) events dated on or before `as_of`, with the land they
  released (a whole-hazard reclassification: the land it reclassified; an event that released
  nothing: the polygon it was recorded with), as the OGC layer shows them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import shapely
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import Jsonb
from pydantic import ValidationError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import audit, overlaps, spreadsheet
from app.as_of import hazards_sql, reclassified_land_sql, whole_reclassification_sql
from app.file_reader import KINDS, ReadRequest
from app.geometry import (
    MIN_AREA_M2,
    THREE_D_WARNING,
    WGS84,
    CRSNotKnown,
    GeometryError,
    PolygonalGeometry,
    geodesic_areas_m2,
    parse_crs,
    quantized_m2,
    read_polygonal,
    screen_polygonal,
    sql_area,
    to_wgs84_densified,
)
from app.layers import EVENT_PROPERTIES, HAZARD_PROPERTIES, sql_releases_land
from app.ledger import NewHazard, require_state
from app.ledger.input import HazardProperties, new_hazard, plausible_date_of_information
from app.models import CONTAMINATION_TYPES
from app.problems import Problem
from app.settings import get_settings

log = logging.getLogger(__name__)

# --- import: formats and columns --------------------------------------------------------------------
# the hazard fields a file's columns are matched to, and their aliases, as the layer declares them (app.layers)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {p.name: p.aliases for p in HAZARD_PROPERTIES if p.aliases}
HAZARD_FIELDS = tuple(COLUMN_ALIASES)
DATE_FIELDS = tuple(p.name for p in HAZARD_PROPERTIES if p.aliases and p.type == "date")
REQUIRED_FIELDS = ("external_id", "classification", "recorded_on")
MAX_LISTED_HAZARDS = 1000  # the answer lists the hazards one by one up to this many
BULK_STATEMENT_TIMEOUT_MS = 15 * 60 * 1000


@dataclass
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)
    layer: str | None = None
    crs: str | None = None  # only for files that carry no CRS
    repair: bool = False
    source: str | None = None  # the file name, for the audit log


def read_mapping(value: str | None) -> dict[str, str]:
    """`{"external_id": "REF"}` or `external_id=REF,classification=CLASS` into {field: column}."""
    if value is None or not value.strip():
        return {}
    value = value.strip()
    if value.startswith("{"):
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise Problem(400, f"mapping is not valid JSON: {exc.msg}", invalid_params=[
                {"name": "mapping", "reason": "not valid JSON"}]) from exc
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise Problem(400, "mapping must be a JSON object of field name to column name",
                          invalid_params=[{"name": "mapping", "reason": "not an object of strings"}])
        pairs = list(loaded.items())
    else:
        pairs = []
        for part in re.split(r"[,\n]", value):
            if not part.strip():
                continue
            if "=" not in part:
                raise Problem(400, f"mapping entry '{part.strip()}' is not field=column",
                              invalid_params=[{"name": "mapping", "reason": "entries are field=column"}])
            target, column = part.split("=", 1)
            pairs.append((target.strip(), column.strip()))
    unknown = [t for t, _ in pairs if t not in HAZARD_FIELDS]
    if unknown:
        raise Problem(400, f"mapping names unknown field(s) {', '.join(unknown)}: the fields are "
                           f"{', '.join(HAZARD_FIELDS)}", invalid_params=[{"name": "mapping", "reason": "unknown field"}])
    return dict(pairs)


def resolve_columns(columns: list[str], given: Mapping[str, str]) -> dict[str, str]:
    """{field: column of the file} from the given mapping, then the aliases; 422 if a required field has none."""
    by_lower = {c.lower(): c for c in columns}
    resolved: dict[str, str] = {}
    for target, column in given.items():
        found = by_lower.get(column.lower())
        if found is None:
            raise Problem(422, f"The mapping names column '{column}' for {target}, but the file has no such column. "
                               f"Its columns are: {', '.join(columns) or '(none)'}.", columns=columns)
        resolved[target] = found
    taken = set(resolved.values())
    for target in HAZARD_FIELDS:
        if target in resolved:
            continue
        for alias in COLUMN_ALIASES[target]:
            found = by_lower.get(alias)
            if found is not None and found not in taken:
                resolved[target] = found
                taken.add(found)
                break
    missing = [t for t in REQUIRED_FIELDS if t not in resolved]
    if missing:
        raise Problem(422, f"No column found for {', '.join(missing)}. The file's columns are: "
                           f"{', '.join(columns) or '(none)'}. Name them with a mapping, e.g. "
                           f"mapping=external_id=REF,classification=CLASS,recorded_on=DATE.",
                      missing_fields=missing, columns=columns)
    return resolved


READER_PROBLEM_FIELDS = ("layers", "views", "limit", "limit_name")  # what a refusal of the reader may carry
WKB_CHUNK = 10_000  # geometries decoded at a time from what the reader wrote


_readers: dict[int, threading.BoundedSemaphore] = {}  # by the number of workers allowed at once
_readers_lock = threading.Lock()


def _reader_slot(allowed: int) -> threading.BoundedSemaphore:
    with _readers_lock:
        return _readers.setdefault(allowed, threading.BoundedSemaphore(allowed))


def _run_reader(request: ReadRequest, timeout: int) -> None:
    """`app.file_reader` in a worker process of its own, which writes the rows into `request.out`; the
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
        worker = subprocess.Popen([sys.executable, "-m", "app.file_reader"], stdin=subprocess.PIPE, stdout=answer,
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
    """The file's rows as a GeoDataFrame in its own CRS, the CRS, and the layer read (by `app.file_reader`,
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


# --- import: rows -------------------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT:
        return True
    return isinstance(value, str) and not value.strip()


def _cell(target: str, value: Any) -> Any:
    if _blank(value):
        return None
    if target in DATE_FIELDS:
        if isinstance(value, pd.Timestamp | datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        # GIS files write dates as 2020-01-15, 2020/01/15 or with a time of day: keep the day
        found = re.match(r"^(\d{4})[-/](\d{2})[-/](\d{2})(?:[T ]|$)", str(value).strip())
        return "-".join(found.groups()) if found else str(value).strip()
    if target == "external_id":
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()
    if target == "classification":
        return str(value).strip().upper()
    if target == "contamination":
        items = list(value) if isinstance(value, list | tuple) else re.split(r"[;,|]", str(value).strip("[] "))
        items = [str(i).strip().strip("'\"").upper() for i in items]
        return [i for i in items if i] or None
    return str(value).strip()


def _row_properties(row: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    properties = {}
    for target, column in columns.items():
        value = _cell(target, row[column])
        if value is not None:
            properties[target] = value
    return properties


@dataclass
class Rejected:
    row: int
    external_id: str | None
    errors: list[dict[str, str]]


CHECK_CHUNK = 10_000  # rows screened at a time
_NOT_CACHED = object()
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _column_cells(target: str, values: list[Any]) -> list[Any]:
    """`_cell` of every value of a column, computed once per distinct value (floats, whose -0.0 equals
    0.0, and unhashable values each time)."""
    cache: dict[tuple[type, Any], Any] = {}
    out = []
    for value in values:
        if type(value) is float:
            out.append(None if math.isnan(value) else _cell(target, value))  # NaN: a blank cell
            continue
        try:
            cell = cache.get((type(value), value), _NOT_CACHED)
        except TypeError:
            out.append(_cell(target, value))
            continue
        if cell is _NOT_CACHED:
            cell = cache[(type(value), value)] = _cell(target, value)
        out.append(cell)
    return out


def _plainly_valid(target: str, cell: Any, today: date) -> bool:
    """True when `HazardProperties` certainly accepts this cell as it is (False: ask the model)."""
    if target == "external_id":
        return isinstance(cell, str) and 1 <= len(cell) <= 200
    if target == "classification":
        return cell in ("SHA", "CHA", "DHA")
    if target == "recorded_on":
        if not isinstance(cell, str) or not _ISO_DAY.match(cell):
            return False
        try:
            return date.fromisoformat(cell) <= today
        except ValueError:
            return False
    if target == "date_of_information":
        if cell is None:
            return True
        if not isinstance(cell, str) or not _ISO_DAY.match(cell):
            return False
        try:
            return plausible_date_of_information(date.fromisoformat(cell), today)
        except ValueError:
            return False
    if target == "contamination":
        return cell is None or (isinstance(cell, list) and len(cell) >= 1
                                and all(c in CONTAMINATION_TYPES for c in cell))
    return cell is None or (isinstance(cell, str) and len(cell) <= 500)  # name, region


def _read_geometry(geometry: Any, repair: bool, max_vertices: int) -> tuple[PolygonalGeometry | None, dict | None]:
    """One row's geometry through `read_polygonal`: the accepted geometry, or the problem with it."""
    if geometry is None:
        return None, {"field": "geometry", "column": "geometry",
                      "message": "missing or unreadable geometry (a hazard needs a polygon)"}
    try:
        return read_polygonal(json.loads(shapely.to_geojson(geometry)), WGS84, repair=repair,
                              max_vertices=max_vertices), None
    except GeometryError as exc:
        return None, {"field": exc.where, "column": "geometry", "message": exc.message}


def check_rows(frame: gpd.GeoDataFrame, crs: CRS, columns: Mapping[str, str],
               repair: bool) -> tuple[list[NewHazard], list[Rejected], dict[str, list[int]]]:
    """Every row through the JSON API's rules; the accepted hazards, the rejected rows, the warnings.

    The same answer as `check_rows_row_by_row`, but fast: the geometries are checked as one array
    (`geometry.screen_polygonal`) and the properties one distinct value at a time; only the rows that
    do not plainly pass go through `read_polygonal` and the `HazardProperties` model one by one, so
    their messages are exactly those of the JSON API.

    The geometries are screened `CHECK_CHUNK` rows at a time.
    """
    settings = get_settings()
    today = date.today()
    column_of = {**{t: t for t in HAZARD_FIELDS}, **columns}
    geometry_array = to_wgs84_densified(np.asarray(frame.geometry.values, dtype=object), crs,
                                        settings.max_vertices_per_geometry)
    accepted = np.zeros(len(geometry_array), dtype=bool)
    snapped = np.full(len(geometry_array), None, dtype=object)
    three_d = np.zeros(len(geometry_array), dtype=bool)
    for start in range(0, len(geometry_array), CHECK_CHUNK):
        chunk = slice(start, start + CHECK_CHUNK)
        screen = screen_polygonal(geometry_array[chunk], max_vertices=settings.max_vertices_per_geometry,
                                  densify=False)
        accepted[chunk], snapped[chunk], three_d[chunk] = screen.accepted, screen.geometry, screen.three_d
    cells = {target: _column_cells(target, frame[column].tolist()) for target, column in columns.items()}
    plain = np.ones(len(frame), dtype=bool)
    for target, values in cells.items():
        verdicts: dict[int, bool] = {}  # by the identity of the (shared) cell value
        plain &= np.fromiter((verdicts[id(v)] if id(v) in verdicts
                              else verdicts.setdefault(id(v), _plainly_valid(target, v, today)) for v in values),
                             dtype=bool, count=len(values))
    for target in REQUIRED_FIELDS:
        if target not in cells:
            plain[:] = False
    hazards: list[NewHazard] = []
    rejected: list[Rejected] = []
    warnings: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    ids, classes, days = cells["external_id"], cells["classification"], cells["recorded_on"]
    none = [None] * len(frame)
    contaminations, names, regions = (cells.get("contamination", none), cells.get("name", none),
                                      cells.get("region", none))
    informed = cells.get("date_of_information", none)
    parsed_days: dict[str, date] = {}
    for index in range(len(frame)):
        number = index + 1
        problems: list[dict[str, str]] = []
        if plain[index]:
            external_id = ids[index]
            classification = classes[index]
            day = days[index]
            recorded_on = parsed_days.get(day) or parsed_days.setdefault(day, date.fromisoformat(day))
            contamination = contaminations[index] or ["AP_MINE"]
            name, region = names[index], regions[index]
            day_of_information = informed[index]
            date_of_information = (None if day_of_information is None else parsed_days.get(day_of_information)
                                   or parsed_days.setdefault(day_of_information,
                                                             date.fromisoformat(day_of_information)))
        else:
            properties = {t: values[index] for t, values in cells.items() if values[index] is not None}
            external_id = properties.get("external_id")
            try:
                props = HazardProperties.model_validate(properties)
            except ValidationError as exc:
                props = None
                for error in exc.errors():
                    target = str(error["loc"][0]) if error["loc"] else "row"
                    problems.append({"field": target, "column": column_of.get(target, target),
                                     "message": error["msg"]})
            if props is not None:
                external_id, classification, recorded_on = props.external_id, props.classification, props.recorded_on
                contamination, name, region = props.contamination, props.name, props.region
                date_of_information = props.date_of_information
        if not problems and external_id in seen:
            problems.append({"field": "external_id", "column": column_of["external_id"],
                             "message": f"duplicate of row {seen[external_id]} in this file"})
        if accepted[index]:
            geometry = PolygonalGeometry(geometry=snapped[index], warnings=[THREE_D_WARNING] if three_d[index] else [])
        else:
            geometry, problem = _read_geometry(geometry_array[index], repair, settings.max_vertices_per_geometry)
            if problem is not None:
                problems.append(problem)
        if problems:
            rejected.append(Rejected(number, external_id if isinstance(external_id, str) else None, problems))
            continue
        seen[external_id] = number
        for warning in geometry.warnings:
            warnings.setdefault(warning, []).append(number)
        if geometry.repair:
            warnings.setdefault(f"repaired: {geometry.repair['reason']}", []).append(number)
        hazards.append(NewHazard(
            external_id=external_id, classification="CHA" if classification == "DHA" else classification,
            recorded_on=recorded_on, geometry=geometry, contamination=list(dict.fromkeys(contamination)),
            name=name, region=region, date_of_information=date_of_information))
    return hazards, rejected, warnings


def check_rows_row_by_row(frame: gpd.GeoDataFrame, crs: CRS, columns: Mapping[str, str],
                          repair: bool) -> tuple[list[NewHazard], list[Rejected], dict[str, list[int]]]:
    """`check_rows` one row at a time, as it was first written: the reference the tests compare with."""
    settings = get_settings()
    column_of = {**{t: t for t in HAZARD_FIELDS}, **columns}
    geojson = shapely.to_geojson(to_wgs84_densified(np.asarray(frame.geometry.values, dtype=object), crs,
                                                    settings.max_vertices_per_geometry))
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    hazards: list[NewHazard] = []
    rejected: list[Rejected] = []
    warnings: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        number = index + 1
        problems: list[dict[str, str]] = []
        properties = _row_properties(record, columns)
        external_id = properties.get("external_id")
        props = None
        try:
            props = HazardProperties.model_validate(properties)
        except ValidationError as exc:
            for error in exc.errors():
                target = str(error["loc"][0]) if error["loc"] else "row"
                problems.append({"field": target, "column": column_of.get(target, target), "message": error["msg"]})
        if props is not None and props.external_id in seen:
            problems.append({"field": "external_id", "column": column_of["external_id"],
                             "message": f"duplicate of row {seen[props.external_id]} in this file"})
        geometry = None
        text_geometry = geojson[index]
        if text_geometry is None:
            problems.append({"field": "geometry", "column": "geometry",
                             "message": "missing or unreadable geometry (a hazard needs a polygon)"})
        else:
            try:
                geometry = read_polygonal(json.loads(text_geometry), WGS84, repair=repair,
                                          max_vertices=settings.max_vertices_per_geometry)
            except GeometryError as exc:
                problems.append({"field": exc.where, "column": "geometry", "message": exc.message})
        if problems:
            rejected.append(Rejected(number, external_id if isinstance(external_id, str) else None, problems))
            continue
        seen[props.external_id] = number
        for warning in geometry.warnings:
            warnings.setdefault(warning, []).append(number)
        if geometry.repair:
            warnings.setdefault(f"repaired: {geometry.repair['reason']}", []).append(number)
        hazards.append(new_hazard(props, geometry))
    return hazards, rejected, warnings


# --- import: bulk loading -------------------------------------------------------------------------------
_RESUBMITTED = """
    CREATE TEMPORARY TABLE hazard_import_resubmitted (
        ord integer NOT NULL, external_id text NOT NULL, name text, classification text NOT NULL,
        contamination text[] NOT NULL, region text, date_of_information date, recorded_on date NOT NULL,
        wkb bytea NOT NULL
    ) ON COMMIT DROP
"""
_HAZARD_COLUMNS = ("id", "state_iso3", "external_id", "name", "classification", "contamination", "region",
                   "date_of_information", "recorded_on", "baseline_geom", "baseline_area_m2", "remaining_geom",
                   "remaining_area_m2")
# binary COPY: a geometry travels as EWKB, which is PostGIS's binary input format
_HAZARD_TYPES = ("uuid", "text", "text", "text", "text", "text[]", "text", "date", "date", "bytea", "float8", "bytea",
                 "float8")
_AUDIT_COLUMNS = ("state_iso3", "actor", "key_id", "table_name", "row_id", "action", "external_id", "detail")
_AUDIT_TYPES = ("text", "text", "uuid", "text", "text", "text", "text", "jsonb")


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
    with raw.cursor() as cursor:
        with cursor.copy("COPY hazard_import_resubmitted (ord, external_id, name, classification, contamination, "
                         "region, date_of_information, recorded_on, wkb) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "text", "text", "text", "text[]", "text", "date", "date", "bytea"])
            for i, wkb in zip(resubmitted, ewkb, strict=True):
                h = hazards[i]
                copy.write_row((i, h.external_id, h.name, h.classification, sorted(set(h.contamination)),
                                h.region, h.date_of_information, h.recorded_on, wkb))
    conflicts = session.execute(text(
        f"""
        SELECT s.external_id, h.id AS existing_id
        FROM hazard_import_resubmitted s
        JOIN hazardous_areas h ON h.state_iso3 = :iso3 AND h.external_id = s.external_id
        WHERE NOT (h.classification = s.classification
                   AND ARRAY(SELECT unnest(h.contamination) ORDER BY 1) = s.contamination
                   AND h.name IS NOT DISTINCT FROM s.name AND h.region IS NOT DISTINCT FROM s.region
                   AND h.date_of_information IS NOT DISTINCT FROM s.date_of_information
                   AND h.recorded_on = s.recorded_on
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
                        source: str | None = None, clip: bool = False) -> dict[str, Any]:
    """Record many hazards in one transaction with COPY; the same outcome as `ledger.record_hazards`.

    Identical re-imports are reported unchanged; an external_id that exists with different content
    is a 409 and nothing is stored. A new hazard overlapping land another hazard of the State counts
    (or a hazard of the file before it) is a 409 naming each pair, nothing stored; with `clip` it is
    recorded clipped (app/overlaps.py: one statement over the spatial index checks the whole file,
    after the COPY, in the same transaction). Commits on success.

    The geometries are accepted ones (`read_polygonal`/`screen_polygonal`), already on the grid, so
    they are stored as they are. The new hazards are COPYed (binary) straight into `hazardous_areas`
    in spatial order (GiST updates stay on the same pages), then their audit entries into
    `audit_log`. The geodesic areas are GeographicLib's (`geodesic_areas_m2`, the algorithm of
    PostGIS's `ST_Area(geography)`), measured chunk by chunk inside the COPY, so Python measures one
    chunk while PostgreSQL writes the previous one and its indexes on the other core.
    """
    require_state(session, iso3)
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
                        h, area = hazards[i], float(areas[i])
                        copy.write_row((ids[i], iso3, h.external_id, h.name, h.classification,
                                        sorted(set(h.contamination)), h.region, h.date_of_information, h.recorded_on,
                                        ewkb, area, ewkb, area))
            del geometries
            detail = Jsonb({"import": (import_id := str(uuid.uuid4())), "source": source})
            with cursor.copy(f"COPY audit_log ({', '.join(_AUDIT_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(_AUDIT_TYPES))
                for i in order.tolist():
                    copy.write_row((iso3, actor.name, actor.key_id, "hazardous_areas", str(ids[i]), "create",
                                    hazards[i].external_id, detail))
    except psycopg.errors.UniqueViolation as exc:  # another request recorded one of these external_ids meanwhile
        session.rollback()
        raise Problem(409, "another request recorded some of these hazards at the same time; nothing was stored. "
                           "Send the file again: hazards recorded identically are then reported as unchanged.") from exc
    except psycopg.Error as exc:  # raised by the driver itself: hand it to the service's handlers as SQLAlchemy would
        with contextlib.suppress(DBAPIError):
            session.rollback()
        raise DBAPIError.instance("COPY hazardous_areas", None, exc, psycopg.Error) from exc
    try:
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
                 "SELECT :iso3, :actor, CAST(:key_id AS uuid), 'hazardous_areas', r.id, 'clip', r.external_id, r.detail "
                 "FROM unnest(CAST(:ids AS text[]), CAST(:external_ids AS text[]), CAST(:details AS jsonb[])) "
                 "AS r(id, external_id, detail)"),
            {"iso3": iso3, "actor": actor.name, "key_id": actor.key_id, "ids": [str(k) for k in clipped],
             "external_ids": [hazards[index_of[k]].external_id for k in clipped],
             "details": [json.dumps({"area_m2": c["clipped_m2"], "overlaps": c["overlaps"], "import": import_id})
                         for c in clipped.values()]})
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


def import_hazards(session: Session, iso3: str, path: Path, options: ImportOptions,
                   actor: audit.Actor, clip: bool = False) -> dict[str, Any]:
    """Read, check and record a file of hazards, all or nothing (overlaps refused, or clipped with `clip`)."""
    require_state(session, iso3)
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
    result = record_hazards_bulk(session, iso3, hazards, actor, source=options.source or path.name, clip=clip)
    crs_code = crs.to_epsg()
    return {"state": iso3, "file": options.source or path.name, "layer": layer,
            "crs": f"EPSG:{crs_code}" if crs_code else crs.to_string(), "mapping": columns,
            "warnings": [{"message": m, "rows": rows[:100], "count": len(rows)} for m, rows in warnings.items()],
            **result}


# --- export ---------------------------------------------------------------------------------------------
EXPORT_FORMATS = {
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "geojson": ("application/geo+json", "geojson"),
    "shp": ("application/zip", "zip"),
    "csv": ("text/csv", "csv"),
}
EXPORT_LAYERS = ("hazardous_areas", "land_release_events")
# the 10-character Shapefile field names, as the layers declare them
SHAPEFILE_NAMES = {p.name: p.shapefile for p in (*HAZARD_PROPERTIES, *EVENT_PROPERTIES) if p.shapefile}
SHAPEFILE_NAMES["hazard_external_id"] = "hazard_ext"  # the events' export adds their hazard's reference


def _hazards_frame(session: Session, iso3: str, as_of: date | None, status: str | None) -> gpd.GeoDataFrame:
    params: dict[str, Any] = {"iso3": iso3, "as_of": as_of}
    condition = "hz.state_iso3 = :iso3"
    if status:
        condition += " AND hz.status = :status"
        params["status"] = status
    sql = f"""
        SELECT hz.id::text AS id, hz.state_iso3 AS state, hz.external_id, hz.name, hz.classification,
               array_to_string(hz.contamination, ';') AS contamination, hz.region, hz.date_of_information,
               hz.recorded_on,
               hz.parent_id::text AS parent_id, hz.baseline_area_m2, hz.remaining_area_m2, hz.status,
               hz.released_on,
               CASE WHEN ST_IsEmpty(hz.remaining_geom) THEN NULL ELSE ST_AsBinary(hz.remaining_geom) END AS geom
        FROM ({hazards_sql(as_of is not None)}) hz WHERE {condition} ORDER BY hz.recorded_on, hz.external_id
    """
    return _frame(session, sql, params)


def _events_frame(session: Session, iso3: str, as_of: date | None) -> gpd.GeoDataFrame:
    sql = f"""
        SELECT e.id::text AS id, e.state_iso3 AS state, e.hazard_id::text AS hazard_id,
               h.external_id AS hazard_external_id, e.external_id, e.kind,
               {sql_releases_land('e.kind')} AS releases_land, e.date, e.organisation, e.released_area_m2,
               e.outside_area_m2, e.ap_mines, e.improvised_ap_mines, e.av_mines, e.other_eo,
               e.new_hazard_id::text AS new_hazard_id,
               CASE WHEN {whole_reclassification_sql('e')} THEN ST_AsBinary({reclassified_land_sql('e')})
                    WHEN e.released_geom IS NULL OR ST_IsEmpty(e.released_geom) THEN ST_AsBinary(e.submitted_geom)
                    ELSE ST_AsBinary(e.released_geom) END AS geom
        FROM land_release_events e JOIN hazardous_areas h ON h.id = e.hazard_id
        WHERE e.state_iso3 = :iso3 AND e.voided_at IS NULL AND (CAST(:as_of AS date) IS NULL OR e.date <= :as_of)
        ORDER BY e.date, e.arrival
    """
    return _frame(session, sql, {"iso3": iso3, "as_of": as_of})


def _frame(session: Session, sql: str, params: dict[str, Any]) -> gpd.GeoDataFrame:
    result = session.execute(text(sql), params)
    names = list(result.keys())
    rows = result.all()
    data = pd.DataFrame.from_records(rows, columns=names)
    wkb = data.pop("geom")
    geometry = shapely.from_wkb([bytes(g) if g is not None else None for g in wkb]) if len(data) else []
    for column in ("date_of_information", "recorded_on", "released_on", "date"):
        if column in data:
            data[column] = pd.to_datetime(data[column])  # a Date (or DateTime) field in every format
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def _for_flat_files(frame: gpd.GeoDataFrame, short_names: bool) -> gpd.GeoDataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == bool:
            frame[column] = frame[column].astype(int)
    if short_names:
        frame = frame.rename(columns=SHAPEFILE_NAMES)
    return frame


def export_state(session: Session, iso3: str, fmt: str, as_of: date | None, layer: str | None = None,
                 status: str | None = None) -> tuple[Path, str, str]:
    """Write the State's layers into a new temporary directory; return (file, media type, download name).

    The caller removes `file.parent` when the file has been sent.
    """
    require_state(session, iso3)
    if fmt not in EXPORT_FORMATS:
        raise Problem(400, f"format '{fmt}' is not offered: use one of {', '.join(EXPORT_FORMATS)}",
                      invalid_params=[{"name": "format", "reason": "unknown format"}])
    if layer is not None and layer not in EXPORT_LAYERS:
        raise Problem(400, f"layer '{layer}' is not one of {', '.join(EXPORT_LAYERS)}",
                      invalid_params=[{"name": "layer", "reason": "unknown layer"}])
    if status is not None and status not in ("active", "released"):
        raise Problem(400, f"status '{status}' is not one of active, released",
                      invalid_params=[{"name": "status", "reason": "unknown status"}])
    if layer is None:
        layers = list(EXPORT_LAYERS) if fmt in ("gpkg", "shp") else ["hazardous_areas"]
    else:
        layers = [layer]
    frames = {name: (_hazards_frame(session, iso3, as_of, status) if name == "hazardous_areas"
                     else _events_frame(session, iso3, as_of)) for name in layers}
    media_type, extension = EXPORT_FORMATS[fmt]
    stem = f"{iso3}_{layers[0] if len(layers) == 1 else 'landrelease'}_{(as_of or date.today()).isoformat()}"
    folder = Path(tempfile.mkdtemp(prefix="landrelease-export-"))
    try:
        target = folder / f"{stem}.{extension}"
        if fmt == "gpkg":
            for name, frame in frames.items():
                pyogrio.write_dataframe(frame, target, layer=name, driver="GPKG", geometry_type="MultiPolygon",
                                        append=target.exists())
        elif fmt == "geojson":
            (name, frame), = frames.items()
            pyogrio.write_dataframe(frame, target, driver="GeoJSON", layer=name, geometry_type="MultiPolygon",
                                    layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "8"})
        elif fmt == "csv":
            (name, frame), = frames.items()
            pyogrio.write_dataframe(spreadsheet.safe_frame(_for_flat_files(frame, short_names=False)), target,
                                    driver="CSV", layer=name,
                                    layer_options={"GEOMETRY": "AS_WKT", **spreadsheet.GDAL_CSV_OPTIONS})
        else:
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, frame in frames.items():
                    shp = folder / f"{iso3}_{name}.shp"
                    pyogrio.write_dataframe(_for_flat_files(frame, short_names=True), shp, driver="ESRI Shapefile",
                                            layer=f"{iso3}_{name}", geometry_type="MultiPolygon", encoding="UTF-8")
                    for part in sorted(folder.glob(f"{iso3}_{name}.*")):
                        archive.write(part, part.name)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target, media_type, target.name
