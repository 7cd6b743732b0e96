"""Field data as files: hazards in from GeoPackage, zipped Shapefile, GeoJSON, KML or CSV; the ledger out.

Import
- The file is read with pyogrio (GDAL). Its CRS comes from the file (.prj, GeoPackage SRS, ...);
  GeoJSON, KML and CSV without one are WGS84 longitude/latitude; a file without any CRS can be
  given one with `crs` (e.g. a Shapefile without .prj).
- Columns are matched to the hazard fields by name, case-insensitively, through `COLUMN_ALIASES`
  (which includes the 10-character names of Shapefiles and of our own export); a `mapping`
  (`{"external_id": "HAZ_REF", ...}`, or `external_id=HAZ_REF,classification=CLASS`) overrides it.
- Every row is checked with the same rules as the JSON API: the properties with the API's
  `HazardProperties` model, the geometry with `app.geometry.read_polygonal` (after a vectorised
  transformation of the whole file to WGS84). For speed the rules run on whole columns first
  (`geometry.screen_polygonal`, and each distinct property value once); the rows that do not plainly
  pass go through `read_polygonal` and the model one by one, so every message is the JSON API's.
  Classification and contamination codes are read case-insensitively; contamination may be a list
  or a string separated by `;`, `,` or `|`.
- All or nothing: one rejected row and nothing is stored; the answer lists every rejected row (its
  1-based number in the file, its external_id, and what is wrong with which column).
- Accepted rows are loaded in one transaction: while the file is checked, each chunk's snapped
  geometries go to a temporary table and PostGIS measures their geodesic areas (`GeometryStage`, on a
  second thread); then the properties are COPYed into a staging table and one INSERT ... SELECT
  (in spatial order, for the GiST indexes) writes the hazards and their audit entries. Re-importing
  identical hazards is safe (they are reported as unchanged); an external_id that exists with
  different content is a 409, as in the JSON API.

Export
- `gpkg`: one GeoPackage with two layers, `hazardous_areas` and `land_release_events`;
  `shp`: a zip with one Shapefile per layer (short column names, see `SHAPEFILE_NAMES`);
  `geojson` and `csv` (geometry as WKT): one layer, `hazardous_areas` unless `layer` says otherwise.
- Geometry is WGS84 longitude/latitude; hazards carry their remaining geometry at `as_of` (today by
  default); events are the valid (not voided) events dated on or before `as_of`.
"""
from __future__ import annotations

import json
import math
import queue
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pydantic import ValidationError
from pyproj import CRS
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import audit
from app.as_of import hazards_sql
from app.geometry import (
    MIN_AREA_M2,
    THREE_D_WARNING,
    WGS84,
    CRSNotKnown,
    GeometryError,
    PolygonalGeometry,
    parse_crs,
    read_polygonal,
    screen_polygonal,
    sql_area,
    sql_polygonal,
)
from app.ledger import NewHazard, require_state
from app.models import CONTAMINATION_TYPES
from app.problems import Problem
from app.settings import get_settings

# --- import: formats and columns --------------------------------------------------------------------
IMPORT_SUFFIXES = {".gpkg": "GPKG", ".zip": "zipped Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
                   ".kml": "KML", ".kmz": "KMZ", ".csv": "CSV"}
HAZARD_FIELDS = ("external_id", "classification", "recorded_on", "contamination", "name", "region")
REQUIRED_FIELDS = ("external_id", "classification", "recorded_on")
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "external_i", "ext_id", "hazard_id", "hazard_ref", "ref", "reference", "code"),
    "classification": ("classification", "classifica", "class", "hazard_class", "haz_class", "category"),
    "recorded_on": ("recorded_on", "recorded_o", "recorded", "record_date", "date_recorded", "survey_date", "date"),
    "contamination": ("contamination", "contaminat", "contam", "contamination_types", "hazard_type"),
    "name": ("name", "hazard_name", "site_name"),
    "region": ("region", "province", "district"),
}
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


