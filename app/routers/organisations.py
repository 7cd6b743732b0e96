"""The register of organisations of each State over HTTP: thin, over app.organisations."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from app import access, organisations
from app.access import ApiKey
from app.audit import Actor
from app.bodies import JsonBodyRoute
from app.database import get_session
from app.ledger import require_state
from app.organisations import Organisation, OrganisationChange, OrganisationIn, OrganisationName, Organisations
from app.params import ISO3
from app.routers.deps import request_actor

router = APIRouter(prefix="/api/v1", tags=["organisations"], route_class=JsonBodyRoute)


def _full(key: ApiKey | None, iso3: str) -> bool:
    """Whether the reader sees the contact too (a key that may read the State), not only the names."""
    return key is not None and key.may_read(iso3)


@router.get("/states/{iso3}/organisations", response_model=Organisations,
            summary="The State's register of organisations (names for every key, or anyone with "
                    "LANDRELEASE_PUBLIC_READ; contacts for keys of the State)")
def list_organisations(iso3: ISO3, key: ApiKey | None = Depends(access.public_reader),
                       session: Session = Depends(get_session)) -> Organisations:
    require_state(session, iso3.upper())
    return organisations.list_register(session, iso3.upper(), full=_full(key, iso3))


@router.post("/states/{iso3}/organisations", status_code=201, response_model=Organisation,
             summary="Add an organisation to the State's register", dependencies=[Depends(access.state_writer)],
             responses={409: {"description": "The register already has an organisation of that name"}})
def add_organisation(iso3: ISO3, body: OrganisationIn, session: Session = Depends(get_session),
                     actor: Actor = Depends(request_actor)) -> Organisation:
    require_state(session, iso3.upper())
    return organisations.create(session, iso3.upper(), body, actor)


@router.get("/organisations/{organisation_id}", response_model=Organisation | OrganisationName,
            summary="One organisation of a register", responses={404: {"description": "No such organisation"}})
def get_organisation(organisation_id: uuid.UUID, key: ApiKey | None = Depends(access.public_reader),
                     session: Session = Depends(get_session)) -> Organisation | OrganisationName:
    iso3 = access.state_of_organisation(session, organisation_id)
    return organisations.get(session, organisation_id, full=_full(key, iso3))


@router.patch("/organisations/{organisation_id}", response_model=Organisation,
              summary="Change an organisation of the register (only the fields given)",
              dependencies=[Depends(access.organisation_writer)])
def change_organisation(organisation_id: uuid.UUID, body: OrganisationChange, session: Session = Depends(get_session),
                        actor: Actor = Depends(request_actor)) -> Organisation:
    return organisations.change(session, organisation_id, body, actor)


@router.delete("/organisations/{organisation_id}", status_code=204, response_class=Response,
               summary="Remove an organisation no record names from the register",
               dependencies=[Depends(access.organisation_writer)],
               responses={409: {"description": "Some record names the organisation"}})
def delete_organisation(organisation_id: uuid.UUID, session: Session = Depends(get_session),
                        actor: Actor = Depends(request_actor)) -> Response:
    organisations.delete(session, organisation_id, actor)
    return Response(status_code=204)
