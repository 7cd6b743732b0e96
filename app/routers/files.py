"""Field files in and out: thin HTTP over app.files."""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from app import access
from app.audit import Actor
from app.database import get_session
from app.files import columns, history, imports
from app.files import export as file_export
from app.ledger.results import ImportResult
from app.models import HAZARD_STATUSES
from app.params import ISO3, CalendarDate
from app.read_routing import get_read_session
from app.routers.deps import request_actor

router = APIRouter(prefix="/api/v1", tags=["files"])


def _safe_name(name: str | None) -> str:
    base = Path(name or "upload").name
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[-120:] or "upload"


@router.post(
    "/states/{iso3}/imports", status_code=201,
    summary="Import hazards from a file (GeoPackage, zipped Shapefile, GeoJSON, KML, CSV with WKT), all or nothing",
    description=f"Columns are matched to the hazard fields ({', '.join(columns.HAZARD_FIELDS)}) "
                "by name (see app/files/columns.py COLUMN_ALIASES) or by `mapping` (JSON object or "
                "field=column,field=column). The CRS comes from the file. Any invalid row: 422 listing every "
                "rejected row; nothing is stored.",
    dependencies=[Depends(access.state_writer)],
    response_model=ImportResult,
    responses={200: {"description": "Every hazard already existed with identical content", "model": ImportResult},
               409: {"description": "An external_id exists with different content, or a hazard overlaps land "
                                    "another counts; nothing stored"},
               413: {"description": "The file has more rows or vertices than an import may read, or reading "
                                    "it took more time than an import may use; nothing stored"},
               415: {"description": "Not a file format this service reads"},
               422: {"description": "Rejected rows (listed), no column for a required field, several layers and "
                                    "no `layer`, or a file that is not what its name says (a VRT, GeoPackage "
                                    "views, ...); nothing stored"}})
def import_file(
    iso3: ISO3,
    file: UploadFile = File(..., description="The file; a Shapefile comes zipped with its .shp, .shx, .dbf, .prj"),
    mapping: str | None = Form(None, description='{"external_id": "REF"} or external_id=REF,classification=CLASS'),
    layer: str | None = Form(None, description="Layer to read from a file with several layers (GeoPackage, KML, "
                                                "or a zip of several Shapefiles, by name without .shp); needed "
                                                "there, except for our own export (hazardous_areas is read)"),
    crs: str | None = Form(None, description="CRS for a file that does not say its own (e.g. EPSG:32648)"),
    repair: bool = Form(False, description="Repair invalid geometries (make_valid) and report it"),
    overlap: Literal["refuse", "clip"] = Form(
        "refuse", description="A hazard overlapping land another hazard of the State (or of the file) counts: "
                              "refuse the file (409) or clip it to the land not already counted"),
    border: Literal["refuse", "accept"] = Form(
        "refuse", description="A hazard beyond its State's boundary (app/places): refuse the file (422, naming where "
                              "each lies) or accept it flagged (`border_flag`), for border minefields"),
    session: Session = Depends(get_session),
    actor: Actor = Depends(request_actor),
) -> JSONResponse:
    options = imports.ImportOptions(mapping=columns.read_mapping(mapping), layer=layer or None,
                                        crs=crs or None, repair=repair, source=file.filename, border=border)
    folder = Path(tempfile.mkdtemp(prefix="landrelease-import-"))
    try:
        path = folder / _safe_name(file.filename)
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, length=1024 * 1024)
        result = imports.import_hazards(session, iso3.upper(), path, options, actor, clip=overlap == "clip")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return JSONResponse(result, status_code=201 if result["created"] else 200)


@router.post(
    "/states/{iso3}/history-imports", status_code=202,
    summary="Import hazards with their whole land-release history from files, as a job (all or nothing)",
    description="A GeoPackage with a hazards layer (`hazards_layer`, default hazardous_areas) and an events layer "
                "(`events_layer`, default land_release_events) in `events`; or the hazards in `hazards` and the events "
                "in `events` (two CSVs with WKT, ...); or `events` alone onto hazards already stored (a CSV, or a "
                "GeoPackage with `events_only=true`: its hazards layer is then not read). Events name their hazard by "
                f"its external_id (columns: {', '.join(columns.EVENT_FIELDS)}); they are applied as the ledger applies "
                "them one by one, with the same refusals. The files are read and every row checked before the answer: "
                "a file that cannot be imported (format, layer, columns, rows) is its 4xx problem at once. Then the "
                "answer is 202 with the job's URL (Location): poll it for the phase, the rows done and then the result "
                "or the problem (a refusal of the ledger). One import runs at a time and a few wait; when that many "
                "are waiting, a 503 with Retry-After. Jobs live in the service's memory: a restart forgets them (an "
                "interrupted import stored nothing).",
    dependencies=[Depends(access.state_writer)],
    responses={202: {"description": "The files were read and checked; the import runs: its job's status is at the "
                                    "Location URL"},
               413: {"description": "A file has more rows or vertices than an import may read, or reading it took "
                                    "more time than an import may use"},
               415: {"description": "Not a file format this service reads"},
               422: {"description": "Rejected rows (listed), no column for a required field, no such layer, or "
                                    "events_only with hazards; nothing stored"},
               503: {"description": "As many history imports as the service queues are running or waiting: send "
                                    "the files again after Retry-After"}})
