"""OGC API - Features Part 4 (draft: create, replace, update, delete) on the ledger's two layers, mapped onto the
ledger and never around it: every write is one of the ledger's own (app.ledger), with its rules and its audit.

- `POST /collections/hazardous_areas/items` records a hazard (`app.ledger.record_hazards`; `overlap` and
  `border` as on the JSON API); for an operator key it is held as a submission for review
  (`app.submissions`): 202 with the submission's Location, nothing in the layer before approval.
- `POST /collections/land_release_events/items` records an event on the hazard its `hazard_id` property names
  (`app.ledger.record_event`; the counters ap_mines, improvised_ap_mines, av_mines, other_eo are its items
  destroyed); an operator's is a land-release report held for review.
- `PUT` (replace: absent properties are cleared) and `PATCH` (update: a JSON merge patch of the feature) of a
  hazard correct it (`app.ledger.corrections`): its declared properties and its polygon, every event replayed.
  A replace that changes nothing is answered 200 and records nothing.
- `DELETE` of an event voids it (`app.ledger.void_event`); it stays readable by its id, `voided: true`. A
  hazard is not deleted (405): the ledger keeps it; it is corrected, or released through events.
- The request body is a GeoJSON Feature in the CRS its `Content-Crs` header names (Part 2: CRS84 by default;
  `<http://www.opengis.net/def/crs/EPSG/0/4326>` is latitude first). The properties are the layer's own:
  those a client gives (the declared inputs of `app.layers`); the ones the ledger computes may be sent back as
  they are (null, or the feature's value, as QGIS does), any other value of them is a 422 naming them.
- A correction or a void needs its reason: the `X-Reason` header (percent-encoded UTF-8 for text beyond
  ASCII) or the `reason` query parameter; without one, a 400 saying so.
- Optimistic locking: each feature has a strong `ETag` (on its reads, and on the answer of a PUT or PATCH:
  read in the write's own transaction, just before it commits, so that it can name no later write), a hash
  of its content (its default representation:
  CRS84, as it stands now), followed for another representation (`crs`, `datetime`, ...) by a hash of that
  request's parameters. `If-Match` on PUT, PATCH and DELETE compares the content part under the hazard's row
  lock; a stale tag is a 412 and nothing is written. `If-Match` is not required (QGIS does not send it).
- `OPTIONS` on the items and on a feature answers `Allow` for the key: GET, HEAD and OPTIONS for every
  reader; POST on the two layers for an editor, an operator (a submission) or an admin; PUT and PATCH on a
  hazard, DELETE on an event, for an editor of its State or an admin.
"""
from __future__ import annotations

import hashlib
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pyproj import CRS
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app import audit, ledger, submissions
from app.access import ApiKey
from app.geometry import WGS84, CRSNotKnown, parse_crs
from app.layers import EVENT_INPUTS, HAZARD_INPUTS, Property
from app.ledger import corrections
from app.ledger.input import EventProperties, ItemsDestroyed, checked_polygon, new_event, parse_hazards
from app.models import ITEM_KINDS
from app.ogc import items
from app.ogc.collections import Collection
from app.ogc.params import ItemsQuery
from app.problems import Problem
from app.submissions.results import ReleaseReport

HAZARDS, EVENTS = "hazardous_areas", "land_release_events"
WRITABLE = (HAZARDS, EVENTS)
READ_METHODS = ("GET", "HEAD", "OPTIONS")
# Part 4 (draft) classes: each tested in tests/test_ogc_part4.py
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
NOT_DELETED = ("A hazard is never deleted: the ledger keeps its history. Correct it (PUT or PATCH, with a reason), "
               "or release its land through events (POST /collections/land_release_events/items, e.g. a "
               "cancellation of the whole polygon when non-technical survey finds no evidence).")


# --- what a key may do -----------------------------------------------------------------------------
def allowed(collection: Collection, key: ApiKey | None) -> list[str]:
    """The methods of the collection's items for this key."""
    writes = ["POST"] if collection.id in WRITABLE and key is not None and key.role in (
        "admin", "editor", "operator") else []
    return sorted((*READ_METHODS, *writes))


