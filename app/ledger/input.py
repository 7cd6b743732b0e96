"""The rules a hazard's properties follow on the way in: one copy, for the JSON API and the file import.

The rules are those the layer declares for each property a client gives (`app.layers.HAZARD_INPUTS`,
each with its `Input`): a required property must be given; a text has its lengths; a property with
declared values takes one of them (or a value it `accepts` for one: DHA for CHA); an array has at least
`min_length` items, each a declared value, and its `default` when absent; a date is YYYY-MM-DD, not in
the future when so declared, not before its `earliest`.

- `HazardProperties` is the pydantic model made from them: it validates one hazard's properties (the
  JSON API's body, a row of a file that does not plainly pass) and its JSON Schema is the OpenAPI's;
- `plainly_valid` says, for the import's vectorised screening, that the model certainly accepts a cell
  as it is (a cell it cannot vouch for goes through the model, so every message is the model's);
- `new_hazard` turns valid properties and a checked geometry into the ledger's `NewHazard` (a value
  accepted for another recorded as that one, an array's items once each, in their order);
- `EventProperties` and `new_event` do the same for an event's declared properties
  (`app.layers.EVENT_INPUTS`): the JSON API's body extends the model with the geometry and the items
  destroyed (`ItemsDestroyed`);
- `read_features` and `parse_hazards` read GeoJSON features of hazards (the JSON API, the submissions).
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pyproj import CRS

from app.geometry import GeometryError, PolygonalGeometry, read_polygonal
from app.layers import EVENT_INPUTS, HAZARD_INPUTS, Input, Property
from app.ledger.book import NewEvent, NewHazard
from app.ledger.devices import Device
from app.params import EARLIEST_DATE, LATEST_DATE, CalendarDate, IsoDate
from app.problems import Problem
from app.settings import get_settings

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _input(prop: Property) -> Input:
    assert prop.input is not None, f"{prop.name} is not given by the client"
    return prop.input


def accepted_values(prop: Property) -> tuple[str, ...]:
    """The values the property takes on the way in: the declared ones, then those accepted for one."""
    return (*prop.values, *(value for value, _ in _input(prop).accepts))


def _date_rule(name: str, rule: Input) -> Callable[[date], date]:
    def check(value: date) -> date:
        if rule.not_in_future and value > date.today():
            raise ValueError(f"{name} {value} is in the future")
        if rule.earliest is not None and value < rule.earliest:
            raise ValueError(f"{name} {value} is before {rule.earliest}")
        return value

    return check


def _field(prop: Property) -> tuple[Any, Any]:
    """The pydantic (type, FieldInfo) of one declared input."""
    rule = _input(prop)
    kind: Any
    constraints: dict[str, Any] = {}
    if prop.type == "date":
        kind = Annotated[CalendarDate if rule.calendar else IsoDate, AfterValidator(_date_rule(prop.name, rule))]
    elif prop.type == "array":
        kind = list[Literal[accepted_values(prop)]] if prop.values else list[str]  # type: ignore[misc]
        constraints = {"min_length": rule.min_length}
    elif prop.values:
        kind = Literal[accepted_values(prop)]
    elif prop.type == "integer":  # a count or a measure: a JSON integer (strict: true is not 1), not negative
        kind = Annotated[int, Field(strict=True, ge=0)]
    else:
        kind = str
        constraints = {"min_length": rule.min_length, "max_length": rule.max_length}
    constraints = {k: v for k, v in constraints.items() if v is not None}
    if rule.description is not None:
        constraints["description"] = rule.description
    if rule.required:
        return kind, Field(**constraints)
    if rule.default is not None:
        default = list(rule.default)
        return kind, Field(default_factory=lambda: list(default), **constraints)
    return kind | None, Field(None, **constraints)


HazardProperties: type[BaseModel] = create_model(
    "HazardProperties", __config__=ConfigDict(extra="allow"),
    **{p.name: _field(p) for p in HAZARD_INPUTS},  # type: ignore[call-overload]
)
# An event's declared properties; the JSON API's body adds its geometry and the items destroyed.
EventProperties: type[BaseModel] = create_model(
    "EventProperties", __config__=ConfigDict(extra="forbid"),
    **{p.name: _field(p) for p in EVENT_INPUTS},  # type: ignore[call-overload]
)


def plainly_valid(prop: Property, cell: Any, today: date) -> bool:
    """True when `HazardProperties` certainly accepts this cell as the value of `prop` (False: ask the model).

    A cell is what a file's column gives once read (`app.files.checks`): text, a list of texts, or None.
    """
    rule = _input(prop)
    if cell is None:
        return not rule.required
    if prop.type == "date":
        if not isinstance(cell, str) or not _ISO_DAY.match(cell):
            return False
        try:
            value = date.fromisoformat(cell)
        except ValueError:
            return False
        return (not (rule.not_in_future and value > today) and not (rule.earliest and value < rule.earliest)
                and not (rule.calendar and not EARLIEST_DATE <= value <= LATEST_DATE))
    if prop.type == "array":
        return (isinstance(cell, list) and len(cell) >= (rule.min_length or 0)
                and all(isinstance(c, str) and (not prop.values or c in accepted_values(prop)) for c in cell))
    if prop.values:
        return cell in accepted_values(prop)
    return (isinstance(cell, str) and len(cell) >= (rule.min_length or 0)
            and (rule.max_length is None or len(cell) <= rule.max_length))


def new_hazard(properties: BaseModel | Mapping[str, Any], geometry: PolygonalGeometry) -> NewHazard:
    """The ledger's hazard from valid properties (the model's, or plainly valid values with dates as dates).

    A value accepted for another is recorded as that one (DHA as CHA); an array's items once each; an
    absent property takes its default.
    """
    given = properties.model_dump() if isinstance(properties, BaseModel) else properties
    values = {name: given.get(name) for name in _NAMES}
    for name, recorded_as, is_array in _TREATED:
        if (value := values[name]) is None:
            continue
        if recorded_as:
            value = [recorded_as.get(v, v) for v in value] if is_array else recorded_as.get(value, value)
        values[name] = list(dict.fromkeys(value)) if is_array else value
    return NewHazard.checked(geometry, values)


_NAMES = tuple(p.name for p in HAZARD_INPUTS)
# the inputs recorded otherwise than given: what the values accepted for a declared one are recorded as, and
# whether it is an array (its items once each)
_TREATED = tuple((p.name, dict[Any, str](_input(p).accepts), p.type == "array") for p in HAZARD_INPUTS
                 if _input(p).accepts or p.type == "array")


def new_event(properties: BaseModel, geometry: PolygonalGeometry | None, items: dict[str, int],
              organisation_id: uuid.UUID | None = None, devices: list[Device] | None = None) -> NewEvent:
    """The ledger's event from valid properties (an `EventProperties`, or a model that extends it); its
    organisation by name (a declared property) or by its id in the State's register; the devices found
    (app.ledger.devices), or only their counters (`items`)."""
    given = properties.model_dump()
    return NewEvent(geometry=geometry, items=items, organisation_id=organisation_id, devices=devices,
                    **{p.name: given.get(p.name) for p in EVENT_INPUTS})


class ItemsDestroyed(BaseModel):
    # Counts are JSON integers (strict): true is not 1, "3" is not 3.
    model_config = ConfigDict(extra="forbid")
    ap_mines: int = Field(0, ge=0, strict=True)
    improvised_ap_mines: int = Field(0, ge=0, strict=True)
    av_mines: int = Field(0, ge=0, strict=True)
    other_eo: int = Field(0, ge=0, strict=True)


def checked_polygon(geojson: Any, crs: CRS) -> PolygonalGeometry | None:
    """A polygon of a request (an event's, a corrected hazard's), read in its CRS and checked: a 422 naming what
    is wrong; None when none is given."""
    if geojson is None:
        return None
    try:
        return read_polygonal(geojson, crs, max_vertices=get_settings().max_vertices_per_geometry)
    except GeometryError as exc:
        raise Problem(422, f"{exc.where}: {exc.message}", title="Invalid geometry",
                      errors=[{"field": exc.where, "message": exc.message}]) from exc


def read_features(body: Any) -> list[Any]:
    """The features of a GeoJSON Feature or FeatureCollection body (422 when it is neither or empty)."""
    if not isinstance(body, dict) or body.get("type") not in ("Feature", "FeatureCollection"):
        raise Problem(422, "The body must be a GeoJSON Feature or FeatureCollection.")
    if body["type"] == "Feature":
        return [body]
    features = body.get("features")
    if not isinstance(features, list) or not features:
        raise Problem(422, "The FeatureCollection has no features.")
    return features


def parse_hazards(features: list[Any], crs: CRS, repair: bool) -> list[NewHazard]:
    """The ledger's hazards from GeoJSON features in `crs`, all or nothing: a 422 lists every invalid feature."""
    settings = get_settings()
    if len(features) > settings.max_features_per_request:
        raise Problem(413, f"{len(features)} features in one request; the limit is "
                           f"{settings.max_features_per_request}. Split the collection or use the file import.")
    hazards: list[NewHazard] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, feature in enumerate(features):
        problems: list[dict[str, str]] = []
        external_id = None
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            errors.append({"index": i, "external_id": None, "errors": [
                {"field": "type", "message": "each item must be a GeoJSON Feature"}]})
            continue
        props_raw = feature.get("properties") or {}
        external_id = props_raw.get("external_id") if isinstance(props_raw, dict) else None
        props = None
        try:
            props = HazardProperties.model_validate(props_raw)
            external_id = props.model_dump()["external_id"]
        except ValidationError as exc:
            problems += [{"field": "properties." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                         for e in exc.errors()]
        if props and external_id in seen:
            problems.append({"field": "properties.external_id",
                             "message": f"duplicate of feature {seen[external_id]} in this request"})
        geometry = None
        try:
            geometry = read_polygonal(feature.get("geometry"), crs, repair=repair,
                                      max_vertices=settings.max_vertices_per_geometry)
        except GeometryError as exc:
            problems.append({"field": exc.where, "message": exc.message})
        if problems:
            errors.append({"index": i, "external_id": external_id if isinstance(external_id, str) else None,
                           "errors": problems})
            continue
        assert props is not None and geometry is not None  # no problems: both were read
        seen[str(external_id)] = i
        hazards.append(new_hazard(props, geometry))
    if errors:
        listed = "; ".join(
            f"feature {e['index']}" + (f" ({e['external_id']})" if e["external_id"] else "") + ": "
            + ", ".join(f"{p['field']}: {p['message']}" for p in e["errors"])
            for e in errors[:10]
        )
        raise Problem(422, f"{len(errors)} of {len(features)} features are not valid; nothing was stored. {listed}",
                      title="Invalid hazards", invalid_features=errors)
    return hazards
