"""The interactive API documentation at /docs: Swagger UI packaged with the service (app/web/static/vendor).

Nothing is fetched from a CDN: the page, Swagger UI and its initialiser are served from this service, so
the documentation opens on a machine without internet and under a Content-Security-Policy that allows
only this service's own scripts (app/headers.py).
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

API_DOCS_PATH = "/docs"
_PAGE = Path(__file__).resolve().parents[1] / "web" / "api-docs.html"

router = APIRouter()


@router.get(API_DOCS_PATH, include_in_schema=False)
def api_docs() -> FileResponse:
    return FileResponse(_PAGE, media_type="text/html")
