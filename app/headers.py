"""Headers every answer carries, and what OPTIONS and a 405 say about a path.

- Every response: `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` (problem
  answers set them themselves, app/problems.py, so even an unexpected error's 500 has them).
- HTML (the dashboard pages): a Content-Security-Policy that allows only this service's own
  scripts, styles, images and API (MapLibre's web workers start from blob: URLs; the chart link
  opens a blob: image), no inline script, no framing (`frame-ancestors 'none'` and
  `X-Frame-Options: DENY`). The interactive API docs (/docs) are Swagger UI, packaged with the service:
  the same policy, with inline styles allowed (Swagger UI sets some) and nothing from elsewhere.
- `OPTIONS` on a path the service has: 204 with `Allow` listing the methods its routes declare (a route
  that declares OPTIONS answers it itself: the OGC items, whose Allow depends on the key); a 405 (a method
  the path does not have) carries the same `Allow`, a route's own 405 its own. An unknown path stays a 404. A CORS
  preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is left to the CORS middleware
  (app/http_cache.py), when origins are configured.
- An answer in a language (the Committee's documents, the dashboard, every problem): `Content-Language`, and
  `Vary: Accept-Language`, so that a cache does not give one reader's French report to the next reader.
- `HEAD` wherever `GET` is: answered as the GET would be (status and headers, the Content-Length and
  Content-Encoding included), without the body.
"""
from __future__ import annotations

from fastapi.routing import iter_route_contexts
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.committee import i18n
from app.http_cache import cors_origins
from app.routers.api_docs import API_DOCS_PATH

EVERY_RESPONSE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

DASHBOARD_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src blob:",
    "child-src blob:",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])
API_DOCS_POLICY = DASHBOARD_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
HTML_HEADERS = {"X-Frame-Options": "DENY"}


def answers_options(scope: Scope) -> bool:
    """A route of this path declares OPTIONS itself (its Allow depends on the key: app.ogc.transactions)."""
    router = getattr(scope.get("app"), "router", None)
    for context in iter_route_contexts(getattr(router, "routes", [])):
        match, _ = context.matches({**scope, "method": "OPTIONS"})
        if match is Match.FULL and "OPTIONS" in (getattr(context, "methods", None) or ()):
            return True
    return False


def allowed_methods(scope: Scope) -> list[str]:
    """The methods the routes of this request's path declare (empty when no route has the path)."""
    router = getattr(scope.get("app"), "router", None)
    methods: set[str] = set()
    for context in iter_route_contexts(getattr(router, "routes", [])):
        match, _ = context.matches({**scope, "method": "GET"})
        if match is Match.NONE:
            continue
        declared = getattr(context, "methods", None)
        methods |= set(declared) if declared else {"GET", "HEAD"}
    if "GET" in methods:
        methods.add("HEAD")
    if methods:
        methods.add("OPTIONS")
    return sorted(methods)


def _policy(path: str) -> str:
    return API_DOCS_POLICY if path == API_DOCS_PATH else DASHBOARD_POLICY


class SecurityHeaders:
    """ASGI middleware: the headers above on every response; OPTIONS answered; 405 with its Allow."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = {k.lower(): v for k, v in scope.get("headers", [])}
        preflight = b"origin" in request_headers and b"access-control-request-method" in request_headers \
            and bool(cors_origins())
        if scope["method"] == "OPTIONS" and not preflight and not answers_options(scope):
            methods = allowed_methods(scope)
            if methods:
                response = Response(status_code=204, headers={"Allow": ", ".join(methods), **EVERY_RESPONSE})
                await response(scope, receive, send)
                return

        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.body" and head:
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            if message["type"] == "http.response.start":
                # a 405 of a method the path declares is the route's own refusal (for this feature, this key):
                # its Allow stands; any other 405 gets the methods the path's routes declare
                own = message["status"] == 405 and scope["method"] in allowed_methods(scope) and any(
                    k.lower() == b"allow" for k, _ in message.get("headers", []))
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"
                           or message["status"] != 405 or own]
                present = {k.lower() for k, _ in headers}
                extra = dict(EVERY_RESPONSE)
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    extra.update(HTML_HEADERS)
                    extra["Content-Security-Policy"] = _policy(scope["path"])
                if message["status"] == 405 and not own:
                    extra["Allow"] = ", ".join(allowed_methods(scope))
                language = scope.get(i18n.SCOPE_KEY)
                if language is not None:
                    extra["Content-Language"] = language
                if language is not None or b"content-language" in present:
                    varies = b",".join(v for k, v in headers if k.lower() == b"vary").lower()
                    if b"accept-language" not in varies:
                        headers.append((b"vary", b"Accept-Language"))
                headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()
                            if k.lower().encode("latin-1") not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