def allowed_on_feature(session: Session, collection: Collection, feature_id: str, key: ApiKey | None) -> list[str]:
    """The methods of one feature for this key: its State's editor (or an admin) corrects a hazard, voids an event."""
    writes: tuple[str, ...] = ()
    if collection.id in WRITABLE and key is not None:  # each layer is its table's
        try:
            state = session.execute(text(f"SELECT state_iso3 FROM {collection.id} WHERE id = :id"),
                                    {"id": uuid.UUID(feature_id)}).scalar()
        except ValueError:
            state = None
        if state is not None and key.may_write_ledger(state):
            writes = ("PATCH", "PUT") if collection.id == HAZARDS else ("DELETE",)
    return sorted((*READ_METHODS, *writes))


# --- what a request says ---------------------------------------------------------------------------
def content_crs(value: str | None) -> tuple[CRS, bool]:
    """The CRS of a request body (Part 4 / Part 2 `Content-Crs`, `<uri>`), and whether its axes are latitude
    first (EPSG:4326); CRS84 when not given. An unknown one is a 400."""
    if value is None or not value.strip():
        return WGS84, False
    given = value.strip().removeprefix("<").removesuffix(">").strip()
    try:
        crs = parse_crs(given)
    except CRSNotKnown as exc:
        raise Problem(400, f"Content-Crs: {exc}", title="Unknown CRS",
                      invalid_params=[{"name": "Content-Crs", "reason": str(exc)}]) from exc
    return crs, crs.to_epsg() == 4326 and "crs84" not in given.lower()


def reason(header: str | None, query: str | None) -> str:
    """Why a feature is corrected or voided: the X-Reason header (percent-encoded UTF-8) or the reason parameter."""
    given = (urllib.parse.unquote(header) if header else None) or query
    if given is None or not given.strip():
        raise Problem(400, "Give the reason of this change: the X-Reason header (percent-encoded UTF-8) or the "
                           "reason query parameter. The ledger keeps why every correction and void was made.",
                      title="Reason required", invalid_params=[{"name": "X-Reason", "reason": "missing"}])
    if len(given) > 2000:
        raise Problem(400, "The reason is longer than 2000 characters.", title="Invalid reason")
    return given.strip()


def _swap_axes(node: Any) -> Any:
    if isinstance(node, list) and node and all(isinstance(v, int | float) for v in node):
        return [node[1], node[0], *node[2:]] if len(node) >= 2 else node
    return [_swap_axes(n) for n in node] if isinstance(node, list) else node


def _geometry(feature: dict[str, Any], north_first: bool) -> Any:
    geometry = feature.get("geometry")
    if north_first and isinstance(geometry, dict) and isinstance(geometry.get("coordinates"), list):
        geometry = {**geometry, "coordinates": _swap_axes(geometry["coordinates"])}
    return geometry


def _feature(body: Any, partial: bool = False) -> dict[str, Any]:
    if not isinstance(body, dict) or (not partial and body.get("type") != "Feature"):
        raise Problem(400, "The body must be one GeoJSON Feature ({\"type\": \"Feature\", \"geometry\": ..., "
                           "\"properties\": {...}}).", title="Not a Feature")
    properties = body.get("properties")
    if properties is None and partial:
        properties = {}
    if not isinstance(properties, dict):
        raise Problem(400, "The Feature's properties must be an object.", title="Not a Feature")
    return {**body, "properties": properties}


def _split(collection: Collection, properties: dict[str, Any], inputs: tuple[Property, ...],
           also_given: tuple[str, ...], current: dict[str, Any] | None) -> dict[str, Any]:
    """The properties a client gives (declared inputs and `also_given`); the ones the ledger computes must be
    null or the feature's own value (422 naming them); an unknown one is a 422."""
    given_names = {p.name for p in inputs} | set(also_given)
    declared = {p.name: p for p in collection.properties}
    unknown = sorted(n for n in properties if n not in declared and n not in given_names)
    computed = sorted(n for n, v in properties.items() if n in declared and n not in given_names
                      and v is not None and not _same(v, (current or {}).get(n)))
    if unknown or computed:
        errors = [{"field": f"properties.{n}", "message": f"not a property of {collection.id}"} for n in unknown]
        errors += [{"field": f"properties.{n}", "message": "computed by the ledger: leave it out (or send it "
                                                           "unchanged)"} for n in computed]
        raise Problem(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), title="Invalid properties",
                      errors=errors)
    return {n: v for n, v in properties.items() if n in given_names}


def _same(given: Any, current: Any) -> bool:
    if isinstance(given, int | float) and isinstance(current, int | float) and not isinstance(given, bool):
        return abs(given - current) <= 1e-6 * max(1.0, abs(current))
    return bool(given == current)


