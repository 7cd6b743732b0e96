"""Submissions over HTTP: operators submit, the national centre reviews. Thin, over app.submissions."""
from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, File, Form, Query, UploadFile
from pyproj import CRS
from sqlalchemy.orm import Session

from app import access, submissions
from app.access import ApiKey
from app.bodies import JsonBodyRoute
from app.database import get_session
from app.files import columns, imports
from app.ledger.input import checked_polygon, parse_hazards, read_features
from app.params import ISO3, MAX_OFFSET, CalendarDate
from app.problems import Problem
from app.routers.deps import input_crs
from app.routers.files import _safe_name
from app.routers.hazards import HAZARD_EXAMPLE
from app.submissions.results import Approval, ReleaseReport, Review, SubmissionCollection, SubmissionFeature

router = APIRouter(prefix="/api/v1", tags=["submissions"], route_class=JsonBodyRoute)

ORGANISATION = Query(None, description="The organisation that did the work (an editor's entry); an operator's "
                                       "submission is its own organisation's")
ANSWERS: dict[int | str, dict[str, Any]] = {
    201: {"description": "The submission (an editor's: approved at once)"},
    409: {"description": "An editor's entry the ledger refuses (overlap, external_id); nothing stored"},
    422: {"description": "Invalid report; nothing stored"},
}


def _organisation(key: ApiKey, given: uuid.UUID | None) -> uuid.UUID | None:
    if key.role != "operator":
        return given
    if given is not None and given != key.organisation_id:
        raise Problem(403, f"The key '{key.name}' submits for its own organisation ({key.organisation_id}) only.")
    return key.organisation_id


def _direct(key: ApiKey, iso3: str) -> bool:
    """An editor's (or admin's) submission is the national centre's own entry: approved at once."""
    return key.may_review(iso3)


@router.post("/states/{iso3}/submissions", status_code=201, response_model=SubmissionFeature,
             summary="Submit a new hazard (a Feature) or a batch of hazards (a FeatureCollection) for review",
             responses=ANSWERS)
def submit_hazards(
    iso3: ISO3,
    body: Annotated[dict[str, Any], Body(examples=[HAZARD_EXAMPLE])],
    crs: CRS = Depends(input_crs),
    repair: bool = Query(False, description="Repair invalid geometries with make_valid and report the area change"),
    organisation_id: uuid.UUID | None = ORGANISATION,
    key: ApiKey = Depends(access.submitter),
) -> SubmissionFeature:
    report = submissions.hazard_report(parse_hazards(read_features(body), crs, repair))
    return submissions.submit(iso3.upper(), report, key.actor, organisation_id=_organisation(key, organisation_id),
                              direct=_direct(key, iso3))


FILE = File(..., description="The file; a Shapefile comes zipped with its .shp, .shx, .dbf, .prj")
MAPPING = Form(None, description='{"external_id": "REF"} or external_id=REF,classification=CLASS')
LAYER = Form(None, description="Layer to read from a file with several layers")
FILE_CRS = Form(None, description="CRS for a file that does not say its own (e.g. EPSG:32648)")
FILE_REPAIR = Form(False, description="Repair invalid geometries (make_valid) and report it")
FILE_ANSWERS: dict[int | str, dict[str, Any]] = {413: {"description": "A file beyond the import's limits"},
                                                 415: {"description": "Not a file format this service reads"}}


