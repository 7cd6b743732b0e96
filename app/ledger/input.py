"""The rules a hazard's properties follow on the way in: one copy, for the JSON API and the file import.

`HazardProperties` validates one hazard's properties (the JSON API's body, a row of a file);
`new_hazard` turns valid properties and a checked geometry into the ledger's `NewHazard`.
"""
from __future__ import annotations

from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.geometry import PolygonalGeometry
from app.ledger.book import NewHazard
from app.models import CONTAMINATION_TYPES
from app.params import IsoDate

Contamination = Literal["AP_MINE", "IMPROVISED_AP_MINE", "AV_MINE", "ERW", "CLUSTER_MUNITION", "OTHER"]
assert set(get_args(Contamination)) == set(CONTAMINATION_TYPES)

EARLIEST_DATE_OF_INFORMATION = date(1900, 1, 1)


class HazardProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    external_id: str = Field(min_length=1, max_length=200, description="The national centre's own reference")
    classification: Literal["SHA", "CHA", "DHA"] = Field(description="SHA or CHA (older data's DHA counts as CHA)")
    contamination: list[Contamination] = Field(default_factory=lambda: list[Contamination](["AP_MINE"]),
                                               min_length=1)
    name: str | None = Field(None, max_length=500)
    region: str | None = Field(None, max_length=500)
    recorded_on: IsoDate = Field(description="YYYY-MM-DD, not in the future")
    date_of_information: IsoDate | None = Field(
        None, description="The date the information about the hazard was collected (GICHD Minimum Data "
                          "Requirements): YYYY-MM-DD, from 1900-01-01, not in the future")

    @field_validator("recorded_on")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError(f"recorded_on {value} is in the future")
        return value

    @field_validator("date_of_information")
    @classmethod
    def _plausible_date_of_information(cls, value: date | None) -> date | None:
        if value is None:
            return value
        if value > date.today():
            raise ValueError(f"date_of_information {value} is in the future")
        if value < EARLIEST_DATE_OF_INFORMATION:
            raise ValueError(f"date_of_information {value} is before {EARLIEST_DATE_OF_INFORMATION}")
        return value


def plausible_date_of_information(value: date, today: date) -> bool:
    """What `HazardProperties` accepts as a date of information (for the import's fast screening)."""
    return EARLIEST_DATE_OF_INFORMATION <= value <= today


def new_hazard(props: HazardProperties, geometry: PolygonalGeometry) -> NewHazard:
    """The ledger's hazard from valid properties (DHA recorded as CHA, contamination types once each)."""
    return NewHazard(
        external_id=props.external_id, classification="CHA" if props.classification == "DHA" else props.classification,
        recorded_on=props.recorded_on, geometry=geometry, contamination=list(dict.fromkeys(props.contamination)),
        name=props.name, region=props.region, date_of_information=props.date_of_information)