# --- versions and ETags ----------------------------------------------------------------------------
def version(session: Session, collection: Collection, feature_id: uuid.UUID) -> tuple[str, dict[str, Any]] | None:
    """The feature's content version (a hash of its default representation, as it stands now) and that
    representation; None when there is no such feature."""
    sql, params = items.feature_select(ItemsQuery(collection=collection), feature_id)
    body = session.execute(text(sql), params).scalar()
    if body is None:
        return None
    return version_of_text(body), json.loads(body)


@contextmanager
def committed_version(session: Session, collection: Collection, feature_id: uuid.UUID) -> Iterator[list[str]]:
    """The feature's content version as the write inside the block commits it: read in that transaction, just
    before its COMMIT (one read after it could be another write's, and an If-Match on that would pass over
    it). Empty when nothing was committed."""
    versions: list[str] = []

    def read(committing: Session) -> None:
        found = version(committing, collection, feature_id)
        if found is not None:
            versions.append(found[0])

    event.listen(session, "before_commit", read)
    try:
        yield versions
    finally:
        event.remove(session, "before_commit", read)


def etag(content_version: str, representation: list[tuple[str, str]]) -> str:
    """The strong ETag of one representation of a feature: its content version, then the request's parameters."""
    if not representation:
        return f'"{content_version}"'
    return f'"{content_version}.{hashlib.sha256(repr(sorted(representation)).encode()).hexdigest()[:8]}"'


def version_of_text(body: str) -> str:
    """The content version of a feature's default representation (its GeoJSON text)."""
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def none_match(if_none_match: str | None, tag: str) -> bool:
    """`If-None-Match` names this ETag (weak comparison, as RFC 9110 has it for GET) or is `*`."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or tag in tags


def _check_if_match(if_match: str | None, current: str) -> None:
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    versions = {t.removeprefix("W/").strip('"').partition(".")[0] for t in tags if not t.startswith("W/")}
    if current not in versions:
        raise Problem(412, "The feature changed since this ETag was read (If-Match): read it again (GET) and "
                           "redo the change on what it is now.", title="Precondition Failed")


def _lock_hazard(session: Session, hazard_id: uuid.UUID, *, checks_overlaps: bool) -> None:
    """The hazard's row lock, after its State's lock when the write checks overlaps (the ledger's lock order)."""
    if checks_overlaps:
        ledger.lock_state_of(session, hazard_id)
    session.execute(text("SELECT id FROM hazardous_areas WHERE id = :id FOR UPDATE"), {"id": hazard_id})


# --- writes ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    """What a write answers: its status, the Location of what it made (a feature, or a submission) and a body."""

    status: int
    body: dict[str, Any]
    location: str | None = None


def create_hazard(collection: Collection, key: ApiKey, body: Any, crs_header: str | None) -> tuple[str, Any]:
    """The State and the hazard a POST of a hazard gives (checked: a 422 lists what is wrong)."""
    feature = _feature(body)
    crs, north_first = content_crs(crs_header)
    given = _split(collection, feature["properties"], HAZARD_INPUTS, ("state",), None)
    iso3 = str(given.pop("state", None) or key.state_iso3 or "").upper()
    if not iso3:
        raise Problem(422, "properties.state: give the State's ISO 3166 alpha-3 code (an admin key has none).",
                      errors=[{"field": "properties.state", "message": "required"}])
    (hazard,) = parse_hazards([{"type": "Feature", "properties": given, "geometry": _geometry(feature, north_first)}],
                              crs, repair=False)
    return iso3, hazard


def record_hazard(session: Session, key: ApiKey, iso3: str, hazard: Any, overlap: str, border: str,
                  base: str) -> Written:
    if key.role == "operator":
        session.rollback()
        held = submissions.submit(iso3, submissions.hazard_report([hazard]), key.actor,
                                  organisation_id=key.organisation_id, direct=False)
        return Written(202, held.model_dump(mode="json"), f"{base}/api/v1/submissions/{held.id}")
    (result,) = ledger.record_hazards(session, iso3, [hazard], key.actor, clip=overlap == "clip", border=border)
    return Written(201 if result["created"] else 200, result, f"{base}/collections/{HAZARDS}/items/{result['id']}")


def create_event(collection: Collection, body: Any, crs_header: str | None) -> tuple[uuid.UUID, dict[str, Any], Any]:
    """The hazard, the properties and the geometry a POST of an event gives (checked: 422)."""
    feature = _feature(body)
    crs, north_first = content_crs(crs_header)
    given = _split(collection, feature["properties"], EVENT_INPUTS, ("hazard_id", "organisation_id", *ITEM_KINDS),
                   None)
    try:
        hazard_id = uuid.UUID(str(given.pop("hazard_id")))
    except (KeyError, ValueError) as exc:
        raise Problem(422, "properties.hazard_id: give the id of the hazard the event released land of.",
                      errors=[{"field": "properties.hazard_id", "message": "required, a hazard's id"}]) from exc
    return hazard_id, given, checked_polygon(_geometry(feature, north_first), crs)


def _event_parts(given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int], uuid.UUID | None]:
    counts = {k: given.pop(k) for k in ITEM_KINDS if given.get(k) is not None}
    for k in ITEM_KINDS:
        given.pop(k, None)
    organisation_id = given.pop("organisation_id", None)
    try:
        return given, ItemsDestroyed.model_validate(counts).model_dump(), (
            uuid.UUID(str(organisation_id)) if organisation_id else None)
    except (ValidationError, ValueError) as exc:
        raise Problem(422, f"The items destroyed or the organisation_id are not valid: {exc}") from exc


