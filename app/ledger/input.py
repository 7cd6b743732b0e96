"""The rules a hazard's properties follow on the way in: one copy, for the JSON API and the file import.

`HazardProperties` validates one hazard's properties (the JSON API's body, a row of a file);
`new_hazard` turns valid properties and a checked geometry into the ledger's `NewHazard`;
`read_features` and `parse_hazards` read GeoJSON features of hazards (the JSON API, the submissions).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pyproj import CRS

from app.geometry import GeometryError, PolygonalGeometry, read_polygonal
from app.ledger.book import NewHazard
from app.models import CONTAMINATION_TYPES
from app.params import IsoDate
from app.problems import Problem
from app.settings import get_settings

Contamination = Literal["AP_MINE", "IMPROVISED_AP_MINE", "AV_MINE", "ERW", "CLUSTER_MUNITION", "OTHER"]
assert set(get_args(Contamination)) == set(CONTAMINATION_TYPES)

EARLIEST_DATE_OF_INFORMATION = date(1900, 1, 1)


class HazardProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    external_id: str = Field(min_length=1, max_length=200, description="The national centre's own reference")
    classification: Literal["SHA", "CHA", "DHA"] = Field(description="SHA or CHA (older data's DHA counts as CHA)")
    contamination: list[Contamination] = Field(default_factory=lambda: list[Contamination](["AP_MINE"]),
                                               min_length=1)
    name: str | None = Field(None, max_length=500)
    region: str | None = Field(None, max_length=500)
    recorded_on: IsoDate = Field(description="YYYY-MM-DD, not in the future")
    date_of_information: IsoDate | None = Field(
        None, description="The date the information about the hazard was collected (GICHD Minimum Data "
                          "Requirements): YYYY-MM-DD, from 1900-01-01, not in the future")

    @field_validator("recorded_on")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError(f"recorded_on {value} is in the future")
        return value

    @field_validator("date_of_information")
    @classmethod
    def _plausible_date_of_information(cls, value: date | None) -> date | None:
        if value is None:
            return value
        if value > date.today():
            raise ValueError(f"date_of_information {value} is in the future")
        if value < EARLIEST_DATE_OF_INFORMATION:
            raise ValueError(f"date_of_information {value} is before {EARLIEST_DATE_OF_INFORMATION}")
        return value


class ItemsDestroyed(BaseModel):
    # Counts are JSON integers (strict): true is not 1, "3" is not 3.
    model_config = ConfigDict(extra="forbid")
    ap_mines: int = Field(0, ge=0, strict=True)
    improvised_ap_mines: int = Field(0, ge=0, strict=True)
    av_mines: int = Field(0, ge=0, strict=True)
    other_eo: int = Field(0, ge=0, strict=True)


def plausible_date_of_information(value: date, today: date) -> bool:
    """What `HazardProperties` accepts as a date of information (for the import's fast screening)."""
    return EARLIEST_DATE_OF_INFORMATION <= value <= today


def new_hazard(props: HazardProperties, geometry: PolygonalGeometry) -> NewHazard:
    """The ledger's hazard from valid properties (DHA recorded as CHA, contamination types once each)."""
    return NewHazard(
        external_id=props.external_id, classification="CHA" if props.classification == "DHA" else props.classification,
        recorded_on=props.recorded_on, geometry=geometry, contamination=list(dict.fromkeys(props.contamination)),
        name=props.name, region=props.region, date_of_information=props.date_of_information)


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
        except ValidationError as exc:
            problems += [{"field": "properties." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                         for e in exc.errors()]
        if props and props.external_id in seen:
            problems.append({"field": "properties.external_id",
                             "message": f"duplicate of feature {seen[props.external_id]} in this request"})
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
        seen[props.external_id] = i
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
