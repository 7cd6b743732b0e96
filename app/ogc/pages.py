"""Pages of GeoJSON features made by PostgreSQL's COPY into a spool, then sent whole: generic, it takes
SQL and knows nothing of collections.

The page's rows come out of `COPY (SELECT ...) TO STDOUT`, taken as fast as PostgreSQL makes them into a
spool (memory up to SPOOL_MEMORY_BYTES, then an unnamed temporary file). A page is made in full before
its status line goes out, then sent in CHUNK_BYTES pieces with its Content-Length; a failure while
making it is a problem+json answer, a failure after the status line cuts the connection short.

A page for a client that takes gzip or brotli is compressed (`Page.encoded`) from its spool into a second
one once its statements are done: the Content-Length is the compressed size, memory stays within
SPOOL_MEMORY_BYTES per spool, and the compression never holds a database connection.
"""
from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from app import database
from app.http_cache import Encoder
from app.problems import Problem

# CSV with a delimiter and a quote character that never occur in JSON text (PostgreSQL's JSON escapes
# every control character): each row arrives as `<id>\x01<feature>\n`, with nothing escaped or quoted
_COPY_OPTIONS = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
_ID_LENGTH = 36  # a uuid as text
CHUNK_BYTES = 64 * 1024  # bytes written to the client at a time
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024  # what a page may hold in memory, not yet sent, before it spills to disk


def _copy_statement(conn: Connection, sql: str) -> str:
    """`COPY (sql) TO STDOUT` with the bind parameters in psycopg's form (it binds them client-side)."""
    compiled = text(sql).compile(dialect=conn.dialect)
    return f"COPY ({compiled}) TO STDOUT {_COPY_OPTIONS}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PageNotSpooled(Problem):
    """The page could not be held until sent (temporary storage full or failing): nothing was sent."""

    def __init__(self, error: OSError) -> None:
        super().__init__(503, f"The service could not hold the page until sending it ({error.strerror or error}); "
                              "try again shortly, or ask for a smaller page (limit).", headers={"Retry-After": "30"})


@dataclass
class Page:
    """A FeatureCollection made in full before anything is sent: `size` bytes in `spool` (memory up to
    `SPOOL_MEMORY_BYTES`, beyond that an unnamed temporary file)."""

    spool: tempfile.SpooledTemporaryFile[bytes]
    size: int
    encoding: str | None = None  # the Content-Encoding of the bytes in the spool

    def chunks(self) -> Iterator[bytes]:
        """The document in `CHUNK_BYTES` pieces, then the spool is closed (also when the client goes away).

        A spool that gives fewer than `size` bytes raises: after the status line the only honest answer
        left is a cut connection, which the client sees as short of the Content-Length.
        """
        try:
            self.spool.seek(0)
            sent = 0
            while sent < self.size:
                data = self.spool.read(min(CHUNK_BYTES, self.size - sent))
                if not data:
                    raise OSError(f"the page spool ended after {sent} of {self.size} bytes")
                sent += len(data)
                yield data
        finally:
            self.spool.close()

    def encoded(self, encoding: str | None) -> Page:
        """The page compressed (`br` or `gzip`) into a spool of its own; this page's spool is closed. None:
        the page itself."""
        if encoding is None:
            return self
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed by chunks
        try:
            encoder = Encoder(encoding)
            for chunk in self.chunks():
                out.write(encoder.compress(chunk))
            out.write(encoder.finish())
            return Page(out, out.tell(), encoding)
        except OSError as exc:
            out.close()
            raise PageNotSpooled(exc) from exc
        except BaseException:
            out.close()
            raise


@dataclass(frozen=True)
class PageRequest:
    """What a page is made from: its SQL (rows `<id>, <feature JSON text>` in id order, one row more than
    the page), the SQL counting every row, their bind parameters, and where the page stands."""

    page_sql: str
    count_sql: str
    params: dict[str, Any]
    limit: int
    offset: int = 0
    after: uuid.UUID | None = None


Links = Callable[[int, bool, uuid.UUID | None], list[dict[str, Any]]]


def _copy_page(request: PageRequest, links: Links, spool: tempfile.SpooledTemporaryFile[bytes],
               engine: Engine) -> None:
    """The whole page into the spool, as PostgreSQL COPYs it (through `engine`)."""
    page, count, params = request.page_sql, request.count_sql, request.params
    pending = bytearray(f'{{"type":"FeatureCollection","timeStamp":"{_now()}","features":['.encode())
    returned, has_next, last_id = 0, False, None
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")  # the page and its count see the same data
        conn.execute(text("SELECT 1"))  # the transaction starts here, in that isolation level
        conn.exec_driver_sql("SET LOCAL client_encoding = 'UTF8'")  # the bytes go out as they come
        statement = _copy_statement(conn, page)
        driver = conn.connection.driver_connection
        assert driver is not None  # a pooled connection that is open
        try:
            with driver.cursor() as cursor, cursor.copy(statement, params) as copy:
                for row in copy:  # one row per message: b"<id>\x01<feature>\n"
                    if returned == request.limit:  # the one row more than the page: there is a next page
                        has_next = True
                        continue
                    if returned:
                        pending += b","
                    pending += row[_ID_LENGTH + 1:-1]
                    last_id = bytes(row[:_ID_LENGTH])  # the row's memory is reused for the next one
                    returned += 1
                    if len(pending) >= CHUNK_BYTES:
                        spool.write(pending)
                        pending = bytearray()
        except psycopg.Error as exc:  # raised by the driver itself: to the service's handlers
            raise DBAPIError.instance(statement, params, exc, psycopg.Error) from exc
        first_page = request.offset == 0 and request.after is None
        matched: int | None = None  # left out of the pages in the middle (counting is the cost of a page)
        if not has_next and request.after is None and (returned > 0 or request.offset == 0):
            matched = request.offset + returned
        elif first_page or not has_next:
            matched = conn.execute(text(count), params).scalar_one()
        conn.rollback()
    last = uuid.UUID(last_id.decode()) if last_id is not None else None
    tail = {"numberMatched": matched, "numberReturned": returned, "links": links(returned, has_next, last)}
    if matched is None:
        del tail["numberMatched"]
    spool.write(pending + ("]," + json.dumps(tail)[1:]).encode())


def make_page(request: PageRequest, links: Links, engine: Engine | None = None) -> Page:
    """The FeatureCollection as PostGIS produces it (header, features, then counts and links), complete.

    `links(number_returned, has_next, last_id)` gives the links for the end of the document. The page's
    statements have finished (and their connection is back in the pool) when this returns, so any
    database error, a statement timeout included, is raised here, before a status line is sent; the
    client's pace never holds a statement or a connection. The page is read through `engine` (default
    the primary's).
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed by Page.chunks
    try:
        _copy_page(request, links, spool, engine or database.get_engine())
        return Page(spool, spool.tell())
    except OSError as exc:  # the temporary file: disk full, or failing
        spool.close()
        raise PageNotSpooled(exc) from exc
    except BaseException:
        spool.close()
        raise