def record_event(session: Session, key: ApiKey, iso3: str, hazard_id: uuid.UUID, given: dict[str, Any],
                 geometry: Any, base: str) -> Written:
    properties, counts, organisation_id = _event_parts(dict(given))
    if key.role == "operator":
        report = _validated(ReleaseReport, {**properties, "items_destroyed": counts})
        session.rollback()
        held = submissions.submit(iso3, submissions.release_report(hazard_id, report, geometry), key.actor,
                                  organisation_id=key.organisation_id, direct=False)
        return Written(202, held.model_dump(mode="json"), f"{base}/api/v1/submissions/{held.id}")
    event = new_event(_validated(EventProperties, properties), geometry, items=counts, organisation_id=organisation_id)
    result = ledger.record_event(session, hazard_id, event, key.actor)
    return Written(201 if result["created"] else 200, result, f"{base}/collections/{EVENTS}/items/{result['id']}")


def _validated(model: Any, values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [{"field": "properties." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        raise Problem(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), title="Invalid properties",
                      errors=errors) from exc


def correct_hazard(session: Session, collection: Collection, hazard_id: uuid.UUID, body: Any,
                   crs_header: str | None, why: str, if_match: str | None, actor: audit.Actor, *, replace: bool,
                   border: str) -> Written:
    """PUT (replace) or PATCH (merge) of a hazard, as a correction through the ledger, under its row lock."""
    feature = _feature(body, partial=not replace)
    crs, north_first = content_crs(crs_header)
    _lock_hazard(session, hazard_id, checks_overlaps=corrections.checks_overlaps(
        feature["properties"], feature.get("geometry") is not None))
    found = version(session, collection, hazard_id)
    if found is None:
        raise Problem(404, f"No feature '{hazard_id}' in {collection.id}")
    current_version, current = found
    _check_if_match(if_match, current_version)
    given = _split(collection, feature["properties"], HAZARD_INPUTS, (), current["properties"])
    if replace:  # what a replace leaves out is cleared (the class is not corrected: it stays)
        given = {p.name: given.get(p.name) for p in HAZARD_INPUTS if p.name in given or p.name != "classification"}
        if feature.get("geometry") is None:
            raise Problem(422, "geometry: a replace (PUT) gives the whole feature, its polygon too; PATCH changes "
                               "only what it gives.", errors=[{"field": "geometry", "message": "required"}])
    geometry = checked_polygon(_geometry(feature, north_first), crs)
    result = corrections.correct_hazard(session, hazard_id, given, geometry, why, actor, border=border,
                                        unchanged_ok=True)
    return Written(200, result or {"id": str(hazard_id), "correction_id": None, "unchanged": True})


def void_event(session: Session, collection: Collection, event_id: uuid.UUID, why: str, if_match: str | None,
               actor: audit.Actor) -> Written:
    """DELETE of an event: it is voided (the hazard replayed as if it never happened), under the hazard's lock."""
    hazard_id = session.execute(text("SELECT hazard_id FROM land_release_events WHERE id = :id"),
                                {"id": event_id}).scalar()
    if hazard_id is None:
        raise Problem(404, f"No feature '{event_id}' in {collection.id}")
    _lock_hazard(session, hazard_id, checks_overlaps=True)  # a void may give land back
    found = version(session, collection, event_id)
    assert found is not None  # the event exists (a voided one is still readable by id)
    _check_if_match(if_match, found[0])
    return Written(200, ledger.void_event(session, event_id, why, actor))
