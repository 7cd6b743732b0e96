"""Hazardous areas and land-release events (the ledger) over HTTP."""
from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyproj import CRS
from sqlalchemy.orm import Session

from app import access, ledger
from app.audit import Actor
from app.bodies import JsonBodyRoute
from app.database import get_session
from app.geometry import GeometryError, read_polygonal
from app.ledger.input import HazardProperties, new_hazard
from app.ledger.results import EventRecorded, EventVoided, HazardsRecorded
from app.models import EVENT_KINDS
from app.params import ISO3, MAX_OFFSET, CalendarDate
from app.problems import Problem
from app.routers.deps import input_crs, request_actor
from app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["ledger"], route_class=JsonBodyRoute)

class ItemsDestroyed(BaseModel):
    # Counts are JSON integers (strict): true is not 1, "3" is not 3.
    model_config = ConfigDict(extra="forbid")
    ap_mines: int = Field(0, ge=0, strict=True)
    improvised_ap_mines: int = Field(0, ge=0, strict=True)
    av_mines: int = Field(0, ge=0, strict=True)
    other_eo: int = Field(0, ge=0, strict=True)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["cancellation", "reduction", "clearance", "reclassification"]
    date: CalendarDate
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon/MultiPolygon; optional only for a whole-hazard reclassification")
    organisation: str | None = Field(None, max_length=500)
    external_id: str | None = Field(None, min_length=1, max_length=200)
    items_destroyed: ItemsDestroyed = Field(default_factory=lambda: ItemsDestroyed.model_validate({}))


assert set(get_args(EventIn.model_fields["kind"].annotation)) == set(EVENT_KINDS)


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="Why the event is voided")


HAZARD_EXAMPLE = {
    "type": "Feature",
    "properties": {"external_id": "KHM-BTB-0001", "classification": "SHA", "contamination": ["AP_MINE"],
                   "name": "Phum Thmei", "region": "Battambang", "recorded_on": "2019-03-01"},
    "geometry": {"type": "Polygon", "coordinates": [[[102.9, 13.0], [102.91, 13.0], [102.91, 13.01],
                                                     [102.9, 13.01], [102.9, 13.0]]]},
}


