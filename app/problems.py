"""Errors as RFC 9457 problem details (`application/problem+json`), never a stack trace or SQL."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


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


def problem_response(status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_path(loc: tuple | list) -> str:
    return "/".join(str(part) for part in loc)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, title=exc.title, type_=exc.type, headers=exc.headers,
                                **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(err.get("loc", ())), "message": err.get("msg", "invalid value")}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, f"The request is not valid: {summary}", title="Invalid request", errors=errors)

    @app.exception_handler(OperationalError)
    async def _db_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        if "statement timeout" in str(exc.orig):
            return problem_response(503, "The query took too long and was cancelled; narrow it (bbox, filters, limit).")
        return problem_response(503, "The database is unavailable; try again shortly.")

    @app.exception_handler(DataError)
    async def _bad_value(_: Request, exc: DataError) -> JSONResponse:
        log.info("value refused by the database: %s", exc.orig)
        return problem_response(422, "A value in the request cannot be stored: a number is out of range or a text "
                                     "is not of the expected form. Check the values you sent.",
                                title="Invalid value")

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", exc.orig)
        return problem_response(409, "The write conflicts with data stored meanwhile (for example the same "
                                     "external_id sent twice at once). Read the current state and retry.",
                                title="Conflict")

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        log.exception("database error", exc_info=exc)
        return problem_response(500, "The service could not complete the request (database error). It has been logged.")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(500, "The service hit an unexpected error. It has been logged.")
