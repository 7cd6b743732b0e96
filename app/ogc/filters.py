"""OGC API - Features Part 3 (Filtering) and CQL2: the queryables of a collection, and a filter compiled
to a parameterised SQL condition over the collection's source row `f`.

The rules:
- The queryables are the declared properties (`app.layers`) marked `filterable`, with their JSON
  types, and `geometry`: the geometry that `bbox` and the tiles test (a hazard's remaining land, or
  its baseline with `geometry=baseline`; an event's released land).
- A filter is parsed by `cql2` (the CQL2 1.0 grammar and JSON schema, `filter-lang` cql2-text or
  cql2-json), then compiled from its JSON form: every literal becomes a bind parameter, every
  property its declared SQL expression; no text of the request is ever put into SQL.
- What is compiled: AND/OR/NOT; = <> < <= > >= between a property and a literal or another
  property of a comparable type; LIKE, BETWEEN, IN; IS NULL; CASEI; the spatial functions S_*
  (literals in `filter-crs`, CRS84 by default); the array functions A_* on array properties.
  Anything else is a 400 that names the operator, the property or the literal at fault.
- Each queryable of a simple type (string, number, integer, boolean, date, date-time, uuid) is also a
  query parameter: `?region=Battambang` is `region = 'Battambang'`.
"""
from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import cql2
from shapely.errors import GEOSException
from shapely.geometry import shape
from shapely.validation import explain_validity

from app.layers import Property
from app.ogc.crs import CRS84, OutputCrs, defined_at, sql_input_geometry
from app.problems import Problem

FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text")  # cql-text: GDAL's name (the drafts') for CQL2 text
GEOMETRY = "geometry"  # the spatial queryable
SIMPLE_TYPES = ("string", "number", "integer", "boolean", "date", "date-time", "uuid")
_COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {"s_intersects": "ST_Intersects", "s_disjoint": "ST_Disjoint", "s_contains": "ST_Contains",
            "s_within": "ST_Within", "s_touches": "ST_Touches", "s_crosses": "ST_Crosses",
            "s_overlaps": "ST_Overlaps", "s_equals": "ST_Equals"}
_ARRAY = {"a_equals": "=", "a_contains": "@>", "a_containedby": "<@", "a_overlaps": "&&"}
_NUMERIC = ("number", "integer")
_ARITY = {"not": 1, "isnull": 1, "between": 3}  # the number of arguments, where it is not 2
_JSON_SCHEMA: dict[str, dict[str, Any]] = {
                "string": {"type": "string"}, "number": {"type": "number"}, "integer": {"type": "integer"},
                "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
                "date-time": {"type": "string", "format": "date-time"},
                "uuid": {"type": "string", "format": "uuid"},
                "array": {"type": "array", "items": {"type": "string"}}}


def bad_filter(name: str, reason: str) -> Problem:
    return Problem(400, f"Parameter '{name}': {reason}", title="Invalid parameter",
                   invalid_params=[{"name": name, "reason": reason}])


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a declared property type."""
    return dict(_JSON_SCHEMA[kind])


def queryable_properties(properties: tuple[Property, ...]) -> dict[str, Property]:
    return {p.name: p for p in properties if p.filterable}


def queryables_document(properties: tuple[Property, ...], href: str, title: str,
                        values: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The queryables as JSON Schema (OGC API - Features Part 3): the filterable properties and `geometry`;
    `values` gives the allowed values of the enumerated properties."""
    members: dict[str, Any] = {GEOMETRY: {"title": "The feature's geometry (what bbox tests)",
                                          "format": "geometry-any",
                                          "x-ogc-role": "primary-geometry"}}
    for name, prop in queryable_properties(properties).items():
        schema: dict[str, Any] = {"title": name.replace("_", " "), **_JSON_SCHEMA[prop.type]}
        if name in values:
            schema["enum"] = list(values[name])
        members[name] = schema
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": href, "type": "object",
            "title": title, "properties": members, "additionalProperties": False}


