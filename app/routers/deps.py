"""Request-scoped dependencies shared by the routers."""
from __future__ import annotations

from fastapi import Query, Request

from app.audit import Actor
from app.geometry import WGS84, CRSNotKnown, parse_crs
from app.problems import Problem


def request_actor(request: Request) -> Actor:
    """Who is writing. Until API keys exist this is the client address."""
    host = request.client.host if request.client else "unknown"
    return Actor(name=f"client {host}")


def input_crs(crs: str | None = Query(None, description="CRS of the submitted coordinates, e.g. EPSG:32648 "
                                                         "(default WGS84 longitude/latitude)")):
    try:
        return parse_crs(crs) if crs else WGS84
    except CRSNotKnown as exc:
        raise Problem(400, str(exc), title="Unknown CRS", invalid_params=[{"name": "crs", "reason": str(exc)}]) from exc