def _dataset_path(path: Path) -> tuple[str, dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise Problem(415, f"'{path.name}' is not a format this service reads: send a GeoPackage (.gpkg), a zipped "
                           "Shapefile (.zip), GeoJSON (.geojson/.json), KML (.kml/.kmz) or CSV with a WKT column.")
    if suffix == ".zip":
        if not zipfile.is_zipfile(path):
            raise Problem(422, f"'{path.name}' is not a zip archive.")
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.startswith("__MACOSX")]
        shapefiles = [n for n in names if n.lower().endswith(".shp")]
        if not shapefiles:
            raise Problem(422, f"The zip holds no Shapefile (.shp); it holds: {', '.join(names[:20])}.")
        if len(shapefiles) == 1:
            return f"/vsizip/{path}/{shapefiles[0]}", {}
        return f"/vsizip/{path}", {}
    if suffix == ".csv":
        return str(path), {"GEOM_POSSIBLE_NAMES": "WKT,geometry,geom,the_geom", "KEEP_GEOM_COLUMNS": "NO"}
    return str(path), {}


def _choose_layer(dataset: str, wanted: str | None, name: str) -> str | None:
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(dataset)]
    except Exception as exc:  # GDAL says why it cannot open the file
        raise Problem(422, f"'{name}' cannot be read: {exc}") from exc
    if wanted:
        if wanted not in layers:
            raise Problem(422, f"The file has no layer '{wanted}'; its layers are: {', '.join(layers)}.",
                          layers=layers)
        return wanted
    if len(layers) <= 1:
        return layers[0] if layers else None
    return "hazardous_areas" if "hazardous_areas" in layers else layers[0]


def read_file(path: Path, options: ImportOptions) -> tuple[gpd.GeoDataFrame, CRS, str | None]:
    """The file's rows as a GeoDataFrame in its own CRS, the CRS, and the layer read."""
    dataset, open_options = _dataset_path(path)
    layer = _choose_layer(dataset, options.layer, path.name)
    try:
        frame = pyogrio.read_dataframe(dataset, layer=layer, on_invalid="ignore", **open_options)
    except Exception as exc:
        raise Problem(422, f"'{path.name}' cannot be read: {exc}") from exc
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise Problem(422, f"'{path.name}' has no geometry column: hazards need polygons.")
    given = None
    if options.crs:
        try:
            given = parse_crs(options.crs)
        except CRSNotKnown as exc:
            raise Problem(400, str(exc), invalid_params=[{"name": "crs", "reason": str(exc)}]) from exc
    crs = frame.crs
    if crs is None:
        if given is not None:
            crs = given
        elif path.suffix.lower() in (".geojson", ".json", ".kml", ".kmz", ".csv"):
            crs = WGS84
        else:
            raise Problem(422, f"'{path.name}' does not say its CRS (a Shapefile without .prj?): give it with "
                               "crs=EPSG:<code>.")
    elif given is not None and not CRS.from_user_input(crs).equals(given, ignore_axis_order=True):
        raise Problem(422, f"The file says its CRS is {CRS.from_user_input(crs).to_string()}, not {options.crs}: "
                           "leave crs out, the file's own CRS is used.")
    if frame.crs is None:
        frame = frame.set_crs(crs)
    return frame, CRS.from_user_input(crs), layer


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
    if target == "recorded_on":
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