@dataclass
class _Compiler:
    queryables: dict[str, Property]
    geometry_sql: str  # the 4326 geometry spatial functions test
    crs: OutputCrs  # filter-crs: the CRS of geometry literals
    params: dict[str, Any]
    parameter: str = "filter"  # the request parameter named in errors
    prefix: str = "cql"
    text_instants: bool = False  # cql-text (GDAL): a quoted date compared with a date property is a date

    def bind(self, value: Any) -> str:
        if isinstance(value, str) and "\x00" in value:
            raise self.fail("a text value holds the NUL character, which no property can hold")
        name = f"{self.prefix}_{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def fail(self, reason: str) -> Problem:
        return bad_filter(self.parameter, reason)

    # --- conditions -------------------------------------------------------------------------------
    def condition(self, node: Any) -> str:
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, dict) and "property" in node:
            sql, kind = self.expression(node)
            if kind != "boolean":
                raise self.fail(f"'{node['property']}' is a {kind}, not a condition: compare it with a value")
            return sql
        if not isinstance(node, dict) or "op" not in node:
            raise self.fail(f"{_show(node)} is not a condition")
        op, args = str(node["op"]).lower(), node.get("args", [])
        arity = _ARITY.get(op, 2)
        if not isinstance(args, list) or (len(args) < 2 if op in ("and", "or") else len(args) != arity):
            raise self.fail(f"{node['op']} takes {'two or more' if op in ('and', 'or') else arity} arguments: "
                            f"{_show(node)}")
        if op in ("and", "or"):
            return "(" + f" {op.upper()} ".join(self.condition(a) for a in args) + ")"
        if op == "not":
            return f"(NOT {self.condition(args[0])})"
        if op in _COMPARISONS:
            return self.comparison(_COMPARISONS[op], args[0], args[1])
        if op == "like":
            left, kind = self.expression(args[0])
            pattern, pattern_kind = self.expression(args[1])
            if kind != "string" or pattern_kind != "string":
                raise self.fail(f"LIKE compares text: {_show(args[0])} LIKE {_show(args[1])}")
            return f"({left} LIKE {pattern})"
        if op == "between":
            return f"({self.comparison('>=', args[0], args[1])} AND {self.comparison('<=', args[0], args[2])})"
        if op == "in":
            if not isinstance(args[1], list) or not args[1]:
                raise self.fail("IN takes a list of values: state IN ('KHM','THA')")
            return "(" + " OR ".join(self.comparison("=", args[0], value) for value in args[1]) + ")"
        if op == "isnull":
            sql, _ = self.expression(args[0])
            return f"({sql} IS NULL)"
        if op in _SPATIAL:
            return f"{_SPATIAL[op]}({self.geometry(args[0])}, {self.geometry(args[1])})"
        if op in _ARRAY:
            return f"({self.array(args[0])} {_ARRAY[op]} {self.array(args[1])})"
        raise self.fail(f"the operator '{node['op']}' is not supported here; supported: AND, OR, NOT, "
                        "=, <>, <, <=, >, >=, LIKE, BETWEEN, IN, IS NULL, CASEI, "
                        f"{', '.join(s.upper() for s in (*_SPATIAL, *_ARRAY))}")

    def comparison(self, op: str, left_node: Any, right_node: Any) -> str:
        left, left_kind = self.expression(left_node)
        if left_kind in ("geometry", "array"):
            raise self.fail(f"{_show(left_node)} is a {left_kind}: use the S_ or A_ functions")
        right, right_kind = self.expression(right_node, like=left_kind)
        if not (left_kind == right_kind or (left_kind in _NUMERIC and right_kind in _NUMERIC)):
            raise self.fail(f"{_show(left_node)} is a {left_kind} and {_show(right_node)} a {right_kind}: "
                            "they cannot be compared")
        return f"({left} {op} {right})"

    # --- expressions: (sql, type) ------------------------------------------------------------------
    def expression(self, node: Any, like: str | None = None) -> tuple[str, str]:
        """An expression's SQL and type; a literal is bound, in the type of `like` where it is text for it
        (a uuid or an instant written as a string)."""
        if isinstance(node, bool):
            return self.bind(node), "boolean"
        if isinstance(node, int | float):
            if not math.isfinite(node):
                raise self.fail(f"{node} is not a finite number")
            if like == "integer" and float(node).is_integer():
                return self.bind(int(node)), "integer"
            return self.bind(float(node)), "number"
        if isinstance(node, str):
            if like in ("date", "date-time") and self.text_instants:
                try:  # GDAL writes a date as '2015-01-01T'
                    instant = _instant(node[:-1] if len(node) == 11 and node[-1] in "Tt" else node)
                except ValueError as exc:
                    raise self.fail(f"'{node}' is not an RFC 3339 {like}") from exc
                return self.bind(instant.date() if like == "date" else instant), like
            if like == "uuid":
                try:
                    return f"CAST({self.bind(str(uuid.UUID(node)))} AS uuid)", "uuid"
                except ValueError as exc:
                    raise self.fail(f"'{node}' is not a uuid") from exc
            return self.bind(node), "string"
        if isinstance(node, dict):
            if "property" in node:
                return self.property(str(node["property"]))
            if "date" in node or "timestamp" in node:
                kind = "date" if "date" in node else "date-time"
                written = str(node.get("date") or node.get("timestamp"))
                try:
                    instant = _instant(written)
                except ValueError as exc:
                    raise self.fail(f"'{written}' is not an RFC 3339 {kind}") from exc
                return self.bind(instant.date() if kind == "date" else instant), kind
            if str(node.get("op", "")).lower() == "casei":
                if not isinstance(node.get("args"), list) or len(node["args"]) != 1:
                    raise self.fail(f"CASEI takes one argument: {_show(node)}")
                sql, kind = self.expression(node["args"][0])
                if kind != "string":
                    raise self.fail(f"CASEI takes text, not {_show(node['args'][0])}")
                return f"lower({sql})", "string"
        raise self.fail(f"{_show(node)} is not a value or property that can be compared here")

    def property(self, name: str) -> tuple[str, str]:
        if name == GEOMETRY:
            return self.geometry_sql, "geometry"
        prop = self.queryables.get(name)
        if prop is None:
            raise self.fail(f"'{name}' is not a queryable; the queryables are "
                            f"{', '.join([GEOMETRY, *self.queryables])} (GET .../queryables)")
        return f"({prop.sql})", prop.type

    def geometry(self, node: Any) -> str:
        if isinstance(node, dict) and node.get("property") == GEOMETRY:
            return self.geometry_sql
        if isinstance(node, dict) and "bbox" in node:
            box = [float(v) for v in node["bbox"]] if isinstance(node["bbox"], list) else []
            if len(box) not in (4, 6):
                raise self.fail(f"{_show(node)}: a BBOX has 4 numbers (or 6)")
            x1, y1, x2, y2 = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
            ring = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
            return self.geometry_literal({"type": "Polygon", "coordinates": [ring]}, _show(node))
        if isinstance(node, dict) and "type" in node:
            return self.geometry_literal(node, _show(node))
        if isinstance(node, dict) and "property" in node:
            raise self.fail(f"'{node['property']}' is not a geometry: the spatial queryable is '{GEOMETRY}'")
        raise self.fail(f"{_show(node)} is not a geometry")

    def geometry_literal(self, geojson: dict[str, Any], shown: str) -> str:
        try:
            geometry = shape(geojson)
        except (GEOSException, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise self.fail(f"{shown} is not a valid geometry ({exc})") from exc
        if not geometry.is_valid:
            raise self.fail(f"{shown} is not a valid geometry ({explain_validity(geometry)})")
        coordinates = [c for part in _parts(geometry) for c in part]
        xs, ys = [c[0] for c in coordinates], [c[1] for c in coordinates]
        if self.crs.north_first:
            xs, ys = ys, xs
        if not coordinates or not defined_at(xs, ys, self.crs.srid):
            raise self.fail(f"{shown} lies outside where {self.crs.uri} is defined (filter-crs; its axis order)")
        return sql_input_geometry(f"ST_GeomFromGeoJSON({self.bind(json.dumps(geojson))})", self.crs)

    def array(self, node: Any) -> str:
        if isinstance(node, list):
            if not all(isinstance(v, str) for v in node):
                raise self.fail(f"{_show(node)}: the arrays hold text values")
            return "ARRAY[" + ", ".join(self.bind(v) for v in node) + "]::text[]" if node else "'{}'::text[]"
        sql, kind = self.expression(node)
        if kind != "array":
            raise self.fail(f"{_show(node)} is not an array")
        return sql


def _parts(geometry: Any) -> list[list[tuple[float, ...]]]:
    if hasattr(geometry, "geoms"):
        return [c for g in geometry.geoms for c in _parts(g)]
    if geometry.geom_type == "Polygon":
        return [list(geometry.exterior.coords), *(list(r.coords) for r in geometry.interiors)]
    return [list(geometry.coords)]


def _instant(value: str) -> datetime:
    """A date or an RFC 3339 timestamp; ValueError otherwise."""
    if "T" not in value and "t" not in value:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day)
    return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))


