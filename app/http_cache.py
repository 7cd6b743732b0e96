"""HTTP hygiene of the reads: validators and 304s, compression, cross-origin reads.

Validators (the OGC items, items pages, single items, tiles, tilesets and collection documents):
- `ETag` is weak (`W/"..."`: the gzip, brotli and plain bodies of one page are the same document, and a
  page's `timeStamp` differs from one response to the next) and derived from the database's snapshot
  (`pg_current_snapshot()`: which transactions are committed) together with the request (path, query,
  the key's States, the representation). Two equal snapshots see the same data, and every committed
  write changes the snapshot, so an ETag seen again means nothing the answer depends on has changed;
  it may change for a write elsewhere (a key created), never stays for a write that matters. It is taken
  before the answer is made, or by the answer's own statement (a tile asked for without `If-None-Match`:
  `SNAPSHOT_COLUMNS` beside the tile, the snapshot the tile was read in), so an answer is never labelled
  newer than it is. Cheap: one query, or none of its own.
- `If-None-Match` with the current ETag (or `*`) is answered 304 with the ETag and no body, before
  the answer is made (a page of 10,000 features costs one query).
- `Last-Modified` is the time of the ledger's last audited write (`audit_log.at`; for keys that read
  every State: a State's key would learn when another State last changed). It informs, it does not
  validate: `If-Modified-Since` is not answered 304, because an audit time is its transaction's start,
  and a write that started earlier can commit later.
- `Cache-Control: no-cache` (store, but ask again) and `Vary: Accept, Authorization, X-API-Key`.

Compression (`Compression`, ASGI middleware): JSON (TileJSON and OpenAPI included), GeoJSON,
problem+json, HTML, MVT and SVG bodies of at least MIN_COMPRESS_BYTES, for a client whose
`Accept-Encoding` takes `br` (brotli, preferred) or `gzip`, are sent compressed, with `Vary:
Accept-Encoding`. Only whole bodies (one message) are compressed here; an OGC items page is compressed
into a second spool by its route (`app.ogc.pages.Page.encoded`) after its statements are done, so it
keeps its Content-Length and its memory bound, and the compression never holds a database connection.

Cross-origin reads (`add_cors`): `LANDRELEASE_CORS_ORIGINS`, a comma-separated list of origins, or `*`.
Default: none (no CORS headers; browsers allow only this service's own pages). Keys travel in the
`Authorization` or `X-API-Key` header, never in cookies, so a page elsewhere can use a key only when
it has it: `*` is a reasonable choice for a service with public reads.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import brotli
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Connection, Engine, text
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import get_settings

MIN_COMPRESS_BYTES = 512
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
COMPRESSIBLE = ("application/json", "application/geo+json", "application/problem+json", "text/html",
                "application/vnd.mapbox-vector-tile", "application/vnd.oai.openapi+json", "image/svg+xml")
VARY = "Accept, Authorization, X-API-Key"
ENCODINGS = ("br", "gzip")  # in the order of preference


# --- validators --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Validator:
    etag: str
    last_modified: datetime | None

    @property
    def headers(self) -> dict[str, str]:
        out = {"ETag": self.etag, "Cache-Control": "no-cache", "Vary": VARY}
        if self.last_modified is not None:
            out["Last-Modified"] = format_datetime(self.last_modified.astimezone(UTC), usegmt=True)
        return out

    def matches(self, request: Request) -> bool:
        """`If-None-Match` names this ETag (weak comparison, RFC 9110 13.1.2) or is `*`."""
        given = request.headers.get("if-none-match")
        if not given:
            return False
        tags = [t.strip() for t in given.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == self.etag.removeprefix("W/") for t in tags)

    def not_modified(self) -> Response:
        return Response(status_code=304, headers=self.headers)


# what a validator is made of, as the columns of a statement: the snapshot and the last audited write
SNAPSHOT_COLUMNS = "pg_current_snapshot()::text, (SELECT max(at) FROM audit_log)"


def validator(request: Request, bind: Engine | Connection, states: list[str] | None,
              representation: str = "json") -> Validator:
    """The validator of what this request reads now: the snapshot, the request and the key's scope.

    `bind` is the engine the answer is read from, or the connection it is read on (the answer's own
    statements come after this one, so they see this snapshot or a later one)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return validator(request, conn, states, representation)
    snapshot, last_write = bind.execute(text(f"SELECT {SNAPSHOT_COLUMNS}")).one()
    return validator_of(request, snapshot, last_write, states, representation)


