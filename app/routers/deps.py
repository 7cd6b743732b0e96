"""Request-scoped dependencies shared by the routers.

They are coroutines: FastAPI runs a plain function dependency on a worker thread, one hop there and
back per dependency and request; these do no I/O of their own (a named CRS, read from PROJ's
database, is read on a worker thread)."""
from __future__ import annotations

from fastapi import Depends, Query
from pyproj import CRS
from starlette.concurrency import run_in_threadpool

from app.access import ApiKey, authenticated_key
from app.audit import Actor
from app.geometry import WGS84, CRSNotKnown, parse_crs
from app.problems import Problem


async def request_actor(key: ApiKey = Depends(authenticated_key)) -> Actor:
    """Who is writing: the API key (id and name) recorded in the audit log. No key: 401."""
    return key.actor


async def input_crs(crs: str | None = Query(None, description="CRS of the submitted coordinates, e.g. EPSG:32648 "
                                                               "(default WGS84 longitude/latitude)")) -> CRS:
    if not crs:
        return WGS84
    try:
        return await run_in_threadpool(parse_crs, crs)
    except CRSNotKnown as exc:
        raise Problem(400, str(exc), title="Unknown CRS", invalid_params=[{"name": "crs", "reason": str(exc)}]) from exc
