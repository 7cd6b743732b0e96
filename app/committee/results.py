"""The typed results of the Committee's figures (pydantic models).

The domain functions (app.committee.summaries, article5, charts) return these, the routes declare them
as `response_model` (so the OpenAPI document describes every answer), and the output formats
(app.committee.formats) render them. Dates are `date`s (JSON: ISO 8601 strings); an absent fact is
None (JSON: null), never a missing key. Areas are m2 unless the name says km2.
"""
from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import ITEM_KINDS

_Date = date  # for a field named `date`

# A time as PostgreSQL writes it in JSON (ISO 8601 with its offset), kept as written.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- areas and land release ------------------------------------------------------------------------
class Area(Result):
    count: int = Field(description="Number of hazardous areas")
    area_m2: float


class Remaining(Result):
    """What remains of a State's hazardous areas at a date."""

    sha: Area = Field(description="Suspected hazardous areas")
    cha: Area = Field(description="Confirmed hazardous areas")
    total: Area


class ProvinceArea(Area):
    name: str | None = Field(description="The province's name (app/places); none for hazards in no province")


class RemainingDetail(Remaining):
    """What remains, also by contamination type (a hazard counts under each of its types), by region as given
    and by province (its code: the province the region names, else the one holding most of the polygon)."""

    by_contamination: dict[str, Area]
    by_region: dict[str, Area]
    by_province: dict[str, ProvinceArea]


class ReleasedArea(Result):
    """Land released, by method; `released_m2` is their sum (a reclassification releases no land)."""

    cancelled_m2: float
    reduced_m2: float
    cleared_m2: float
    released_m2: float


class ItemsDestroyed(Result):
    ap_mines: int
    improvised_ap_mines: int
    av_mines: int
    other_eo: int


assert tuple(ItemsDestroyed.model_fields) == ITEM_KINDS, "ItemsDestroyed follows app.models.ITEM_KINDS"


class Added(Result):
    """Land added: the baseline of hazards recorded that were previously unknown."""

    added_m2: float
    added_count: int


class ReleaseTotal(ReleasedArea):
    items_destroyed: ItemsDestroyed
    added_m2: float
    added_count: int


class ReleaseYear(Result):
    """One year's land release and the land added that year (the fields of `ReleaseTotal`, year first)."""

    year: int
    cancelled_m2: float
    reduced_m2: float
    cleared_m2: float
    released_m2: float
    items_destroyed: ItemsDestroyed
    added_m2: float
    added_count: int


class Released(Result):
    total: ReleaseTotal
    last_year: ReleasedArea = Field(description="In the 365 days up to the as-of date")
    by_year: list[ReleaseYear]


class YearRelease(ReleasedArea):
    """One year's land release (the Article 7 report)."""

    items_destroyed: ItemsDestroyed


# --- Article 5 -------------------------------------------------------------------------------------
class Article5Status(Result):
    """Where a State stands under Article 5 at a date."""

    entry_into_force: date | None
    original_deadline: date | None
    deadline: date | None
    extensions: int | None = Field(description="Extensions granted; none given when the number is not known")
    status: str = Field(description="obligation, completed, withdrawal_notified, withdrawn, not_in_force or "
                                    "no_article5_obligation")
    bound: bool = Field(description="Bound by the Convention at the date (Article 20)")
    bound_reason: str = Field(description="Why it is bound or not (entry into force, withdrawal, Article 20.3)")
    withdrawal_effective_on: date | None


class Article5Progress(Article5Status):
    """The standing and the deadline arithmetic at the last year's rate."""

    days_remaining: int | None
    release_rate_m2_per_year: float
    projected_completion: date | None
    on_track: bool | None
    required_rate_m2_per_year: float | None


class PlannedYear(Result):
    year: int
    area_m2: float
    areas: int | None


class Decision(Result):
    """One fact of a State's Article 5 history, with the work-plan milestones it carries."""

    id: uuid.UUID
    kind: str
    superseded: bool = Field(description="An undated reference fact replaced by the same extension recorded "
                                         "with its date")
    corrected: bool = Field(description="Replaced by a correction of the Committee (kept, no longer counted)")
    decided_on: date | None
    decided_by: date | None = Field(description="When the day is not known: the latest day it can have been "
                                                "taken (the closing day of the meeting)")
    applies_from: date | None = Field(description="A fact known without a date: the day it is taken to count "
                                                  "from (the deadline it extended)")
    effective_on: date = Field(description="The date it counts from: decided_on, else decided_by, else "
                                           "applies_from, else the original deadline")
    replaces: uuid.UUID | None = Field(description="The decision this correction replaces")
    correction_reason: str | None
    meeting: str | None
    deadline: date | None
    extensions_count: int | None
    source: str | None
    confidence: str | None
    note: str | None
    recorded_at: Timestamp
    milestones: list[PlannedYear]


class StateListEntry(Result):
    """A State with where it stands today (the fields of `Article5Status`, after its code and name)."""

    iso3: str
    name: str
    entry_into_force: date | None
    original_deadline: date | None
    deadline: date | None
    extensions: int | None
    status: str
    bound: bool
    bound_reason: str
    withdrawal_effective_on: date | None


class StateList(Result):
    states: list[StateListEntry]


class StateRecord(Result):
    iso3: str
    name: str
    source: str | None
    as_of: date
    article5: Article5Status
    decisions: list[Decision]


class RecordedDecision(Result):
    decision: Decision
    article5: Article5Status


