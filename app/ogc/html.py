"""The OGC API as HTML (OGC API - Features Part 1, conformance class `html`): the landing page,
conformance, the collections, a collection, an items page (a small map and a table, with the next and
previous links) and one item, rendered on the server with Jinja2 (templates in app/ogc/templates).

- HTML is chosen by `f=html`, or by an `Accept` header that prefers `text/html` to JSON (a browser's);
  `f=json` or any other `Accept` (`*/*`, `application/json`, `application/geo+json`) keeps JSON, the default.
- The pages hold no script of their own: the map (MapLibre GL JS, packaged under /dashboard/static/vendor,
  nothing from elsewhere) is drawn by /dashboard/static/ogc-map.js from the features the page carries
  in a JSON data block, within the dashboard's Content-Security-Policy (app/headers.py).
- An items page in HTML shows at most HTML_MAX_LIMIT features; its links keep `f=html`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from app.layers import Property

CONFORMANCE = ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html"]
HTML_MAX_LIMIT = 1000
_JSON_TYPES = ("application/json", "application/geo+json")

_environment = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                           autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _accept_weights(accept: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media:
            weights[media.lower()] = q
    return weights


def wants_html(request: Request) -> bool:
    """`f=html`, or (no `f`) an Accept header whose `text/html` outweighs every JSON type."""
    f = request.query_params.get("f")
    if f is not None:
        return f == "html"
    weights = _accept_weights(request.headers.get("accept", ""))
    html = weights.get("text/html", 0.0)
    if html <= 0:
        return False
    wildcard = max(weights.get("*/*", 0.0), weights.get("application/*", 0.0))
    return all(html > weights.get(t, wildcard) for t in _JSON_TYPES)


def _render(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    body = _environment.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=headers)


def landing(document: dict[str, Any], headers: dict[str, str] | None = None) -> HTMLResponse:
    return _render("landing.html", document=document, title=document["title"], headers=headers)


def conformance(classes: list[str]) -> HTMLResponse:
    return _render("conformance.html", classes=classes, title="Conformance classes")


def collections(document: dict[str, Any], headers: dict[str, str] | None = None) -> HTMLResponse:
    return _render("collections.html", document=document, title="Collections", headers=headers)


def collection(document: dict[str, Any], headers: dict[str, str] | None = None) -> HTMLResponse:
    return _render("collection.html", document=document, title=document["title"], headers=headers)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def items(collection_id: str, title: str, properties: tuple[Property, ...], page: dict[str, Any],
          headers: dict[str, str] | None = None) -> HTMLResponse:
    """An items page: a map of its features, a table of their declared properties, next/prev links."""
    names = [p.name for p in properties]
    rows = [{"id": f["id"], "cells": [_cell(f["properties"].get(n)) for n in names]} for f in page["features"]]
    links = {link["rel"]: link["href"] for link in page["links"]}
    return _render("items.html", title=f"{title}: features", collection_id=collection_id, collection_title=title,
                   columns=names, rows=rows, page=page, links=links,
                   features_json=json.dumps({"type": "FeatureCollection", "features": page["features"]}),
                   headers=headers)


def item(collection_id: str, title: str, properties: tuple[Property, ...], feature: dict[str, Any],
         headers: dict[str, str] | None = None) -> HTMLResponse:
    values = [(p.name, _cell(feature["properties"].get(p.name))) for p in properties]
    return _render("item.html", title=f"{title}: {feature['id']}", collection_id=collection_id,
                   collection_title=title, feature=feature, values=values,
                   features_json=json.dumps({"type": "FeatureCollection", "features": [feature]}), headers=headers)