def _show(node: Any) -> str:
    text = json.dumps(node) if not isinstance(node, str) else repr(node)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_filter(text: str, lang: str | None) -> Any:
    """The CQL2 JSON form of a filter given as cql2-text (the default) or cql2-json; a 400 names the token."""
    lang = (lang or "cql2-text").strip()
    if lang not in FILTER_LANGS:
        raise bad_filter("filter-lang", f"'{lang}' is not offered: use {' or '.join(FILTER_LANGS)}")
    try:
        expression = cql2.parse_json(text) if lang == "cql2-json" else cql2.parse_text(text)
        return expression.to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        raise bad_filter("filter", f"not {lang}: {' '.join(str(exc).split())}") from exc
    except Exception as exc:  # the cql2 text parser raises a bare Exception that names the token and place
        raise bad_filter("filter", f"not {lang}: {' '.join(str(exc).split())}") from exc


def compile_filter(tree: Any, properties: tuple[Property, ...], geometry_sql: str, params: dict[str, Any],
                   crs: OutputCrs = CRS84, lang: str | None = None) -> str:
    """The SQL condition of a parsed filter; its literals are added to `params` as bind parameters."""
    return _Compiler(queryable_properties(properties), geometry_sql, crs, params,
                     text_instants=lang == "cql-text").condition(tree)


