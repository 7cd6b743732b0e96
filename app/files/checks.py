"""Every row of an imported file through the JSON API's rules (`app.ledger.input`), vectorised where it
can be, and the row-by-row reference it is compared with."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import ValidationError
from pyproj import CRS

from app.files.columns import DATE_FIELDS, HAZARD_FIELDS, REQUIRED_FIELDS
from app.geometry import (
    THREE_D_WARNING,
    WGS84,
    GeometryError,
    PolygonalGeometry,
    read_polygonal,
    screen_polygonal,
    to_wgs84_densified,
)
from app.ledger import NewHazard
from app.ledger.input import HazardProperties, new_hazard, plausible_date_of_information
from app.models import CONTAMINATION_TYPES
from app.settings import get_settings


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
        geometry: PolygonalGeometry | None
        if accepted[index]:
            geometry = PolygonalGeometry(geometry=snapped[index], warnings=[THREE_D_WARNING] if three_d[index] else [])
        else:
            geometry, problem = _read_geometry(geometry_array[index], repair, settings.max_vertices_per_geometry)
            if problem is not None:
                problems.append(problem)
        if problems:
            rejected.append(Rejected(number, external_id if isinstance(external_id, str) else None, problems))
            continue
        assert geometry is not None  # no problems: it was read
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
        assert props is not None and geometry is not None  # no problems: both were read
        seen[props.external_id] = number
        for warning in geometry.warnings:
            warnings.setdefault(warning, []).append(number)
        if geometry.repair:
            warnings.setdefault(f"repaired: {geometry.repair['reason']}", []).append(number)
        hazards.append(new_hazard(props, geometry))
    return hazards, rejected, warnings