def import_history(
    iso3: ISO3,
    events: UploadFile = File(..., description="The events, or a GeoPackage with the hazards and events layers"),
    hazards: UploadFile | None = File(None, description="The hazards, when they are in a file of their own"),
    events_only: bool = Form(False, description="The events go onto hazards already stored: a GeoPackage's hazards "
                                                "layer is not read (no `hazards` or `hazards_layer` with it)"),
    hazards_layer: str | None = Form(None, description="The hazards' layer of a GeoPackage"),
    events_layer: str | None = Form(None, description="The events' layer of a GeoPackage"),
    mapping: str | None = Form(None, description="The hazards' columns: field=column,..."),
    event_mapping: str | None = Form(None, description="The events' columns: field=column,... (e.g. "
                                                       "hazard_external_id=HAZ_REF)"),
    crs: str | None = Form(None, description="CRS for files that do not say their own (e.g. EPSG:32648)"),
    repair: bool = Form(False, description="Repair invalid geometries (make_valid) and report it"),
    border: Literal["refuse", "accept"] = Form("refuse", description="Hazards beyond the State's boundary: refuse "
                                                                     "or accept them flagged"),
    actor: Actor = Depends(request_actor),
) -> JSONResponse:
    folder = Path(tempfile.mkdtemp(prefix="landrelease-history-"))
    try:
        paths = {}
        for name, upload in (("events", events), ("hazards", hazards)):
            if upload is None:
                continue
            paths[name] = folder / name / _safe_name(upload.filename)
            paths[name].parent.mkdir()
            with paths[name].open("wb") as out:
                shutil.copyfileobj(upload.file, out, length=1024 * 1024)
        options = history.HistoryOptions(
            events=paths["events"], hazards=paths.get("hazards"), events_only=events_only,
            hazards_layer=hazards_layer or None, events_layer=events_layer or None,
            mapping=columns.read_mapping(mapping),
            event_mapping=columns.read_mapping(event_mapping, columns.EVENT_FIELDS), crs=crs or None, repair=repair,
            border=border, source=", ".join(u.filename or "upload" for u in (hazards, events) if u is not None))
        job = history.start_job(iso3.upper(), options, actor)  # the files read and checked: they may go
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    url = f"/api/v1/states/{iso3.upper()}/history-imports/{job.id}"
    return JSONResponse({**job.as_dict(), "url": url}, status_code=202, headers={"Location": url})


@router.get(
    "/states/{iso3}/history-imports/{job_id}",
    summary="The status of a history import: its phase, rows done of the total, then its result or its problem",
    dependencies=[Depends(access.state_writer)])
def history_import_status(iso3: ISO3, job_id: str) -> JSONResponse:
    return JSONResponse(history.find_job(iso3.upper(), job_id).as_dict())


@router.get(
    "/states/{iso3}/export",
    summary="The State's hazards and events as a file a GIS opens (gpkg, geojson, shp as zip, csv with WKT)",
    dependencies=[Depends(access.state_reader)],
    response_class=FileResponse,
    responses={200: {"content": {t: {} for t, _ in file_export.EXPORT_FORMATS.values()}}})
def export(
    iso3: ISO3,
    # The values are declared (enum) and checked by file_export.export_state (400 naming the parameter).
    format: str = Query("gpkg", description="gpkg (both layers), shp (zip, both layers), geojson or csv "
                                            "(one layer: hazardous_areas unless `layer` says otherwise)",
                        json_schema_extra={"enum": list(file_export.EXPORT_FORMATS)}),
    as_of: CalendarDate | None = Query(None, description="The ledger as it stood at the end of this day"),
    layer: str | None = Query(None, description="hazardous_areas or land_release_events (default: both where "
                                                "the format holds several layers)",
                              json_schema_extra={"enum": list(file_export.EXPORT_LAYERS)}),
    status: str | None = Query(None, description="Only hazards with this status (active, released)",
                               json_schema_extra={"enum": list(HAZARD_STATUSES)}),
    session: Session = Depends(get_read_session),
) -> FileResponse:
    path, media_type, filename = file_export.export_state(session, iso3.upper(), format, as_of, layer, status)
    return FileResponse(path, media_type=media_type, filename=filename,
                        background=BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True))
