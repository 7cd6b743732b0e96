"""Hazardous areas and land-release events (the ledger) over HTTP."""
from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pyproj import CRS
from sqlalchemy.orm import Session

from app import access, ledger
from app.audit import Actor
from app.bodies import JsonBodyRoute
from app.database import get_session
from app.layers import Classification, HazardStatus
from app.ledger import corrections
from app.ledger.devices import Device
from app.ledger.input import (
    EventProperties,
    HazardProperties,
    ItemsDestroyed,
    checked_polygon,
    new_event,
    parse_hazards,
    read_features,
)
from app.ledger.results import EventRecorded, EventVoided, HazardCorrected, HazardCorrections, HazardsRecorded
from app.params import ISO3, MAX_OFFSET, CalendarDate
from app.routers.deps import input_crs, request_actor
from app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["ledger"], route_class=JsonBodyRoute)

class EventIn(EventProperties):  # type: ignore[misc,valid-type]  # the declared properties (app.layers)
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon/MultiPolygon; optional only for a whole-hazard reclassification")
    items_destroyed: ItemsDestroyed = Field(default_factory=lambda: ItemsDestroyed.model_validate({}))
    organisation_id: uuid.UUID | None = Field(
        None, description="The organisation's id in the State's register (instead of, or with, its name: a name "
                          "the register does not know yet is added to it)")
    devices: list[Device] | None = Field(
        None, max_length=10_000, description="The explosive ordnance found, one by one (the counters of "
                                             "items_destroyed are their totals)")


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="Why the hazard is corrected")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="The declared properties to correct (the others are kept): "
                                          + ", ".join(corrections.CORRECTABLE))
    geometry: dict[str, Any] | None = Field(
        None, description="The corrected polygon (GeoJSON Polygon/MultiPolygon, in `crs`): every valid event is "
                          "replayed against it")
    border: Literal["refuse", "accept"] = Field(
        "refuse", description="A corrected polygon beyond the State's boundary: refuse (422) or accept it flagged")


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
    hazards = parse_hazards(read_features(body), crs, repair)
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


@router.patch("/hazards/{hazard_id}", summary="Correct a hazard's declared properties and/or its polygon (a reason "
                                             "is required; the previous values are kept)",
              response_model=HazardCorrected, dependencies=[Depends(access.hazard_writer)],
              responses={409: {"description": "The ledger refuses it (overlap, an event left releasing nothing, "
                                              "external_id taken); nothing changed"},
                         422: {"description": "Invalid, not correctable (classification: a reclassification event), "
                                              "or it changes nothing; nothing changed"}})
def correct_hazard(hazard_id: uuid.UUID, body: CorrectionIn, crs: CRS = Depends(input_crs),
                   session: Session = Depends(get_session), actor: Actor = Depends(request_actor)) -> JSONResponse:
    return JSONResponse(corrections.correct_hazard(session, hazard_id, body.properties,
                                                   checked_polygon(body.geometry, crs), body.reason, actor,
                                                   border=body.border))


@router.get("/hazards/{hazard_id}/corrections", summary="A hazard's corrections: who, when, why, before and after",
            response_model=HazardCorrections, dependencies=[Depends(access.hazard_reader)])
def hazard_corrections(hazard_id: uuid.UUID, session: Session = Depends(get_session)) -> HazardCorrections:
    return HazardCorrections.model_validate({"hazard_id": hazard_id,
                                             "corrections": corrections.corrections_of(session, hazard_id)})


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
    event = new_event(body, checked_polygon(body.geometry, crs), items=body.items_destroyed.model_dump(),
                      organisation_id=body.organisation_id, devices=body.devices)
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
    classification: Classification | None = Query(None),
    status: HazardStatus | None = Query(None),
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
