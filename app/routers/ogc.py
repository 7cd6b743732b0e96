"""OGC API - Features (Part 1 Core, Part 2 CRS, Part 3 Filtering and queryables, Part 4 writes), OGC API -
Tiles: thin HTTP over app.ogc (the writes over app.ogc.transactions, onto the ledger).

Every 200 carries its whole document: an items page is made in full before its status line (and sent
with its Content-Length), a tile is made before it is sent. The reads that depend on the ledger carry
an ETag and answer a matching If-None-Match with 304 before any work (app/http_cache.py).
"""
from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app import access, http_cache
from app.access import ApiKey
from app.bodies import JsonBodyRoute
from app.database import get_session
from app.ogc import collections as ogc_collections
from app.ogc import crs, filters, html, openapi30, params, tiles, tilesets, transactions
from app.ogc import items as features
from app.problems import Problem
from app.read_routing import read_engine

router = APIRouter(tags=["OGC API - Features"])

# The parameters OGC API - Features (Parts 1, 2 and 3) defines: their schemas stay exactly as the standard has them.
OGC_PARAMETERS = ("limit", "bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs")


def _declared(parameters: list[dict[str, Any]], names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """app.ogc.params' query parameters as OpenAPI should state them: an empty value (`?geometry=`) is
    read as the parameter left out, so this service's own parameters declare it next to their schema."""
    return [p if p["name"] in OGC_PARAMETERS else {**p, "schema": {"anyOf": [p["schema"], {"const": ""}]}}
            for p in parameters if names is None or p["name"] in names]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _params(request: Request) -> dict[str, str]:
    """The query parameters, each given once (`?limit=0&limit=` is a 400, not a guess at which counts),
    OGC's own ones with a value (`?bbox=` is no bounding box: a 400, as its schema says)."""
    for name in request.query_params:
        if len(request.query_params.getlist(name)) > 1:
            raise params.bad_parameter(name, "given more than once: give it once")
        if name in OGC_PARAMETERS and not request.query_params[name].strip():
            raise params.bad_parameter(name, "empty: give a value or leave the parameter out")
    return dict(request.query_params)


def _representation(request: Request) -> tuple[bool, dict[str, str]]:
    """Whether the answer is HTML (app.ogc.html), and the parameters to read (`f=html` taken out of them)."""
    given = _params(request)
    as_html = html.wants_html(request)
    if as_html:
        given.pop("f", None)
    return as_html, given


def _crs_header(query: params.ItemsQuery) -> dict[str, str]:
    return {"Content-Crs": f"<{query.crs.uri}>"}


def _items_link_header(request: Request, collection_id: str) -> dict[str, str]:
    """The page's self link and its collection's queryables as an HTTP Link header too (RFC 8288; OGC API -
    Features Part 3 finds the queryables of a filterable resource there), the URL's separators escaped."""
    href = str(request.url).replace(",", "%2C").replace(";", "%3B").replace(">", "%3E")
    queryables = f"{_base(request)}/collections/{collection_id}/queryables"
    return {"Link": f'<{href}>; rel="self"; type="{ogc_collections.GEOJSON}", '
                    f'<{queryables}>; rel="http://www.opengis.net/def/rel/ogc/1.0/queryables"; '
                    f'type="application/schema+json"'}


@router.get("/", summary="Landing page (OGC API - Features)")
def landing(request: Request) -> Response:
    document = ogc_collections.landing_page(_base(request))
    return html.landing(document) if html.wants_html(request) else JSONResponse(document)


@router.get("/api", summary="The API definition as OpenAPI 3.0", include_in_schema=False)
def api_definition(request: Request) -> JSONResponse:
    return JSONResponse(openapi30.openapi_30(request.app.openapi()),
                        media_type="application/vnd.oai.openapi+json;version=3.0")


@router.get("/conformance", summary="The conformance classes implemented")
def conformance(request: Request) -> Response:
    classes = ogc_collections.CONFORMANCE + transactions.CONFORMANCE + tilesets.CONFORMANCE + html.CONFORMANCE
    return html.conformance(classes) if html.wants_html(request) else JSONResponse({"conformsTo": classes})


@router.get("/collections", summary="The feature collections")
def collections(request: Request, key: ApiKey | None = Depends(access.public_reader),
                engine: Engine = Depends(read_engine)) -> Response:
    base = _base(request)
    states = access.readable_states(key)
    as_html = html.wants_html(request)
    cache = http_cache.validator(request, engine, states, "html" if as_html else "json")
    if cache.matches(request):
        return cache.not_modified()
    with engine.connect() as conn:
        documents = [ogc_collections.collection_document(conn, c, base, states)
                     for c in ogc_collections.readable_collections(key)]
    document = {
        "links": [{"rel": "self", "type": "application/json", "title": "The collections",
                   "href": f"{base}/collections"}],
        "collections": documents,
        "crs": crs.LISTED_CRS,
    }
    return html.collections(document, cache.headers) if as_html else JSONResponse(document, headers=cache.headers)


@router.get("/collections/{collectionId}", summary="One feature collection")
def collection(collectionId: str, request: Request,  # noqa: N803 (OGC's parameter name)
               key: ApiKey | None = Depends(access.public_reader),
               engine: Engine = Depends(read_engine)) -> Response:
    found = ogc_collections.collection_or_404(collectionId, key)
    as_html = html.wants_html(request)
    cache = http_cache.validator(request, engine, access.readable_states(key), "html" if as_html else "json")
    if cache.matches(request):
        return cache.not_modified()
    with engine.connect() as conn:
        document = ogc_collections.collection_document(conn, found, _base(request), access.readable_states(key))
    return html.collection(document, cache.headers) if as_html else JSONResponse(document, headers=cache.headers)


@router.get("/collections/{collectionId}/queryables", summary="The queryables of a collection (JSON Schema)",
            responses={200: {"content": {"application/schema+json": {}}}, 404: {"description": "Unknown collection"}})
def queryables(collectionId: str, request: Request,  # noqa: N803
               key: ApiKey | None = Depends(access.public_reader)) -> JSONResponse:
    found = ogc_collections.collection_or_404(collectionId, key)
    href = f"{_base(request)}/collections/{found.id}/queryables"
    return JSONResponse(filters.queryables_document(found.properties, href, f"Queryables of {found.title}",
                                                    params.FILTER_VALUES),
                        media_type="application/schema+json")


@router.get("/collections/{collectionId}/items", summary="Features, streamed as GeoJSON, with paging links",
            response_class=StreamingResponse,
            responses={200: {"content": {ogc_collections.GEOJSON: {}}, "description": "A GeoJSON FeatureCollection"},
                       400: {"description": "A parameter is not valid"},
                       404: {"description": "Unknown collection"}},
            openapi_extra={"parameters": _declared(openapi30.items_parameters())})
def items(collectionId: str, request: Request,  # noqa: N803
          key: ApiKey | None = Depends(access.public_reader),
          engine: Engine = Depends(read_engine)) -> Response:
    found = ogc_collections.collection_or_404(collectionId, key)
    as_html, given = _representation(request)
    with engine.connect() as conn:
        query = params.read_items_query(found, given, conn)
    access.scope_filters(key, query.filters, public=found.public)
    if as_html:
        query.limit = min(query.limit, html.HTML_MAX_LIMIT)
    cache = http_cache.validator(request, engine, access.readable_states(key), "html" if as_html else "json")
    if cache.matches(request):
        return cache.not_modified()

    def links(returned: int, has_next: bool, last_id: uuid.UUID | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"rel": "self", "type": ogc_collections.GEOJSON, "href": str(request.url)}]
        if has_next:
            after = str(last_id)
            if query.sortby and last_id is not None:  # keyset paging under sortby: the last feature's sort values
                values = features.sort_values(query, last_id, engine)
                after = params.after_token(last_id, values) if values is not None else ""
            following = request.url.include_query_params(offset=query.offset + query.limit, limit=query.limit,
                                                         after=after)
            if not after:  # the last feature left the layer meanwhile: the next page by its offset
                following = following.remove_query_params("after")
            out.append({"rel": "next", "type": ogc_collections.GEOJSON, "title": "Next page", "href": str(following)})
        if query.offset > 0:
            out.append({"rel": "prev", "type": ogc_collections.GEOJSON, "title": "Previous page", "href": str(
                request.url.remove_query_params("after").include_query_params(
                    offset=max(query.offset - query.limit, 0), limit=query.limit))})
        out.append({"rel": "collection", "type": "application/json",
                    "href": f"{_base(request)}/collections/{found.id}"})
        return out

    # The page is made in full before the status line goes out: a database error (a timeout, a bad
    # transform, a lost connection) is a problem+json answer, never a 200 with a document cut short. The
    # Content-Length makes anything failing after that (the spool, read back) a transfer error for the client.
    if as_html:
        document = json.loads(b"".join(features.make_page(query, links, engine).chunks()))
        return html.items(found.id, found.title, found.properties, document, cache.headers)
    # Compressed (for a client that takes it) from the spool into another once the statements are done.
    page = features.make_page(query, links, engine).encoded(
        http_cache.chosen_encoding(request.headers.get("accept-encoding")))
    headers = {**_crs_header(query), **_items_link_header(request, found.id), **cache.headers,
               "Content-Length": str(page.size)}
    if page.encoding:
        headers["Content-Encoding"] = page.encoding
    return StreamingResponse(page.chunks(), media_type=ogc_collections.GEOJSON, headers=headers)


