"""Every row of an imported file through the JSON API's rules (`app.ledger.input`), vectorised where it can be.

A cell is read as the layer declares its property (`app.layers.HAZARD_INPUTS`): a date keeps its day
(2020-01-15, 2020/01/15, with or without a time of day), an array is a list or text separated by `;`, `,`
or `|`, a code (classification, contamination, ...) is read case-insensitively, a number that is an
integer (a reference read as a number by the file's driver) is its integer text.
"""
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
from pydantic import BaseModel, ValidationError
from pyproj import CRS

from app.files.columns import HAZARD_FIELDS, REQUIRED_FIELDS
from app.geometry import (
    THREE_D_WARNING,
    WGS84,
    GeometryError,
    PolygonalGeometry,
    read_polygonal,
    screen_polygonal,
    to_wgs84_densified,
)
from app.layers import EVENT_INPUTS, HAZARD_INPUTS, Property
from app.ledger import NewHazard
from app.ledger.input import HazardProperties, accepted_values, new_hazard, plainly_valid
from app.settings import get_settings

_BY_NAME = {p.name: p for p in HAZARD_INPUTS}


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT:
        return True
    return isinstance(value, str) and not value.strip()


# the codes of the hazards' inputs and of the events' (the history import reads both; no name is in both)
_CODES = {p.name: {v.lower(): v for v in accepted_values(p)} for p in (*HAZARD_INPUTS, *EVENT_INPUTS) if p.values}


def _declared(prop: Property, text: str) -> str:
    """A code as the layer declares it, read case-insensitively (`sha` is SHA); else the text as it is."""
    return _CODES[prop.name].get(text.lower(), text)


def _cell(prop: Property, value: Any) -> Any:
    """What a file's cell says of the property: text, a list of texts (an array), or None (blank)."""
    if _blank(value):
        return None
    if prop.type == "date":
        if isinstance(value, pd.Timestamp | datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        # GIS files write dates as 2020-01-15, 2020/01/15 or with a time of day: keep the day
        found = re.match(r"^(\d{4})[-/](\d{2})[-/](\d{2})(?:[T ]|$)", str(value).strip())
        return "-".join(found.groups()) if found else str(value).strip()
    if prop.type == "array":
        items = list(value) if isinstance(value, list | tuple) else re.split(r"[;,|]", str(value).strip("[] "))
        texts = [str(i).strip().strip("'\"") for i in items]
        return [_declared(prop, t) if prop.values else t for t in texts if t] or None
    if prop.type == "integer":  # a count or a measure: a whole number, however the file's driver read it
        number = str(value).strip()
        return int(float(number)) if re.fullmatch(r"\d+(\.0*)?", number) else number
    if isinstance(value, float) and value.is_integer():  # a reference or code the file's driver read as a number
        return str(int(value))
    text = str(value).strip()
    return _declared(prop, text) if prop.values else text


@dataclass
class Rejected:
    row: int
    external_id: str | None
    errors: list[dict[str, str]]


CHECK_CHUNK = 10_000  # rows screened at a time
_NOT_CACHED = object()


def _column_cells(prop: Property, values: list[Any]) -> list[Any]:
    """`_cell` of every value of a column, computed once per distinct value (floats, whose -0.0 equals
    0.0, and unhashable values each time)."""
    cache: dict[tuple[type, Any], Any] = {}
    out = []
    for value in values:
        if type(value) is float:
            out.append(None if math.isnan(value) else _cell(prop, value))  # NaN: a blank cell
            continue
        try:
            cell = cache.get((type(value), value), _NOT_CACHED)
        except TypeError:
            out.append(_cell(prop, value))
            continue
        if cell is _NOT_CACHED:
            cell = cache[(type(value), value)] = _cell(prop, value)
        out.append(cell)
    return out


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

    The same answer as taking each row through `HazardProperties` and `read_polygonal`, but fast: the
    geometries are checked as one array (`geometry.screen_polygonal`) and the properties one distinct
    value at a time (`app.ledger.input.plainly_valid`); only the rows that do not plainly pass go
    through `read_polygonal` and the `HazardProperties` model one by one, so their messages are
    exactly those of the JSON API.

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
    cells = {target: _column_cells(_BY_NAME[target], frame[column].tolist()) for target, column in columns.items()}
    plain = np.ones(len(frame), dtype=bool)
    for target, values in cells.items():
        verdicts: dict[int, bool] = {}  # by the identity of the (shared) cell value
        prop = _BY_NAME[target]
        plain &= np.fromiter((verdicts[id(v)] if id(v) in verdicts
                              else verdicts.setdefault(id(v), plainly_valid(prop, v, today)) for v in values),
                             dtype=bool, count=len(values))
    for target in REQUIRED_FIELDS:
        if target not in cells:
            plain[:] = False
    hazards: list[NewHazard] = []
    rejected: list[Rejected] = []
    warnings: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    date_cells = [t for t in cells if _BY_NAME[t].type == "date"]
    parsed_days: dict[str, date] = {}
    for index in range(len(frame)):
        number = index + 1
        problems: list[dict[str, str]] = []
        valid: BaseModel | dict[str, Any] | None
        properties = {t: values[index] for t, values in cells.items() if values[index] is not None}
        external_id = properties.get("external_id")
        if plain[index]:  # the model would accept it as it is: only the days to read
            for t in date_cells:
                if (day := properties.get(t)) is not None:
                    properties[t] = parsed_days.get(day) or parsed_days.setdefault(day, date.fromisoformat(day))
            valid = properties
        else:
            try:
                valid = HazardProperties.model_validate(properties)
            except ValidationError as exc:
                valid = None
                for error in exc.errors():
                    target = str(error["loc"][0]) if error["loc"] else "row"
                    problems.append({"field": target, "column": column_of.get(target, target),
                                     "message": error["msg"]})
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
        seen[str(external_id)] = number
        for warning in geometry.warnings:
            warnings.setdefault(warning, []).append(number)
        if geometry.repair:
            warnings.setdefault(f"repaired: {geometry.repair['reason']}", []).append(number)
        assert valid is not None  # no problems: the properties are valid
        hazards.append(new_hazard(valid, geometry))
    return hazards, rejected, warnings
