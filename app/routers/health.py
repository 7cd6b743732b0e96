"""`/health`: 200 `{"status": "ok", ...}` when PostGIS answers; otherwise 503, a problem document with
`"health": "degraded"` and what is known of the database: `restarting` (the embedded cluster is being
restarted), `maintenance` (a point-in-time recovery holds it) or `unreachable`. Its `status` member is
the HTTP status, as in every problem document. It never logs: monitors call it often."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text

from app import database
from app.cluster_recovery import ClusterState, cluster_state
from app.problems import problem_response

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    postgis: str

_DATABASE_DOWN = {
    ClusterState.RESTARTING: ("restarting", "The embedded database stopped and is being restarted."),
    ClusterState.MAINTENANCE: ("maintenance", "The embedded database is down for maintenance (a restore)."),
}


@router.get("/health", summary="Is the service and its PostGIS database up?", response_model=Health,
            responses={503: {"description": "The database is down: a problem document with `health` and `database`"}})
def health() -> Health | Response:
    try:
        with database.get_engine().connect() as conn:
            version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    except Exception as exc:  # any failure to reach the database is a 503 with the reason
        reason = type(exc).__name__
        state = cluster_state()
        known = _DATABASE_DOWN.get(state) if state is not None else None
        database_state, detail = known or ("unreachable", "The database is unreachable.")
        return problem_response(503, f"{detail} ({reason}); try again shortly.", title="Service Unavailable",
                                health="degraded", database=database_state)
    return Health(status="ok", database="ok", postgis=version)