def _operation(path: str, method: str) -> str:
    """An OpenAPI operationRef to one of this router's operations."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


# OpenAPI links: what a client (and schemathesis' stateful phase) can do next with the ids in an answer.
HAZARD_LINKS = {
    "GetHazard": {"operationRef": _operation("/api/v1/hazards/{hazard_id}", "get"),
                  "parameters": {"hazard_id": "$response.body#/hazards/0/id"},
                  "description": "The first hazard of the answer, as a Feature with its events"},
    "PostEvent": {"operationRef": _operation("/api/v1/hazards/{hazard_id}/events", "post"),
                  "parameters": {"hazard_id": "$response.body#/hazards/0/id"},
                  "description": "Record a land-release event on the first hazard of the answer"},
}
EVENT_LINKS = {
    "GetHazard": {"operationRef": _operation("/api/v1/hazards/{hazard_id}", "get"),
                  "parameters": {"hazard_id": "$response.body#/hazard_id"},
                  "description": "The hazard the event was recorded on"},
    "VoidEvent": {"operationRef": _operation("/api/v1/events/{event_id}/void", "post"),
                  "parameters": {"event_id": "$response.body#/id"}, "description": "Void the event"},
}


def _hazards_body_schema() -> dict[str, Any]:
    """What POST hazards reads, as JSON Schema: a Feature or a FeatureCollection of hazards.

    The properties are HazardProperties' own schema, so the document and the validation agree; what
    JSON Schema cannot say (a valid, closed ring; a date not in the future) is checked on arrival.
    """
    geometry = {"type": "object", "required": ["type", "coordinates"],
                "properties": {"type": {"enum": ["Polygon", "MultiPolygon"]}, "coordinates": {"type": "array"}}}
    feature = {"type": "object", "required": ["type", "properties", "geometry"],
               "properties": {"type": {"const": "Feature"}, "properties": HazardProperties.model_json_schema(),
                              "geometry": geometry}}
    collection = {"type": "object", "required": ["type", "features"],
                  "properties": {"type": {"const": "FeatureCollection"},
                                 "features": {"type": "array", "minItems": 1, "items": feature}}}
    schema = {"oneOf": [feature, collection]}
    return {"required": True, "content": {"application/json": {"schema": schema},
                                          "application/geo+json": {"schema": schema}}}


def _read_features(body: Any) -> list[Any]:
    if not isinstance(body, dict) or body.get("type") not in ("Feature", "FeatureCollection"):
        raise Problem(422, "The body must be a GeoJSON Feature or FeatureCollection.")
    if body["type"] == "Feature":
        return [body]
    features = body.get("features")
    if not isinstance(features, list) or not features:
        raise Problem(422, "The FeatureCollection has no features.")
    return features


def _parse_hazards(features: list[Any], crs: CRS, repair: bool) -> list[ledger.NewHazard]:
    settings = get_settings()
    if len(features) > settings.max_features_per_request:
        raise Problem(413, f"{len(features)} features in one request; the limit is "
                           f"{settings.max_features_per_request}. Split the collection or use the file import.")
    hazards: list[ledger.NewHazard] = []
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


@router.post("/states/{iso3}/hazards", status_code=201, summary="Record hazardous areas (Feature or FeatureCollection)",
             response_model=HazardsRecorded,
             dependencies=[Depends(access.state_writer)], openapi_extra={"requestBody": _hazards_body_schema()},
             responses={201: {"description": "The hazards, created (or some already there)", "links": HAZARD_LINKS},
                        200: {"description": "Every hazard already existed with identical content",
                              "links": HAZARD_LINKS, "model": HazardsRecorded},
                        409: {"description": "An external_id exists with different content"},
                        422: {"description": "Invalid features; nothing stored"}})
def post_hazards(
    iso3: ISO3,
    body: Annotated[dict[str, Any], Body(examples=[HAZARD_EXAMPLE])],
    crs: CRS = Depends(input_crs),
    repair: bool = Query(False, description="Repair invalid geometries with make_valid and report the area change"),
    overlap: Literal["refuse", "clip"] = Query(
        "refuse", description="A hazard overlapping land another hazard of the State counts: refuse (409) or "
                              "clip it to the land not already counted (reported as `clipped`)"),
    border: Literal["refuse", "accept"] = Query(
        "refuse", description="A hazard beyond its State's boundary (more than 2 km, app/places): refuse (422, "
                              "naming where it lies) or accept it flagged (`border_flag`), for a border minefield on "
                              "a disputed or undemarcated border"),
    session: Session = Depends(get_session),
    actor: Actor = Depends(request_actor),
) -> JSONResponse:
    hazards = _parse_hazards(_read_features(body), crs, repair)
    results = ledger.record_hazards(session, iso3.upper(), hazards, actor, clip=overlap == "clip", border=border)
    created = any(r["created"] for r in results)
    return JSONResponse({"hazards": results}, status_code=201 if created else 200)


GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "GeoJSON", "content": {"application/geo+json": {}}}}


@router.get("/hazards/{hazard_id}", summary="A hazard as a GeoJSON Feature of what remains, with its events",
            dependencies=[Depends(access.hazard_reader)], response_class=JSONResponse,
            responses={**GEOJSON_RESPONSE, 404: {"description": "No such hazard (or one the key may not read)"}})
def get_hazard(hazard_id: uuid.UUID, as_of: CalendarDate | None = Query(None, description="Answer for this date"),
               session: Session = Depends(get_session)) -> JSONResponse:
    return JSONResponse(ledger.hazard_feature(session, hazard_id, as_of), media_type="application/geo+json")


@router.post("/hazards/{hazard_id}/events", status_code=201, summary="Record a land-release event on a hazard",
             response_model=EventRecorded,
             dependencies=[Depends(access.hazard_writer)],
             responses={201: {"description": "The event, recorded", "links": EVENT_LINKS},
                        200: {"description": "The same event (external_id) was already recorded",
                              "links": EVENT_LINKS, "model": EventRecorded}})
def post_event(
    hazard_id: uuid.UUID,
    body: EventIn,
    crs: CRS = Depends(input_crs),
    session: Session = Depends(get_session),
    actor: Actor = Depends(request_actor),
) -> JSONResponse:
    geometry = None
    if body.geometry is not None:
        try:
            geometry = read_polygonal(body.geometry, crs, max_vertices=get_settings().max_vertices_per_geometry)
        except GeometryError as exc:
            raise Problem(422, f"{exc.where}: {exc.message}", title="Invalid geometry",
                          errors=[{"field": exc.where, "message": exc.message}]) from exc
    event = ledger.NewEvent(kind=body.kind, date=body.date, geometry=geometry, organisation=body.organisation,
                            external_id=body.external_id, items=body.items_destroyed.model_dump())
    result = ledger.record_event(session, hazard_id, event, actor)
    return JSONResponse(result, status_code=201 if result["created"] else 200)


@router.post("/events/{event_id}/void", summary="Void an event: the hazard is recomputed as if it never happened",
             response_model=EventVoided,
             dependencies=[Depends(access.event_writer)])
def void_event(event_id: uuid.UUID, body: VoidIn, session: Session = Depends(get_session),
               actor: Actor = Depends(request_actor)) -> JSONResponse:
    return JSONResponse(ledger.void_event(session, event_id, body.reason, actor))


@router.get("/states/{iso3}/hazards", summary="A State's hazards (what remains), with filters and paging",
            dependencies=[Depends(access.state_reader)], responses=GEOJSON_RESPONSE)
def list_hazards(
    request: Request,
    iso3: ISO3,
    classification: Literal["SHA", "CHA"] | None = Query(None),
    status: Literal["active", "released"] | None = Query(None),
    as_of: CalendarDate | None = Query(None, description="Answer for this date"),
    limit: int = Query(100, ge=1, le=get_settings().max_page_size,
                       description="Page size, at most LANDRELEASE_MAX_PAGE_SIZE (default 10,000)"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    session: Session = Depends(get_session),
) -> JSONResponse:
    page = ledger.list_hazards(session, iso3.upper(), as_of=as_of, classification=classification, status=status,
                               limit=limit, offset=offset)
    links = []
    if offset + page["numberReturned"] < page["numberMatched"]:
        links.append({"rel": "next", "type": "application/geo+json",
                      "href": str(request.url.include_query_params(offset=offset + limit, limit=limit))})
    if offset > 0:
        links.append({"rel": "prev", "type": "application/geo+json",
                      "href": str(request.url.include_query_params(offset=max(offset - limit, 0), limit=limit))})
    page["links"] = links
    return JSONResponse(page, media_type="application/geo+json")