@router.get("/collections/{collectionId}/items/{featureId}", summary="One feature",
            responses={200: {"content": {ogc_collections.GEOJSON: {}}}, 404: {"description": "Unknown feature"}},
            openapi_extra={"parameters": _declared(openapi30.items_parameters(),
                                                   ("crs", "datetime", "geometry", "f"))})
def item(collectionId: str, featureId: str, request: Request,  # noqa: N803
         key: ApiKey | None = Depends(access.public_reader),
         engine: Engine = Depends(read_engine)) -> Response:
    found = ogc_collections.collection_or_404(collectionId, key)
    as_html, given = _representation(request)
    with engine.connect() as conn:
        query = params.read_feature_params(found, given, conn)
    access.scope_filters(key, query.filters, public=found.public)
    cache = http_cache.validator(request, engine, access.readable_states(key), "html" if as_html else "json")
    if cache.matches(request):
        return cache.not_modified()
    body = features.feature_text(query, featureId, engine)
    if as_html:
        return html.item(found.id, found.title, found.properties, json.loads(body), cache.headers)
    headers = cache.headers
    if found.id in transactions.WRITABLE:  # a strong ETag, the one If-Match on a write compares (Part 4)
        representation = sorted(request.query_params.multi_items())
        default = features.feature_text(params.ItemsQuery(collection=found), featureId, engine) \
            if representation else body
        headers = {**headers, "ETag": transactions.etag(transactions.version_of_text(default), representation)}
        if transactions.none_match(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers=headers)
    base = _base(request)
    links = [{"rel": "self", "type": ogc_collections.GEOJSON, "href": str(request.url)},
             {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{found.id}"}]
    body = body[:-1] + ',"links":' + json.dumps(links) + "}"
    return Response(body, media_type=ogc_collections.GEOJSON, headers={**_crs_header(query), **headers})


# --- OGC API - Features Part 4 (draft): writes onto the ledger (app.ogc.transactions) -----------------------
writes = APIRouter(tags=["OGC API - Features Part 4"], route_class=JsonBodyRoute)

_GEOMETRY_SCHEMA = {"type": "object", "nullable": True, "required": ["type", "coordinates"],
                    "properties": {"type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
                                   "coordinates": {"type": "array", "items": {}}}}
_FEATURE_SCHEMA = {"type": "object", "required": ["type", "properties"],
                   "properties": {"type": {"type": "string", "enum": ["Feature"]}, "geometry": _GEOMETRY_SCHEMA,
                                  "properties": {"type": "object", "additionalProperties": True}}}


def _feature_body(*media_types: str) -> dict[str, Any]:
    return {"required": True, "description": "A GeoJSON Feature of the collection, in the CRS of Content-Crs",
            "content": {m: {"schema": _FEATURE_SCHEMA} for m in media_types}}


_CONTENT_CRS = Header(None, alias="Content-Crs", description="The CRS of the body's coordinates, e.g. "
                      "<http://www.opengis.net/def/crs/EPSG/0/32648> (default CRS84, lon/lat; EPSG:4326 is lat/lon)")
_IF_MATCH = Header(None, alias="If-Match", description="The feature's ETag as read: a stale one is a 412 (optional)")
_X_REASON = Header(None, alias="X-Reason", description="Why the feature is corrected or voided (required here or "
                                                       "as `reason`; percent-encoded UTF-8)")
_REASON = Query(None, description="Why the feature is corrected or voided (or the X-Reason header)",
                min_length=1, max_length=2000)
_BORDER = Query("refuse", description="A polygon beyond its State's boundary: refuse (422) or accept it flagged")
_WRITE_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a Feature, an unknown Content-Crs, no reason"},
    403: {"description": "The key may not write this State's ledger"},
    404: {"description": "Unknown collection or feature"},
    405: {"description": "Not a write this collection (or feature) takes: Allow says which"},
    409: {"description": "The ledger refuses it (overlap, external_id, ...); nothing written"},
    412: {"description": "If-Match names a stale ETag; nothing written"},
    422: {"description": "Invalid properties or geometry, or a ledger rule; nothing written"},
}


def _not_allowed(detail: str, allow: list[str]) -> Problem:
    return Problem(405, detail, title="Method Not Allowed", headers={"Allow": ", ".join(allow)})


@router.options("/collections/{collectionId}/items", include_in_schema=False)
def items_options(collectionId: str, key: ApiKey | None = Depends(access.optional_key)) -> Response:  # noqa: N803
    found = ogc_collections.collection_or_404(collectionId, key)
    return Response(status_code=204, headers={"Allow": ", ".join(transactions.allowed(found, key))})


@router.options("/collections/{collectionId}/items/{featureId}", include_in_schema=False)
def item_options(collectionId: str, featureId: str, key: ApiKey | None = Depends(access.optional_key),  # noqa: N803
                 session: Session = Depends(get_session)) -> Response:
    found = ogc_collections.collection_or_404(collectionId, key)
    allow = transactions.allowed_on_feature(session, found, featureId, key)
    return Response(status_code=204, headers={"Allow": ", ".join(allow)})


@writes.post("/collections/{collectionId}/items", status_code=201,
             summary="Record a hazard, or a land-release event (its hazard_id a property); an operator's is held "
                     "as a submission for review (202)",
             openapi_extra={"requestBody": _feature_body(ogc_collections.GEOJSON, "application/json")},
             responses={201: {"description": "Recorded: Location is the new feature"},
                        200: {"description": "The same feature (external_id, identical content) was there already"},
                        202: {"description": "An operator's: held as a submission (Location) until approved"},
                        **_WRITE_ANSWERS})
def create_item(
    collectionId: str,  # noqa: N803
    request: Request,
    body: Annotated[Any, Body()],
    content_crs: str | None = _CONTENT_CRS,
    overlap: Literal["refuse", "clip"] = Query("refuse", description="A hazard overlapping land another hazard of "
                                                                     "the State counts: refuse (409) or clip it"),
    border: Literal["refuse", "accept"] = _BORDER,
    key: ApiKey = Depends(access.authenticated_key),
    session: Session = Depends(get_session),
) -> JSONResponse:
    found = ogc_collections.collection_or_404(collectionId, key)
    if found.id not in transactions.WRITABLE:
        raise _not_allowed(f"{found.id} is read-only: the ledger's layers are {', '.join(transactions.WRITABLE)}.",
                           transactions.allowed(found, key))
    check = access.submitter if key.role == "operator" else access.state_writer
    if found.id == transactions.HAZARDS:
        iso3, hazard = transactions.create_hazard(found, key, body, content_crs)
        check(iso3, key)
        written = transactions.record_hazard(session, key, iso3, hazard, overlap, border, _base(request))
    else:
        hazard_id, given, geometry = transactions.create_event(found, body, content_crs)
        iso3 = access.state_of_hazard(session, hazard_id, key)
        check(iso3, key)
        written = transactions.record_event(session, key, iso3, hazard_id, given, geometry, _base(request))
    return JSONResponse(written.body, status_code=written.status,
                        headers={"Location": written.location} if written.location else None)


def _correct(collection_id: str, feature_id: str, body: Any, content_crs: str | None, x_reason: str | None,
             reason: str | None, if_match: str | None, border: str, key: ApiKey, session: Session,
             replace: bool) -> JSONResponse:
    found = ogc_collections.collection_or_404(collection_id, key)
    if found.id != transactions.HAZARDS:
        raise _not_allowed(f"A feature of {found.id} is not replaced or updated"
                           + (": an event is voided (DELETE, with its reason) and recorded again."
                              if found.id == transactions.EVENTS else "."),
                           transactions.allowed_on_feature(session, found, feature_id, key))
    hazard_id = features.feature_id_or_404(params.ItemsQuery(collection=found), feature_id)
    access.hazard_writer(hazard_id, key, session)
    with transactions.committed_version(session, found, hazard_id) as versions:
        written = transactions.correct_hazard(session, found, hazard_id, body, content_crs,
                                              transactions.reason(x_reason, reason), if_match, key.actor,
                                              replace=replace, border=border)
    return JSONResponse(written.body, headers={"ETag": transactions.etag(versions[-1], [])} if versions else None)


@writes.put("/collections/{collectionId}/items/{featureId}",
            summary="Replace a hazard: a correction through the ledger (its reason required; the events replayed)",
            openapi_extra={"requestBody": _feature_body(ogc_collections.GEOJSON, "application/json")},
            responses={200: {"description": "Corrected (or unchanged); ETag is the feature's new one"},
                       **_WRITE_ANSWERS})
def replace_item(collectionId: str, featureId: str, body: Annotated[Any, Body()],  # noqa: N803
                 content_crs: str | None = _CONTENT_CRS, x_reason: str | None = _X_REASON,
                 reason: str | None = _REASON, if_match: str | None = _IF_MATCH,
                 border: Literal["refuse", "accept"] = _BORDER, key: ApiKey = Depends(access.authenticated_key),
                 session: Session = Depends(get_session)) -> JSONResponse:
    return _correct(collectionId, featureId, body, content_crs, x_reason, reason, if_match, border, key, session,
                    replace=True)


@writes.patch("/collections/{collectionId}/items/{featureId}",
              summary="Update a hazard (a JSON merge patch of the feature): a correction through the ledger",
              openapi_extra={"requestBody": _feature_body("application/merge-patch+json", ogc_collections.GEOJSON,
                                                          "application/json")},
              responses={200: {"description": "Corrected (or unchanged); ETag is the feature's new one"},
                         **_WRITE_ANSWERS})
def update_item(collectionId: str, featureId: str, body: Annotated[Any, Body()],  # noqa: N803
                content_crs: str | None = _CONTENT_CRS, x_reason: str | None = _X_REASON,
                reason: str | None = _REASON, if_match: str | None = _IF_MATCH,
                border: Literal["refuse", "accept"] = _BORDER, key: ApiKey = Depends(access.authenticated_key),
                session: Session = Depends(get_session)) -> JSONResponse:
    return _correct(collectionId, featureId, body, content_crs, x_reason, reason, if_match, border, key, session,
                    replace=False)


@writes.delete("/collections/{collectionId}/items/{featureId}",
               summary="Void a land-release event (its reason required): the hazard is replayed as if it never "
                       "happened; a hazard is not deleted (405)",
               responses={200: {"description": "Voided: the event stays readable by its id, voided"},
                          **_WRITE_ANSWERS})
def delete_item(collectionId: str, featureId: str, x_reason: str | None = _X_REASON,  # noqa: N803
                reason: str | None = _REASON, if_match: str | None = _IF_MATCH,
                key: ApiKey = Depends(access.authenticated_key),
                session: Session = Depends(get_session)) -> JSONResponse:
    found = ogc_collections.collection_or_404(collectionId, key)
    if found.id != transactions.EVENTS:
        raise _not_allowed(transactions.NOT_DELETED if found.id == transactions.HAZARDS
                           else f"{found.id} is read-only.",
                           transactions.allowed_on_feature(session, found, featureId, key))
    event_id = features.feature_id_or_404(params.ItemsQuery(collection=found), featureId)
    access.event_writer(event_id, key, session)
    written = transactions.void_event(session, found, event_id, transactions.reason(x_reason, reason), if_match,
                                      key.actor)
    return JSONResponse(written.body)


TILE_MATRIX_SET_ID = {"name": "tileMatrixSetId", "in": "path", "required": True,
                      "schema": {"type": "string", "enum": list(tilesets.TILE_MATRIX_SETS)}}


@router.get("/tileMatrixSets", summary="The tile matrix sets the vector tiles are cut in (OGC API - Tiles)")
def tile_matrix_sets(request: Request) -> JSONResponse:
    return JSONResponse(tilesets.tile_matrix_sets(_base(request)))


@router.get("/tileMatrixSets/{tileMatrixSetId}", summary="One tile matrix set (OGC Tile Matrix Set 2.0 JSON)",
            responses={404: {"description": "Unknown tile matrix set"}})
def tile_matrix_set(tileMatrixSetId: str, request: Request) -> JSONResponse:  # noqa: N803
    return JSONResponse(tilesets.tile_matrix_set_or_404(tileMatrixSetId).definition(_base(request)))


def _extent_bbox(conn: Connection, found: ogc_collections.Collection, key: ApiKey | None) -> list[float]:
    extent = ogc_collections.collection_extent(conn, found, access.readable_states(key))
    return [float(v) for v in extent["spatial"]["bbox"][0]]


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}/{z}/{x}/{y}",
            summary="A Mapbox vector tile of the collection (z/x/y of WebMercatorQuad or WorldCRS84Quad)",
            description="z/x/y: the tile matrix (zoom), the column (x) and the row (y) counted from the top "
                        "(OGC API - Tiles' tileMatrix/tileCol/tileRow; for WebMercatorQuad the XYZ convention of "
                        "web maps). The same filters as items; 204 when the tile is empty; 400 when z/x/y is not a "
                        "tile of the tile matrix set.",
            response_class=Response,
            responses={200: {"content": {tilesets.MVT: {}}, "description": "The tile"},
                       204: {"description": "No features in this tile"},
                       400: {"description": "A parameter (or z/x/y) is not valid"},
                       404: {"description": "Unknown collection or tile matrix set"}},
            openapi_extra={"parameters": _declared(
                [p for p in openapi30.items_parameters()
                 if p["name"] not in openapi30.ITEMS_ONLY])})