def _file_report(session: Session, file: UploadFile, mapping: str | None, layer: str | None, crs: str | None,
                 repair: bool) -> submissions.Report:
    """The hazards of an uploaded file, read and checked as the import reads and checks them."""
    options = imports.ImportOptions(mapping=columns.read_mapping(mapping), layer=layer or None, crs=crs or None,
                                    repair=repair, source=file.filename)
    folder = Path(tempfile.mkdtemp(prefix="landrelease-submission-"))
    try:
        path = folder / _safe_name(file.filename)
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, length=1024 * 1024)
        checked = imports.read_and_check(session, path, options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    session.rollback()
    return submissions.hazard_report(checked.hazards, file=options.source or path.name)


@router.post("/states/{iso3}/submissions/file", status_code=201, response_model=SubmissionFeature,
             summary="Submit a batch of hazards from a file (as the import reads and checks it) for review",
             responses={**ANSWERS, **FILE_ANSWERS})
def submit_file(
    iso3: ISO3,
    file: UploadFile = FILE,
    mapping: str | None = MAPPING,
    layer: str | None = LAYER,
    crs: str | None = FILE_CRS,
    repair: bool = FILE_REPAIR,
    organisation_id: uuid.UUID | None = Form(None, description="The organisation that did the work (an editor's "
                                                                "entry); an operator's is its own"),
    session: Session = Depends(get_session),
    key: ApiKey = Depends(access.submitter),
) -> SubmissionFeature:
    report = _file_report(session, file, mapping, layer, crs, repair)
    return submissions.submit(iso3.upper(), report, key.actor, organisation_id=_organisation(key, organisation_id),
                              direct=_direct(key, iso3))


@router.post("/hazards/{hazard_id}/submissions", status_code=201, response_model=SubmissionFeature,
             summary="Submit a land-release report (cancellation, reduction, clearance, reclassification) for review",
             responses=ANSWERS)
def submit_release(
    hazard_id: uuid.UUID,
    body: ReleaseReport,
    crs: CRS = Depends(input_crs),
    session: Session = Depends(get_session),
    key: ApiKey = Depends(access.hazard_submitter),
) -> SubmissionFeature:
    iso3 = access.state_of_hazard(session, hazard_id, key)
    session.rollback()
    report = submissions.release_report(hazard_id, body, checked_polygon(body.geometry, crs))
    return submissions.submit(iso3, report, key.actor, organisation_id=_organisation(key, body.organisation_id),
                              direct=_direct(key, iso3))


@router.get("/states/{iso3}/submissions", response_model=SubmissionCollection,
            summary="The State's submissions (an operator: its own organisation's), oldest first, each with its "
                    "geometry and, while it awaits review, what approving it would change",
            dependencies=[Depends(access.state_reader)])
def list_submissions(
    iso3: ISO3,
    status: Literal["submitted", "approved", "rejected", "returned"] | None = Query(None),
    organisation_id: uuid.UUID | None = Query(None),
    kind: Literal["hazard", "release", "batch"] | None = Query(None),
    hazard_id: uuid.UUID | None = Query(None, description="Only the land-release reports for this hazard"),
    submitted_from: CalendarDate | None = Query(None, description="Submitted on or after this day"),
    submitted_to: CalendarDate | None = Query(None, description="Submitted on or before this day"),
    preview: bool = Query(True, description="Compute what approving each awaiting submission would change"),
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    session: Session = Depends(get_session),
    key: ApiKey = Depends(access.authenticated_key),
) -> SubmissionCollection:
    where = submissions.SubmissionFilter(status=status, organisation_id=_organisation(key, organisation_id),
                                         kind=kind, submitted_from=submitted_from, submitted_to=submitted_to,
                                         hazard_id=hazard_id)
    return submissions.list_submissions(session, iso3.upper(), where, limit=limit, offset=offset,
                                        with_preview=preview)


@router.get("/submissions/{submission_id}", response_model=SubmissionFeature,
            summary="A submission with its history and, while it awaits review, what approving it would change",
            dependencies=[Depends(access.submission_reader)],
            responses={404: {"description": "No such submission (or one the key may not read)"}})
def get_submission(submission_id: uuid.UUID) -> SubmissionFeature:
    return submissions.get(submission_id)


@router.put("/submissions/{submission_id}", response_model=SubmissionFeature,
            summary="Resubmit a submission returned for correction (hazards as GeoJSON, or the land-release report)",
            responses={409: {"description": "The submission is not returned for correction"}})
def resubmit(
    submission_id: uuid.UUID,
    body: Annotated[dict[str, Any], Body()],
    crs: CRS = Depends(input_crs),
    repair: bool = Query(False, description="Repair invalid geometries with make_valid and report the area change"),
    session: Session = Depends(get_session),
    key: ApiKey = Depends(access.submission_resubmitter),
) -> SubmissionFeature:
    report = submissions.resubmitted_report(session, submission_id, body, crs, repair)
    session.rollback()
    return submissions.resubmit(submission_id, report, key.actor)


@router.put("/submissions/{submission_id}/file", response_model=SubmissionFeature,
            summary="Resubmit a submission of hazards returned for correction as a new file (read and checked as the "
                    "import reads and checks it); the earlier revisions stay in its history",
            responses={409: {"description": "The submission is not returned for correction"},
                       422: {"description": "Invalid file, or the submission is a land-release report"},
                       **FILE_ANSWERS})
def resubmit_file(
    submission_id: uuid.UUID,
    file: UploadFile = FILE,
    mapping: str | None = MAPPING,
    layer: str | None = LAYER,
    crs: str | None = FILE_CRS,
    repair: bool = FILE_REPAIR,
    session: Session = Depends(get_session),
    key: ApiKey = Depends(access.submission_resubmitter),
) -> SubmissionFeature:
    report = _file_report(session, file, mapping, layer, crs, repair)
    return submissions.resubmit(submission_id, report, key.actor)


@router.post("/submissions/{submission_id}/approve", response_model=SubmissionFeature,
             summary="Approve a submission: it is applied to the ledger, with every rule of the ledger, at once",
             responses={409: {"description": "Not awaiting review, or the ledger refuses it (the detail says what "
                                             "to fix); the submission stays submitted"},
                        422: {"description": "The ledger refuses it (the detail says what to fix); the submission "
                                             "stays submitted"}})
def approve(submission_id: uuid.UUID, body: Approval | None = None,
            key: ApiKey = Depends(access.submission_reviewer)) -> SubmissionFeature:
    return submissions.approve(submission_id, body or Approval.model_validate({}), key.actor)


@router.post("/submissions/{submission_id}/reject", response_model=SubmissionFeature,
             summary="Reject a submission (the reason is required)", responses={409: {"description": "Not awaiting "
                                                                                                   "review"}})
def reject(submission_id: uuid.UUID, body: Review, session: Session = Depends(get_session),
           key: ApiKey = Depends(access.submission_reviewer)) -> SubmissionFeature:
    return submissions.review(session, submission_id, "reject", body.comment, key.actor)


@router.post("/submissions/{submission_id}/return", response_model=SubmissionFeature,
             summary="Return a submission to its operator for correction (with comments)",
             responses={409: {"description": "Not awaiting review"}})
def return_for_correction(submission_id: uuid.UUID, body: Review, session: Session = Depends(get_session),
                          key: ApiKey = Depends(access.submission_reviewer)) -> SubmissionFeature:
    return submissions.review(session, submission_id, "return", body.comment, key.actor)