class WorkPlan(Result):
    state: str
    decision_id: uuid.UUID
    milestones: list[PlannedYear]


class Milestone(Result):
    """A work-plan year against the land released that year."""

    year: int
    planned_m2: float
    planned_areas: int | None
    released_m2: float
    met: bool | None = Field(description="Not given while the year is not over and the plan not reached")
    decision_id: uuid.UUID


# --- the summaries ---------------------------------------------------------------------------------
class PendingSubmissions(Result):
    """Submissions of one kind not approved yet (submitted, or returned for correction): they count
    nowhere else (app.submissions)."""

    kind: str
    count: int
    area_m2: float


class StateSummary(Result):
    state: str
    name: str
    as_of: date
    remaining: RemainingDetail
    released: Released
    article5: Article5Progress
    milestones: list[Milestone]
    pending: list[PendingSubmissions] = Field(
        default_factory=list, description="The backlog of submissions at the end of the date asked: submitted "
                                          "by then, neither approved nor rejected by then")


class OverviewRow(Result):
    state: str
    name: str
    remaining: Remaining
    released_last_year: ReleasedArea
    article5: Article5Progress
    pending: list[PendingSubmissions] = Field(
        default_factory=list, description="The backlog of submissions at the end of the date asked: submitted "
                                          "by then, neither approved nor rejected by then")


class Overview(Result):
    as_of: date
    states: list[OverviewRow]


class MinedArea(Result):
    external_id: str
    name: str | None
    region: str | None
    province_code: str | None
    province: str | None
    classification: str
    contamination: list[str]
    remaining_m2: float
    centroid_lon: float | None
    centroid_lat: float | None


class RegionRelease(Result):
    """One year's land release in one region (province), and the items destroyed there (Article 7 forms C, G)."""

    year: int
    region: str
    cancelled_m2: float
    reduced_m2: float
    cleared_m2: float
    released_m2: float
    items_destroyed: ItemsDestroyed


class MinesDestroyed(Result):
    """Anti-personnel mines a year's land-release reports found, by type (Article 7, Form G)."""

    category: str  # AP_MINE or IMPROVISED_AP_MINE
    model: str | None
    disposal: str | None  # destroyed_in_situ, removed, or not said
    quantity: int


class Beneficiaries(Result):
    """The beneficiaries of a year's land release by sex and age (Oslo Action Plan Action 22)."""

    direct_women: int = 0
    direct_girls: int = 0
    direct_men: int = 0
    direct_boys: int = 0
    indirect_women: int = 0
    indirect_girls: int = 0
    indirect_men: int = 0
    indirect_boys: int = 0


class ReleasedFor(Result):
    """Land released in the year for one use after release (a report naming several uses counts in each)."""

    land_use: str
    released_m2: float


class ReleasedBy(Result):
    """Land released in the year by one organisation with one combination of methods."""

    organisation: str | None
    methods: list[str]
    released_m2: float
    reports: int


class AnnualReport(Result):
    """The Article 7 report of a State for a calendar year, laid out as the reporting forms (Form C: mined areas;
    the land release per year and region; Form G: mines destroyed; the work plan against what was released)."""

    state: str
    name: str
    year: int
    as_of: date
    mined_areas: list[MinedArea]
    totals: Remaining
    released: YearRelease
    added: Added
    release_by_region: list[RegionRelease] = Field(description="Every year up to the report's, by region")
    milestones: list[Milestone] = Field(description="The work plan in effect at the end of the year, against "
                                                    "what was released")
    article5: Article5Progress
    burn_down: ChartData = Field(description="The data behind the burn-down chart at the end of the year")
    # the records' Minimum Data Requirements, for the year's land-release reports
    ap_mines_destroyed: list[MinesDestroyed] = Field(default_factory=list)
    beneficiaries: Beneficiaries = Field(default_factory=Beneficiaries)
    released_by_land_use: list[ReleasedFor] = Field(default_factory=list)
    released_by_organisation: list[ReleasedBy] = Field(default_factory=list)


# --- the chart's data ------------------------------------------------------------------------------
class SeriesPoint(Result):
    date: _Date
    remaining_km2: float
    sha_km2: float
    cha_km2: float


class ChartDeadline(Result):
    kind: str
    deadline: date
    decided_on: date | None
    meeting: str | None


class ChartMilestone(Result):
    year: int
    area_km2: float
    areas: int | None
    planned_remaining_km2: float


class ChartData(Result):
    state: str
    name: str
    as_of: date
    remaining_km2: float
    deadline: date | None
    projected_completion: date | None
    on_track: bool | None
    series: list[SeriesPoint]
    deadlines: list[ChartDeadline]
    milestones: list[ChartMilestone]
    extensions: int | None = Field(None, description="Extensions granted by the as-of date (None: not known)")
    bbox: list[float] | None = Field(description="[west, south, east, north] of the State's hazards (WGS84)")


# --- others on the Committee's routes ------------------------------------------------------------
class Overlap(Result):
    hazard_id: uuid.UUID
    external_id: str
    other_hazard_id: uuid.UUID
    other_external_id: str
    from_: date = Field(alias="from", serialization_alias="from")
    overlap_m2: float

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Overlaps(Result):
    state: str
    overlaps: list[Overlap]
    overlap_m2: float


AnnualReport.model_rebuild()  # ChartData is declared after it


def dump(result: BaseModel) -> dict[str, Any]:
    """The JSON-ready form of a result (dates as ISO strings, every key present)."""
    return result.model_dump(mode="json", by_alias=True)
