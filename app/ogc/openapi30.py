"""The OpenAPI document as 3.0 (what OGC API - Features clients read), and the items parameters in it.

The document is one for every reader (it is open, and cached by the application), so it names the public
collections only (`readable_collections(None)`, as `/collections` lists them to an anonymous reader): a
collection read with a key only (`pending_submissions`) has no path and no query parameters of its own in it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.layers import EVENT_KINDS
from app.models import CLASSIFICATIONS, HAZARD_STATUSES
from app.ogc import filters
from app.ogc.collections import readable_collections
from app.ogc.params import DEFAULT_LIMIT, max_limit
from app.params import ISO3_PATTERN


def _as_openapi_30(node: Any) -> Any:
    """Rewrite the few OpenAPI 3.1 spellings FastAPI uses (null in anyOf, examples lists, const, numeric
    exclusive bounds, contentMediaType of an uploaded file) as 3.0."""
    if isinstance(node, list):
        return [_as_openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_openapi_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)  # as given: the null option is {"type": "null"} before its own rewrite
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [_as_openapi_30(o) for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            out["nullable"] = True
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        out["type"] = types[0] if types else "string"
        if len(types) < len(node.get("type", [])):
            out["nullable"] = True
    if "examples" in out and isinstance(out["examples"], list) and "in" not in out and "content" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "contentMediaType" in out:  # an uploaded file: 3.0 says `format: binary`
        out.pop("contentMediaType")
        out["format"] = "binary"
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(out.get(key), int | float) and not isinstance(out.get(key), bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = out.pop(key)
            out[key] = True
    return out


def openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    converted = _as_openapi_30(document)
    converted["openapi"] = "3.0.3"
    info = converted.get("info", {})
    summary = info.pop("summary", None)  # 3.1 only: 3.0 has the description
    if summary and not info.get("description"):
        info["description"] = summary
    converted.pop("jsonSchemaDialect", None)
    converted.pop("webhooks", None)
    _add_collection_paths(converted)
    return converted


def _add_collection_paths(document: dict[str, Any]) -> None:
    """Each collection's own items path (`/collections/hazardous_areas/items`) beside the templated one, as
    OGC's example API definitions have them: checkers such as ogctests read a collection's parameters there."""
    paths = document.get("paths", {})
    templated = paths.get("/collections/{collectionId}/items", {}).get("get")
    if templated is None:
        return
    for collection_id in (c.id for c in readable_collections(None)):
        operation = {**templated, "operationId": f"{templated.get('operationId', 'items')}_{collection_id}",
                     "parameters": [p for p in templated.get("parameters", []) if p.get("name") != "collectionId"]}
        paths[f"/collections/{collection_id}/items"] = {"get": operation}


def items_parameters() -> list[dict[str, Any]]:
    """The items parameters as OpenAPI 3.0, with the limit maximum declared for clients (GDAL's PAGE_SIZE)."""
    def q(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
                **extra}

    return [
        q("limit", f"Features per page (default {DEFAULT_LIMIT}, at most {max_limit()}: follow the next links "
                   "for more)", {"type": "integer", "minimum": 1, "maximum": max_limit(),
                                    "default": DEFAULT_LIMIT}, style="form", explode=False),
        q("offset", "Features to skip (the next/prev links carry it)", {"type": "integer", "minimum": 0,
                                                                          "default": 0}),
        q("after", "Only features whose id comes after this one, in id order (the next links carry it, with the "
                   "offset of the page for the counts)", {"type": "string", "format": "uuid"}),
        q("bbox", "minx,miny,maxx,maxy in bbox-crs (CRS84 by default)",
          {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}, style="form", explode=False),
        q("bbox-crs", "CRS of bbox (CRS84 by default; EPSG URIs accepted)", {"type": "string", "format": "uri"}),
        q("datetime", "An instant (the ledger as of the end of that day) or, for land_release_events, an "
                      "interval start/end (either may be ..)", {"type": "string"}, style="form", explode=False),
        q("crs", "Output CRS: CRS84 (default), EPSG:4326 (lat/lon) or any EPSG code as "
                 "http://www.opengis.net/def/crs/EPSG/0/<code>", {"type": "string", "format": "uri"}),
        q("state", "ISO 3166 alpha-3 code of the State", {"type": "string", "pattern": ISO3_PATTERN}),
        q("classification", "hazardous_areas only", {"type": "string", "enum": list(CLASSIFICATIONS)}),
        q("status", "hazardous_areas only", {"type": "string", "enum": list(HAZARD_STATUSES)}),
        q("geometry", "hazardous_areas only: remaining (default) or baseline",
          {"type": "string", "enum": ["remaining", "baseline"]}),
        q("kind", "land_release_events only", {"type": "string", "enum": list(EVENT_KINDS)}),
        q("include_voided", "land_release_events only: include voided events (flagged voided=true)",
          {"type": "boolean", "default": False}),
        q("f", "Output format", {"type": "string", "enum": ["json", "geojson"]}),
        q("filter", "A CQL2 filter over the queryables (GET /collections/{collectionId}/queryables), e.g. "
                    "status = 'active' AND S_INTERSECTS(geometry, BBOX(104.9, 12.9, 105.1, 13.1))",
          {"type": "string"}),
        q("filter-lang", "The language of filter: cql2-text (default) or cql2-json; cql-text is GDAL's name "
                         "for CQL2 text", {"type": "string", "enum": list(filters.FILTER_LANGS),
                                           "default": "cql2-text"}),
        q("filter-crs", "CRS of the geometries in filter (CRS84 by default; one the collection lists)",
          {"type": "string", "format": "uri"}),
        q("sortby", "Sortable properties, comma-separated, each + (ascending, the default) or - (descending); "
                    "ties are broken by id", {"type": "string"}),
        q("properties", "Only these properties, comma-separated", {"type": "string"}),
        q("skipGeometry", "true: features without their geometry", {"type": "boolean", "default": False}),
        *queryable_parameters(q),
    ]


# The items parameters that a tile does not take (paging, output CRS, sorting, selection).
ITEMS_ONLY = ("limit", "offset", "after", "crs", "f", "sortby", "properties", "skipGeometry")


def queryable_parameters(q: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The queryables of simple types as query parameters (Part 3: queryables-query-parameters), those of
    every public collection, except the ones declared above with their own rules (state, classification, ...)."""
    declared = {"state", "classification", "status", "kind"}
    public = readable_collections(None)
    out: dict[str, dict[str, Any]] = {}
    for collection in public:
        for name, prop in filters.queryable_properties(collection.properties).items():
            if name in declared or name in out or prop.type not in filters.SIMPLE_TYPES:
                continue
            owners = [c.id for c in public
                      if name in filters.queryable_parameter_names(c.properties)]
            out[name] = q(name, f"Features whose {name} equals this ({', '.join(owners)})",
                          filters.json_schema(prop.type))
    return list(out.values())
