"""Errors as RFC 9457 problem details (`application/problem+json`), never a stack trace or SQL.

Every text in a problem is made safe before it is sent, whatever raised it:
- a character UTF-8 cannot encode (a lone surrogate such as JSON's "\\ud800", echoed back from the
  request) is written as its escape (`\\ud800`), so the answer is always valid UTF-8 JSON;
- a server path (the data directory, the system temp folder where uploads and exports are
  unpacked) is replaced by a placeholder: a client never learns where the service keeps its files.

Every problem comes in the request's language (`?lang=en|fr|es`, else `Accept-Language`, else English;
`Content-Language` says which): its detail, title and each `errors[].message` are translated on the way
out from the Babel catalogues (app.committee.i18n.translate), whatever raised it; the shape stays the same
and the `type`, `status`, field paths and values stay as they are.
"""
from __future__ import annotations

import logging
import re
import tempfile
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.cluster_recovery import failures
from app.committee import i18n

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
SERVER_PATH = "<server path>"


class Problem(Exception):
    """A client-facing error: status, a short title and a detail that says what to fix."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.headers = headers
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.extra = extra


def _server_paths() -> re.Pattern[str]:
    """Server folders a message must not show: the data directory and the temp folder (any file in them)."""
    from app.settings import get_settings

    folders = {str(get_settings().data_dir.resolve()), tempfile.gettempdir(), "/tmp", "/var/tmp"}
    alternatives = "|".join(re.escape(f.rstrip("/")) for f in sorted(folders, key=len, reverse=True) if f.strip("/"))
    return re.compile(rf"(?:{alternatives})(?:/[^\s'\"<>:;,()]*)?(?![\w.-])")


def safe_text(value: str) -> str:
    """The text with unencodable characters escaped and server paths hidden."""
    encodable = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return _server_paths().sub(SERVER_PATH, encodable)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def problem_response(status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    # Set here, not only by app/headers.py: a 500 from the last-resort handler passes no middleware.
    safe_headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", **(headers or {})}
    return JSONResponse(_safe(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=safe_headers)


def localised_problem(request: Request, status: int, detail: str, *, title: str | None = None,
                      type_: str = "about:blank", headers: dict[str, str] | None = None,
                      **extra: Any) -> JSONResponse:
    """The problem in the request's language: detail, title and each `errors[].message` translated."""
    language = i18n.of_request(request)
    with i18n.speaking(language):
        detail = i18n.translate(detail)
        title = i18n.translate(title or HTTPStatus(status).phrase)
        if isinstance(extra.get("errors"), list):
            extra["errors"] = [{**error, "message": i18n.translate(error["message"])}
                               if isinstance(error, dict) and isinstance(error.get("message"), str) else error
                               for error in extra["errors"]]
    return problem_response(status, detail, title=title, type_=type_,
                            headers={"Content-Language": language, **(headers or {})}, **extra)


def _field_path(loc: tuple | list) -> str:
    return "/".join(str(part) for part in loc)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "description": "For validation errors: each field path and what is wrong",
                   "items": {"type": "object", "properties": {"field": {"type": "string"},
                                                              "message": {"type": "string"}}}},
    },
    "additionalProperties": True,
}
_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def describe_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document what the service really answers: errors as problem+json, API keys."""
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {}).update({
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer <key>"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key"},
    })
    document.setdefault("security", [{"bearer": []}, {"apiKey": []}, {}])
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses:
                responses["422"]["content"] = dict(_PROBLEM_CONTENT)
            responses.setdefault("default", {"description": "An error, as RFC 9457 problem details",
                                             "content": dict(_PROBLEM_CONTENT)})
    return document


def install_problem_handlers(app: FastAPI) -> None:
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_problems(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return localised_problem(request, exc.status, exc.detail, title=exc.title, type_=exc.type,
                                 headers=exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return localised_problem(request, exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A parameter that a route and its dependency both declare (iso3) is reported once.
        reported = dict.fromkeys((_field_path(err.get("loc", ())), err.get("msg", "invalid value"))
                                 for err in exc.errors())
        language = i18n.of_request(request)
        with i18n.speaking(language):
            errors = [{"field": field, "message": i18n.translate(message)} for field, message in reported]
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
            detail = i18n._("The request is not valid: {summary}", summary=summary)
            title = i18n._("Invalid request")
        return problem_response(422, detail, title=title, errors=errors, headers={"Content-Language": language})

    @app.exception_handler(OperationalError)
    async def _db_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        failures.record("statement timeout" if "statement timeout" in str(exc.orig) else "database unavailable",
                        exc.orig)
        if "statement timeout" in str(exc.orig):
            return localised_problem(request, 503,
                                     "The query took too long and was cancelled; narrow it (bbox, filters, limit).")
        return localised_problem(request, 503, "The database is unavailable; try again shortly.")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # Only extreme values from a request get here (a date near year 1 or 9999 moved by a period).
        log.info("value out of range: %s", exc)
        return localised_problem(request, 422, "A date or number in the request is too far out of range to work with "
                                               f"({exc}). Give a date between 1900 and 2100.", title="Invalid value")

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # app/bodies.py refuses lone surrogates in JSON bodies with the field; this is the last guard.
        log.info("text the database cannot encode: %s", exc.reason)
        return localised_problem(request, 422, "A text in the request holds an invalid character (a lone UTF-16 "
                                               "surrogate such as \\ud800): send valid Unicode.", title="Invalid value")

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> JSONResponse:
        log.info("value refused by the database: %s", exc.orig)
        return localised_problem(request, 422, "A value in the request cannot be stored: a number is out of range or a "
                                               "text is not of the expected form. Check the values you sent.",
                                 title="Invalid value")

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", exc.orig)
        return localised_problem(request, 409, "The write conflicts with data stored meanwhile (for example the same "
                                               "external_id sent twice at once). Read the current state and retry.",
                                 title="Conflict")

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        log.exception("database error", exc_info=exc)
        return localised_problem(request, 500,
                                 "The service could not complete the request (database error). It has been logged.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return localised_problem(request, 500, "The service hit an unexpected error. It has been logged.")
