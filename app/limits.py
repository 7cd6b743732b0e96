"""Request size limits, enforced before a request reaches a router.

The limit depends on the route, never on the Content-Type the client claims: the routes that take a
file (app/bodies.py `takes_upload`: the multipart import) accept at most `max_upload_bytes`
(LANDRELEASE_MAX_UPLOAD_BYTES, default 200 MB); every other request at most `max_body_bytes`
(LANDRELEASE_MAX_BODY_BYTES, default 10 MB), whatever its media type. A declared Content-Length over
the limit is refused at once; a body without one is counted as it streams in and cut off when it
passes the limit. Either way: 413 problem+json.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.bodies import route_takes_upload
from app.problems import problem_response
from app.settings import get_settings


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n} bytes"


def body_limit(scope: Scope) -> tuple[int, str]:
    """The limit for the body of this request (by its route), and what to call it in the message."""
    settings = get_settings()
    if route_takes_upload(scope):
        return settings.max_upload_bytes, "upload"
    return settings.max_body_bytes, "request body"


def _too_large(limit: int, what: str) -> str:
    hint = "Split the data into several requests or use the file import." if what == "request body" else \
        "Split the file, or raise LANDRELEASE_MAX_UPLOAD_BYTES on the server."
    return f"The {what} is larger than the limit of {_megabytes(limit)}. {hint}"


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over the limit of their kind."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length")
        # the limit depends on the route (a match over every route): looked up only when a body comes
        limit: int | None = None
        what = ""
        if declared is not None:
            if not declared.strip().isdigit():
                response = problem_response(400, "The Content-Length header is not a number.")
                await response(scope, receive, send)
                return
            if int(declared) > 0:
                limit, what = body_limit(scope)
                if int(declared) > limit:
                    response = problem_response(413, _too_large(limit, what), title="Content Too Large",
                                                limit_bytes=limit)
                    await response(scope, receive, send)
                    return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received, limit, what
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received and limit is None:
                    limit, what = body_limit(scope)
                if limit is not None and received > limit:
                    # Raised inside the router, so the problem handlers answer it as a 413.
                    raise HTTPException(413, _too_large(limit, what))
            return message

        await self.app(scope, counted_receive, send)