def validator_of(request: Request, snapshot: str, last_write: datetime | None, states: list[str] | None,
                 representation: str = "json") -> Validator:
    """The validator of an answer read in `snapshot` (the SNAPSHOT_COLUMNS its statement read)."""
    query = sorted(request.query_params.multi_items())
    key = json.dumps([snapshot, request.url.path, query, states, representation])
    etag = f'W/"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'
    return Validator(etag, last_write if states is None else None)


# --- compression -------------------------------------------------------------------------------
def chosen_encoding(accept_encoding: str | None) -> str | None:
    """br or gzip when the client's Accept-Encoding takes it (a q of 0 refuses), else None."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[name.strip()] = q
    wildcard = weights.get("*", 0.0)
    best = max(ENCODINGS, key=lambda e: (weights.get(e, wildcard), -ENCODINGS.index(e)))
    return best if weights.get(best, wildcard) > 0 else None


class Encoder:
    """A streaming compressor: `compress(data)` then `finish()` give the encoded bytes in order."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "br":
            self._brotli = brotli.Compressor(quality=BROTLI_QUALITY)
        else:
            self._zlib = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: the gzip format

    def compress(self, data: bytes) -> bytes:
        return self._brotli.process(data) if self.encoding == "br" else self._zlib.compress(data)

    def finish(self) -> bytes:
        return self._brotli.finish() if self.encoding == "br" else self._zlib.flush()


def encode(data: bytes, encoding: str) -> bytes:
    encoder = Encoder(encoding)
    return encoder.compress(data) + encoder.finish()


def _add_vary(headers: MutableHeaders, value: str) -> None:
    present = [v.strip() for v in headers.get("vary", "").split(",") if v.strip()]
    if value.lower() not in (v.lower() for v in present):
        headers["vary"] = ", ".join([*present, value])


class Compression:
    """ASGI middleware: whole bodies of the COMPRESSIBLE types, compressed for the client (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = chosen_encoding(Headers(scope=scope).get("accept-encoding"))
        start: Message | None = None
        passing = False

        async def send_compressed(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                headers = Headers(raw=message.get("headers", []))
                media = headers.get("content-type", "").split(";")[0].strip().lower()
                if media in COMPRESSIBLE:
                    _vary_start = MutableHeaders(raw=list(message.get("headers", [])))
                    _add_vary(_vary_start, "Accept-Encoding")
                    message = {**message, "headers": _vary_start.raw}
                if encoding is None or media not in COMPRESSIBLE or "content-encoding" in headers \
                        or message["status"] in (204, 304):
                    passing = True
                    await send(message)
                    return
                start = message
                return
            if passing or message["type"] != "http.response.body" or start is None or encoding is None:
                await send(message)
                return
            body = message.get("body", b"")
            if message.get("more_body", False) or len(body) < MIN_COMPRESS_BYTES:  # a stream, or small
                passing = True
                await send(start)
                await send(message)
                return
            data = encode(body, encoding)
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["content-encoding"] = encoding
            headers["content-length"] = str(len(data))
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": data})

        await self.app(scope, receive, send_compressed)


# --- cross-origin reads ------------------------------------------------------------------------
EXPOSED = ["ETag", "Last-Modified", "Content-Crs", "Content-Length", "Content-Encoding", "Landrelease-Wal-Lsn",
           "Landrelease-Read-From", "Retry-After", "Location", "Allow"]


def cors_origins() -> list[str]:
    return [o.strip() for o in get_settings().cors_origins.split(",") if o.strip()]


def add_cors(app: FastAPI) -> None:
    """CORS for the configured origins (none: nothing added)."""
    origins = cors_origins()
    if not origins:
        return
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                       allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                       allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match", "If-Match",
                                      "Accept", "Landrelease-Wal-Lsn", "Content-Crs", "X-Reason"],  # Part 4 writes
                       expose_headers=EXPOSED, max_age=600)