class GeometryStage:
    """The accepted geometries of a file, sent to PostGIS and measured there (their geodesic areas, the
    slowest part of the load) on a second thread, chunk by chunk, while the rest of the file is still
    being checked: Python and PostgreSQL then work on the two cores at once.

    Everything happens in the session's transaction, into a temporary table dropped on commit; if the
    file is rejected the caller rolls back and nothing is left. `staged[row]` says which rows were sent.
    """

    def __init__(self, session: Session, rows: int) -> None:
        session.execute(text(f"SET LOCAL statement_timeout = {BULK_STATEMENT_TIMEOUT_MS}"))
        session.execute(text("DROP TABLE IF EXISTS hazard_import_geometry"))
        session.execute(text(_STAGED_GEOMETRY))
        self.connection = session.connection().connection.driver_connection
        self.staged = np.zeros(rows, dtype=bool)
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._load, name="hazard-import-stage", daemon=True)
        self._thread.start()

    def put(self, rows: np.ndarray, geometries: np.ndarray) -> None:
        if len(rows) and self._failure is None:
            self.staged[rows] = True
            self._queue.put(([int(r) for r in rows], list(shapely.to_wkb(geometries))))

    def _load(self) -> None:
        statement = f"""
            INSERT INTO hazard_import_geometry (ord, geom, area)
            SELECT x.ord, x.geom, {sql_area('x.geom')}
            FROM (SELECT u.ord, {sql_polygonal('ST_GeomFromWKB(u.wkb, 4326)')} AS geom
                  FROM unnest(%(rows)b::integer[], %(wkb)b::bytea[]) AS u(ord, wkb) OFFSET 0) x
        """
        while (item := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # drain: the caller finds out in finish()
            try:
                self.connection.execute(statement, {"rows": item[0], "wkb": item[1]})
            except BaseException as exc:  # noqa: BLE001 - handed over to the caller's thread
                self._failure = exc

    def finish(self) -> None:
        """Wait for the last chunk; raise what went wrong on the second thread, if anything."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._failure is not None:
            raise self._failure


_STAGED_GEOMETRY = """
    CREATE TEMPORARY TABLE hazard_import_geometry (
        ord integer NOT NULL, geom geometry(MultiPolygon, 4326) NOT NULL, area double precision NOT NULL
    ) ON COMMIT DROP
"""
CHECK_CHUNK = 10_000  # rows screened at a time (and sent to PostGIS at a time, with a stage)
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


def check_rows(frame: gpd.GeoDataFrame, crs: CRS, columns: Mapping[str, str], repair: bool, *,
               stage: GeometryStage | None = None,
               numbers: list[int] | None = None) -> tuple[list[NewHazard], list[Rejected], dict[str, list[int]]]:
    """Every row through the JSON API's rules; the accepted hazards, the rejected rows, the warnings.

    The same answer as `check_rows_row_by_row`, but fast: the geometries are checked as one array
    (`geometry.screen_polygonal`) and the properties one distinct value at a time; only the rows that
    do not plainly pass go through `read_polygonal` and the `HazardProperties` model one by one, so
    their messages are exactly those of the JSON API.

    The geometries are screened `CHECK_CHUNK` rows at a time; with a `stage`, each chunk's accepted
    geometries go to PostGIS to be measured while the next chunk is checked. With `numbers`, the
    0-based row of each accepted hazard is appended to it.
    """
    from app.routers.hazards import HazardProperties  # the JSON API's own rules for the properties

    settings = get_settings()
    today = date.today()
    column_of = {**{t: t for t in HAZARD_FIELDS}, **columns}
    geometries = frame.geometry
    if not crs.equals(WGS84, ignore_axis_order=True):
        geometries = geometries.to_crs(WGS84)
    geometry_array = np.asarray(geometries.values, dtype=object)
    del geometries
    accepted = np.zeros(len(geometry_array), dtype=bool)
    snapped = np.full(len(geometry_array), None, dtype=object)
    three_d = np.zeros(len(geometry_array), dtype=bool)
    for start in range(0, len(geometry_array), CHECK_CHUNK):
        chunk = slice(start, start + CHECK_CHUNK)
        screen = screen_polygonal(geometry_array[chunk], max_vertices=settings.max_vertices_per_geometry)
        accepted[chunk], snapped[chunk], three_d[chunk] = screen.accepted, screen.geometry, screen.three_d
        if stage is not None:
            stage.put(start + np.flatnonzero(screen.accepted), screen.geometry[screen.accepted])
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
            name=name, region=region))
        if numbers is not None:
            numbers.append(index)
    return hazards, rejected, warnings


def check_rows_row_by_row(frame: gpd.GeoDataFrame, crs: CRS, columns: Mapping[str, str],
                          repair: bool) -> tuple[list[NewHazard], list[Rejected], dict[str, list[int]]]:
    """`check_rows` one row at a time, as it was first written: the reference the tests compare with."""
    from app.routers.hazards import HazardProperties  # the JSON API's own rules for the properties

    settings = get_settings()
    column_of = {**{t: t for t in HAZARD_FIELDS}, **columns}
    geometries = frame.geometry
    if not crs.equals(WGS84, ignore_axis_order=True):
        geometries = geometries.to_crs(WGS84)
    geojson = shapely.to_geojson(geometries.values.to_numpy() if hasattr(geometries.values, "to_numpy")
                                 else geometries.values)
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
        hazards.append(NewHazard(
            external_id=props.external_id, classification="CHA" if props.classification == "DHA" else props.classification,
            recorded_on=props.recorded_on, geometry=geometry, contamination=list(dict.fromkeys(props.contamination)),
            name=props.name, region=props.region))
    return hazards, rejected, warnings


# --- import: bulk loading -------------------------------------------------------------------------------
_STAGING = """
    CREATE TEMPORARY TABLE hazard_import_staging (
        ord integer NOT NULL, place bigint NOT NULL, external_id text NOT NULL, name text, classification text NOT NULL,
        contamination text[] NOT NULL, region text, recorded_on date NOT NULL,
        wkb bytea  -- NULL: the geometry is in hazard_import_geometry
    ) ON COMMIT DROP
"""


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


def record_hazards_bulk(session: Session, iso3: str, hazards: list[NewHazard], actor: audit.Actor,
                        source: str | None = None, *, stage: GeometryStage | None = None,
                        rows: Sequence[int] | None = None) -> dict[str, Any]:
    """Record many hazards in one transaction with COPY; the same outcome as `ledger.record_hazards`.

    Identical re-imports are reported unchanged; an external_id that exists with different content
    is a 409 and nothing is stored. Commits on success.

    The geometries are accepted ones (`read_polygonal`/`screen_polygonal`), already snapped to the
    grid by the same GEOS operation `sql_snap` runs, so they are not snapped a second time here
    (ST_ReducePrecision was half of this statement's time); the areas are PostGIS's, as everywhere.
    With a `stage` (see `check_rows`), `rows[i]` is the file row of `hazards[i]`, and the hazards of
    the rows already staged take their geometry and area from there.
    """
    require_state(session, iso3)
    # one big statement per step: the per-request statement timeout is for reads, not for a bulk load
    session.execute(text(f"SET LOCAL statement_timeout = {BULK_STATEMENT_TIMEOUT_MS}"))
    session.execute(text("DROP TABLE IF EXISTS hazard_import_staging"))
    session.execute(text(_STAGING))
    if stage is None:
        session.execute(text("DROP TABLE IF EXISTS hazard_import_geometry"))
        session.execute(text(_STAGED_GEOMETRY))
    ords = np.asarray(rows if rows is not None else range(len(hazards)), dtype=np.int64)
    geometries = np.array([h.geometry.geometry for h in hazards], dtype=object)
    place = _spatial_order(geometries)
    wkb = np.full(len(hazards), None, dtype=object)
    to_send = ~stage.staged[ords] if stage is not None else np.ones(len(hazards), dtype=bool)
    wkb[to_send] = shapely.to_wkb(geometries[to_send])
    del geometries
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy("COPY hazard_import_staging (ord, place, external_id, name, classification, contamination, "
                         "region, recorded_on, wkb) FROM STDIN") as copy:
            copy.set_types(["int4", "int8", "text", "text", "text", "text[]", "text", "date", "bytea"])
            for i, h in enumerate(hazards):
                copy.write_row((int(ords[i]), int(place[i]), h.external_id, h.name, h.classification,
                                sorted(set(h.contamination)), h.region, h.recorded_on, wkb[i]))
    del wkb
    session.execute(text("CREATE INDEX ON hazard_import_geometry (ord)"))
    session.execute(text("ANALYZE hazard_import_staging (external_id)"))  # for the conflict join
    # the staged geometry is looked up (by index) only for the rows whose external_id exists already
    staged = ("(SELECT s.*, COALESCE((SELECT g.geom FROM hazard_import_geometry g WHERE g.ord = s.ord), "
              "ST_GeomFromWKB(s.wkb, 4326)) AS geom FROM hazard_import_staging s)")
    conflicts = session.execute(text(
        f"""
        SELECT s.ord, s.external_id, h.id AS existing_id
        FROM {staged} s JOIN hazardous_areas h ON h.state_iso3 = :iso3 AND h.external_id = s.external_id
        WHERE NOT (h.classification = s.classification
                   AND ARRAY(SELECT unnest(h.contamination) ORDER BY 1) = s.contamination
                   AND h.name IS NOT DISTINCT FROM s.name AND h.region IS NOT DISTINCT FROM s.region
                   AND h.recorded_on = s.recorded_on
                   AND {sql_area('ST_SymDifference(h.baseline_geom, s.geom)')} < {MIN_AREA_M2})
        ORDER BY s.ord
        """), {"iso3": iso3}).all()
    if conflicts:
        session.rollback()
        listed = [{"external_id": c.external_id, "existing_id": str(c.existing_id)} for c in conflicts]
        raise Problem(409, f"{len(conflicts)} hazard(s) already exist in {iso3} with different content: "
                           + ", ".join(c["external_id"] for c in listed[:20])
                           + ". Use new external_ids, or correct the existing hazards. Nothing was stored.",
                      conflicts=listed)
    import_id = str(uuid.uuid4())
    listing = len(hazards) <= MAX_LISTED_HAZARDS  # else only the totals come back
    final = ("SELECT ins.id, ins.external_id, ins.baseline_area_m2, (SELECT count(*) FROM logged) AS logged FROM ins"
             if listing else
             "SELECT count(*), COALESCE(sum(ins.baseline_area_m2), 0), (SELECT count(*) FROM logged) FROM ins")
    rows = session.execute(text(
        f"""
        WITH fresh AS (
            SELECT s.* FROM hazard_import_staging s
            WHERE NOT EXISTS (SELECT 1 FROM hazardous_areas h WHERE h.state_iso3 = :iso3
                              AND h.external_id = s.external_id)
        ),
        ins AS (
            INSERT INTO hazardous_areas (state_iso3, external_id, name, classification, contamination, region,
                                         recorded_on, baseline_geom, baseline_area_m2, remaining_geom,
                                         remaining_area_m2)
            SELECT :iso3, f.external_id, f.name, f.classification, f.contamination, f.region, f.recorded_on,
                   m.geom, m.area, m.geom, m.area
            FROM fresh f
            LEFT JOIN hazard_import_geometry g ON g.ord = f.ord
            CROSS JOIN LATERAL (
                SELECT g.geom, g.area WHERE g.ord IS NOT NULL
                UNION ALL
                SELECT x.geom, {sql_area('x.geom')}
                FROM (SELECT {sql_polygonal('ST_GeomFromWKB(f.wkb, 4326)')} AS geom OFFSET 0) x
                WHERE g.ord IS NULL
            ) m
            ORDER BY f.place
            RETURNING id, external_id, baseline_area_m2
        ),
        logged AS (
            INSERT INTO audit_log (state_iso3, actor, key_id, table_name, row_id, action, external_id, detail)
            SELECT :iso3, :actor, :key_id, 'hazardous_areas', ins.id::text, 'create', ins.external_id,
                   CAST(:detail AS jsonb)
            FROM ins
            RETURNING 1
        )
        {final}
        """), {"iso3": iso3, "actor": actor.name, "key_id": actor.key_id,
               "detail": json.dumps({"import": import_id, "source": source})}).all()
    listed: list[dict[str, Any]] = []
    if not listing:
        (count, area, _), = rows
        session.execute(text("DROP TABLE IF EXISTS hazard_import_staging, hazard_import_geometry"))
        session.commit()
        return {"import_id": import_id, "rows": len(hazards), "created": count, "unchanged": len(hazards) - count,
                "created_area_m2": area or 0, "hazards": listed}
    created = {r.external_id: r for r in rows}
    unchanged = {r.external_id: r for r in session.execute(text(
        "SELECT h.id, h.external_id, h.baseline_area_m2 FROM hazardous_areas h "
        "WHERE h.state_iso3 = :iso3 AND h.external_id = ANY(:ids)"),
        {"iso3": iso3, "ids": [h.external_id for h in hazards if h.external_id not in created]})}
    for h in hazards:
        r = created.get(h.external_id) or unchanged[h.external_id]
        listed.append({"id": str(r.id), "external_id": h.external_id, "created": h.external_id in created,
                       "baseline_area_m2": r.baseline_area_m2})
    session.execute(text("DROP TABLE IF EXISTS hazard_import_staging, hazard_import_geometry"))
    session.commit()
    return {"import_id": import_id, "rows": len(hazards), "created": len(created),
            "unchanged": len(hazards) - len(created),
            "created_area_m2": sum(r.baseline_area_m2 for r in rows), "hazards": listed}


def import_hazards(session: Session, iso3: str, path: Path, options: ImportOptions,
                   actor: audit.Actor) -> dict[str, Any]:
    """Read, check and record a file of hazards, all or nothing."""
    require_state(session, iso3)
    frame, crs, layer = read_file(path, options)
    if len(frame) == 0:
        raise Problem(422, f"'{path.name}' has no rows.")
    columns = resolve_columns([c for c in frame.columns if c != frame.geometry.name], options.mapping)
    count = len(frame)
    numbers: list[int] = []
    stage = GeometryStage(session, count)
    try:
        hazards, rejected, warnings = check_rows(frame, crs, columns, options.repair, stage=stage, numbers=numbers)
        del frame  # the accepted hazards hold their own (snapped) geometries
    finally:
        stage.finish()
    if rejected:
        session.rollback()  # the staged geometries go too
        listed = "; ".join(f"row {r.row}" + (f" ({r.external_id})" if r.external_id else "") + ": "
                           + ", ".join(f"{e['column']}: {e['message']}" for e in r.errors) for r in rejected[:10])
        raise Problem(422, f"{len(rejected)} of {count} rows are not valid; nothing was stored. {listed}",
                      title="Invalid rows", rejected=[r.__dict__ for r in rejected], mapping=columns)
    result = record_hazards_bulk(session, iso3, hazards, actor, source=options.source or path.name, stage=stage,
                                 rows=numbers)
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
SHAPEFILE_NAMES = {
    "external_id": "ext_id", "classification": "class", "contamination": "contam", "recorded_on": "recorded",
    "baseline_area_m2": "base_m2", "remaining_area_m2": "remain_m2", "released_on": "released",
    "hazard_external_id": "hazard_ext", "releases_land": "releases", "organisation": "org",
    "released_area_m2": "rel_m2", "outside_area_m2": "out_m2", "improvised_ap_mines": "iap_mines",
    "new_hazard_id": "new_hazard",
}


def _hazards_frame(session: Session, iso3: str, as_of: date | None, status: str | None) -> gpd.GeoDataFrame:
    params: dict[str, Any] = {"iso3": iso3, "as_of": as_of}
    condition = "hz.state_iso3 = :iso3"
    if status:
        condition += " AND hz.status = :status"
        params["status"] = status
    sql = f"""
        SELECT hz.id::text AS id, hz.state_iso3 AS state, hz.external_id, hz.name, hz.classification,
               array_to_string(hz.contamination, ';') AS contamination, hz.region, hz.recorded_on,
               hz.parent_id::text AS parent_id, hz.baseline_area_m2, hz.remaining_area_m2, hz.status,
               hz.released_on,
               CASE WHEN ST_IsEmpty(hz.remaining_geom) THEN NULL ELSE ST_AsBinary(hz.remaining_geom) END AS geom
        FROM ({hazards_sql(as_of is not None)}) hz WHERE {condition} ORDER BY hz.recorded_on, hz.external_id
    """
    return _frame(session, sql, params)


def _events_frame(session: Session, iso3: str, as_of: date | None) -> gpd.GeoDataFrame:
    sql = """
        SELECT e.id::text AS id, e.state_iso3 AS state, e.hazard_id::text AS hazard_id,
               h.external_id AS hazard_external_id, e.external_id, e.kind,
               e.kind <> 'reclassification' AS releases_land, e.date, e.organisation, e.released_area_m2,
               e.outside_area_m2, e.ap_mines, e.improvised_ap_mines, e.av_mines, e.other_eo,
               e.new_hazard_id::text AS new_hazard_id,
               CASE WHEN e.released_geom IS NULL OR ST_IsEmpty(e.released_geom) THEN NULL
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
    for column in ("recorded_on", "released_on", "date"):
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
            pyogrio.write_dataframe(_for_flat_files(frame, short_names=False), target, driver="CSV", layer=name,
                                    layer_options={"GEOMETRY": "AS_WKT"})
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
