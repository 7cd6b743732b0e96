"""What a request body must be, decided by the route it is sent to (never by what the client claims).

- Only the routes that take a file (a multipart form: POST /api/v1/states/{iso3}/imports) take an
  upload; every other body counts against the JSON limit (app/limits.py), whatever its Content-Type.
- A route that reads JSON answers 415 to a body of another media type (or of none), naming the
  media type to send, rather than trying to read it.
- A JSON text may escape a lone UTF-16 surrogate ("\\ud800"): Python reads it, but it is not a
  character, so it can be neither stored in PostgreSQL nor sent back. Such a body is a 422 naming
  the field that holds it, before the endpoint runs.
"""
from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.problems import Problem

JSON_MEDIA_TYPES = "application/json or application/geo+json"


def takes_upload(route: APIRoute) -> bool:
    """Whether the route's body is a form (with files), not JSON."""
    return route.body_field is not None and isinstance(route.body_field.field_info, params.Form)


def api_routes(routes: list[BaseRoute]) -> Iterator[tuple[RouteContext, APIRoute]]:
    """Every API route of an application (included routers flattened), with its effective context."""
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context, context.original_route


def route_takes_upload(scope: Scope) -> bool:
    """Whether the request in `scope` goes to a route that takes an upload."""
    router = getattr(scope.get("app"), "router", None)
    for context, route in api_routes(getattr(router, "routes", [])):
        match, _ = context.matches(scope)
        if match is Match.FULL:
            return takes_upload(route)
    return False


def is_json_media_type(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _is_surrogate_free(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def surrogate_fields(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The paths of the keys and texts in a parsed JSON value that hold a lone surrogate."""
    if isinstance(value, str):
        if not _is_surrogate_free(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _is_surrogate_free(key):
                yield (*path, key)
            yield from surrogate_fields(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from surrogate_fields(item, (*path, index))


INVALID_CHARACTER = ("holds an invalid character (a lone UTF-16 surrogate such as \\ud800, which is not "
                     "text): send valid Unicode")


class JsonBodyRoute(APIRoute):
    """An API route whose JSON body is checked (media type, characters) before FastAPI reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None or takes_upload(self):
            return handler

        async def checked_handler(request: Request) -> Response:
            if await request.body():
                content_type = request.headers.get("content-type", "")
                if not is_json_media_type(content_type):
                    claimed = f"a body of type {content_type.split(';')[0]!r}" if content_type else \
                        "a body without a Content-Type"
                    raise Problem(415, f"This endpoint reads JSON; it got {claimed}. Send the body as "
                                       f"{JSON_MEDIA_TYPES} (Content-Type: application/json).",
                                  title="Unsupported Media Type")
                try:
                    document = await request.json()
                except (ValueError, RecursionError):
                    return await handler(request)  # FastAPI answers the malformed (or too deep) JSON itself
                invalid = list(surrogate_fields(document))
                if invalid:
                    raise RequestValidationError([
                        {"type": "string_unicode", "loc": ("body", *path), "msg": INVALID_CHARACTER}
                        for path in invalid
                    ])
            return await handler(request)

        return checked_handler