def tile(collectionId: str, tileMatrixSetId: str, z: str, x: str, y: str, request: Request,  # noqa: N803
         engine: Engine = Depends(read_engine)) -> Response:
    # one connection for the key, the parameters, the validator and the tile, each statement its own
    # transaction (autocommit: no BEGIN and ROLLBACK round trips; the validator is read before the tile
    # or by the tile's own statement, never after it)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        key = access.public_reader_on(request, conn)
        found = ogc_collections.collection_or_404(collectionId, key)
        tms = tilesets.tile_matrix_set_or_404(tileMatrixSetId)
        zoom, column, row = tiles.read_tile_address(z, x, y, tms)
        query = params.read_items_query(found, _params(request), conn, paging=False)
        access.scope_filters(key, query.filters, public=found.public)
        states = access.readable_states(key)
        if request.headers.get("if-none-match"):  # the validator first: a 304 makes no tile
            cache = http_cache.validator(request, conn, states)
            if cache.matches(request):
                return cache.not_modified()
            data = tiles.tile(query, tms, zoom, column, row, conn)
        else:  # the validator read by the tile's own statement: one round trip
            data, (snapshot, last_write) = tiles.tile_beside(http_cache.SNAPSHOT_COLUMNS, query, tms, zoom, column,
                                                             row, conn)
            cache = http_cache.validator_of(request, snapshot, last_write, states)
    if not data:
        return Response(status_code=204, headers=cache.headers)
    return Response(data, media_type=tilesets.MVT, headers=cache.headers)


