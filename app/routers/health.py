from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import database
from app.problems import problem_response

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the service and its PostGIS database up?")
def health() -> JSONResponse:
    try:
        with database.get_engine().connect() as conn:
            version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    except Exception as exc:  # any failure to reach the database is a 503 with the reason
        reason = type(exc).__name__
        return problem_response(503, f"The database is unreachable ({reason}).", title="Service Unavailable",
                                database="unreachable")
    return JSONResponse({"status": "ok", "database": "ok", "postgis": version})
