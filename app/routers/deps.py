"""Request-scoped dependencies shared by the routers."""
from __future__ import annotations

from fastapi import Depends, Query

from app.access import ApiKey, authenticated_key
from app.audit import Actor
from app.geometry import WGS84, CRSNotKnown, parse_crs
from app.problems import Problem


def request_actor(key: ApiKey = Depends(authenticated_key)) -> Actor:
    """Who is writing: the API key (id and name) recorded in the audit log. No key: 401."""
    return key.actor


def input_crs(crs: str | None = Query(None, description="CRS of the submitted coordinates, e.g. EPSG:32648 "
                                                         "(default WGS84 longitude/latitude)")):
    try:
        return parse_crs(crs) if crs else WGS84
    except CRSNotKnown as exc:
        raise Problem(400, str(exc), title="Unknown CRS", invalid_params=[{"name": "crs", "reason": str(exc)}]) from exc