@router.get("/collections/{collectionId}/tiles", summary="The vector tilesets of a collection (OGC API - Tiles)",
            responses={404: {"description": "Unknown collection"}})
def collection_tilesets(collectionId: str, request: Request,  # noqa: N803
                        key: ApiKey | None = Depends(access.public_reader)) -> JSONResponse:
    return JSONResponse(tilesets.tileset_list(_base(request), ogc_collections.collection_or_404(collectionId, key)))


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}",
            summary="A vector tileset of a collection: its tile template, tile matrix set and limits",
            responses={404: {"description": "Unknown collection or tile matrix set"}})
def collection_tileset(collectionId: str, tileMatrixSetId: str, request: Request,  # noqa: N803
                       key: ApiKey | None = Depends(access.public_reader),
                       engine: Engine = Depends(read_engine)) -> Response:
    found = ogc_collections.collection_or_404(collectionId, key)
    tms = tilesets.tile_matrix_set_or_404(tileMatrixSetId)
    cache = http_cache.validator(request, engine, access.readable_states(key))
    if cache.matches(request):
        return cache.not_modified()
    with engine.connect() as conn:
        bbox = _extent_bbox(conn, found, key)
    return JSONResponse(tilesets.tileset(_base(request), found, tms, bbox), headers=cache.headers)


@router.get("/collections/{collectionId}/tiles/WebMercatorQuad/tilejson.json",
            summary="TileJSON 3.0 of a collection's WebMercatorQuad tiles (the query's filters go on the template)",
            responses={404: {"description": "Unknown collection"}},
            openapi_extra={"parameters": _declared(
                [p for p in openapi30.items_parameters()
                 if p["name"] not in ("limit", "offset", "after", "crs", "f")])})
def collection_tilejson(collectionId: str, request: Request,  # noqa: N803
                        key: ApiKey | None = Depends(access.public_reader),
                        engine: Engine = Depends(read_engine)) -> Response:
    found = ogc_collections.collection_or_404(collectionId, key)
    with engine.connect() as conn:
        params.read_items_query(found, _params(request), conn, paging=False)  # the filters, checked
    cache = http_cache.validator(request, engine, access.readable_states(key))
    if cache.matches(request):
        return cache.not_modified()
    with engine.connect() as conn:
        bbox = _extent_bbox(conn, found, key)
    return JSONResponse(tilesets.tilejson(_base(request), found, bbox, request.url.query), headers=cache.headers)


router.include_router(writes)
