"""The FastAPI application."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI

from app import database
from app.headers import SecurityHeaders
from app.http_cache import Compression, add_cors
from app.limits import BodySizeLimit
from app.problems import install_problem_handlers
from app.read_routing import ReadRouting
from app.routers import api_docs, dashboard, files, hazards, health, ogc, organisations, states, submissions
from app.routers import audit as audit_router

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # `landrelease serve` (and the tests) configure the database before serving; a bare
    # `uvicorn app.main:app` (as in the Docker image) resolves it here from the settings.
    with ExitStack() as stack:
        if not database.is_configured():
            url = stack.enter_context(database.open_database(watch=True))
            database.configure(url)
        yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="landrelease",
        version="0.1.0",
        summary="Hazardous areas, land release (IMAS 07.11) and Article 5 progress for mine action",
        lifespan=lifespan,
        docs_url=None,  # app/routers/api_docs.py serves Swagger UI from the service itself
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(ReadRouting)
    app.add_middleware(Compression)
    add_cors(app)
    app.add_middleware(SecurityHeaders)  # outermost: its headers are on the 413s too (and it answers HEAD as GET)
    app.include_router(health.router)
    app.include_router(hazards.router)
    app.include_router(states.router)
    app.include_router(ogc.router)
    app.include_router(files.router)
    app.include_router(audit_router.router)
    app.include_router(organisations.router)
    app.include_router(submissions.router)
    app.include_router(dashboard.router)
    app.include_router(api_docs.router)
    dashboard.mount_static(app)
    return app


app = create_app()