def read_queryable_parameters(properties: tuple[Property, ...], params: Mapping[str, str],
                              skip: tuple[str, ...]) -> dict[str, Any]:
    """`?name=value` for each queryable of a simple type (not those in `skip`, read elsewhere): the
    JSON form of `name = value AND ...`, the value read in the property's type; a 400 names the parameter."""
    conditions: dict[str, Any] = {}
    for name, prop in queryable_properties(properties).items():
        value = params.get(name)
        if value is None or value == "" or name in skip or prop.type not in SIMPLE_TYPES:
            continue
        conditions[name] = {"op": "=", "args": [{"property": name}, _typed(name, prop.type, value)]}
    return conditions


def queryable_parameter_names(properties: tuple[Property, ...]) -> tuple[str, ...]:
    return tuple(name for name, p in queryable_properties(properties).items() if p.type in SIMPLE_TYPES)


def compile_parameters(conditions: dict[str, Any], properties: tuple[Property, ...],
                       params: dict[str, Any]) -> list[str]:
    """The SQL of the queryables' query parameters, each compiled on its own (errors name the parameter)."""
    return [_Compiler(queryable_properties(properties), "NULL", CRS84, params, parameter=name,
                      prefix=f"qp_{index}").condition(node)
            for index, (name, node) in enumerate(conditions.items())]


def _typed(name: str, kind: str, value: str) -> Any:
    try:
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if kind == "integer":
            return int(value)
        if kind == "boolean":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if kind == "date":
            return {"date": date.fromisoformat(value).isoformat()}
        if kind == "date-time":
            _instant(value)
            return {"timestamp": value}
        if kind == "uuid":
            return str(uuid.UUID(value))
    except ValueError as exc:
        raise bad_filter(name, f"'{value[:60]}' is not a {kind}") from exc
    return value
