"""One declaration of each layer: the kinds of event, the value lists, and the properties of hazards and events.

Everything that names or types a property is generated from `HAZARD_PROPERTIES` and `EVENT_PROPERTIES`:
the OGC items and single items (`app.ogc.items`), the vector tiles (`app.ogc.tiles`), the ledger's JSON
reads, its writes and its "same hazard / same event" comparisons (`app.ledger.book`), the rules a
property follows on the way in (`app.ledger.input`: the JSON API's `HazardProperties` and
`EventProperties`, the import's vectorised checks), the as-of SELECT (`app.ledger.as_of`), the import's
column matching, temporary table, COPY and conflict check (`app.files`), the export (`app.files.export`)
and the SQLAlchemy columns (`app.models`). Adding a property a client gives is one `Property` entry
here, with its `Input`, plus its column in a migration (docs/architecture.md, "How to add a property").

Each property is an SQL expression over the layer's source row, aliased `f`
(`app.ogc.collections.Collection.source`); a property the client gives (`input`) is a stored column of
the layer's table, read as `f.<column>`.

This module knows no database, HTTP or files: it imports nothing of the application.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal


# --- the kinds of event -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EventKind:
    name: str
    releases_land: bool  # False: the event moves land between classes (SHA -> CHA), it does not release it


EVENT_KIND_DECLARATIONS = (
    EventKind("cancellation", releases_land=True),
    EventKind("reduction", releases_land=True),
    EventKind("clearance", releases_land=True),
    EventKind("reclassification", releases_land=False),
)
EVENT_KINDS = tuple(k.name for k in EVENT_KIND_DECLARATIONS)
RELEASE_KINDS = tuple(k.name for k in EVENT_KIND_DECLARATIONS if k.releases_land)  # the kinds that release land


def sql_releases_land(kind: str) -> str:
    """SQL: true when the event kind `kind` (an SQL expression) releases land."""
    return f"{kind} IN ({', '.join(repr(k) for k in RELEASE_KINDS)})"


# --- the value lists -------------------------------------------------------------------------------
CLASSIFICATIONS = ("SHA", "CHA")
CONTAMINATION_TYPES = ("AP_MINE", "IMPROVISED_AP_MINE", "AV_MINE", "ERW", "CLUSTER_MUNITION", "OTHER")
HAZARD_STATUSES = ("active", "released")

if TYPE_CHECKING:  # a type checker sees text; pydantic and FastAPI see (and document) the declared values
    EventKindName = str
    Classification = str
    HazardStatus = str
else:
    EventKindName = Literal[EVENT_KINDS]
    Classification = Literal[CLASSIFICATIONS]
    HazardStatus = Literal[HAZARD_STATUSES]


# The closed lists of the GICHD Minimum Data Requirements (0013)
EVIDENCE_KINDS = ("direct", "indirect")
EVIDENCE_TYPES = ("accident", "visible_device", "old_records", "witness", "other")
BLOCKAGES = ("agriculture", "roads", "water", "housing", "infrastructure")
WORK_STATUSES = ("completed", "suspended", "ongoing")
WORK_METHODS = ("manual", "mechanical", "mdd", "nts", "ts")  # mdd: mine detection dogs
LAND_USES = ("agriculture", "housing", "infrastructure", "grazing", "forest", "other")
BENEFICIARY_GROUPS = ("women", "girls", "men", "boys")


# --- properties -------------------------------------------------------------------------------------
# JSON types: string, number, integer, boolean, date, date-time, uuid, array (of strings)
_MVT_TEXT_TYPES = ("date", "date-time", "uuid")
_COLUMN = re.compile(r"^f\.([a-z_][a-z0-9_]*)$")


@dataclass(frozen=True)
class Input:
    """A property the client gives (JSON API, file import): its stored column and its rules on the way in.

    `app.ledger.input` makes the JSON API's model and the import's vectorised checks from these, and
    `app.models` the SQLAlchemy column; the migration that adds the column must agree (a test compares).
    """

    sql_type: str  # the column's PostgreSQL type: text, text[], date, varchar(N)
    required: bool = False
    default: tuple[str, ...] | None = None  # given when absent (only an array has one); the column is then NOT NULL
    accepts: tuple[tuple[str, str], ...] = ()  # other values accepted: (value, the declared value it is recorded as)
    min_length: int | None = None  # of a text, or the number of items of an array
    max_length: int | None = None  # of a text
    not_in_future: bool = False  # a date
    calendar: bool = False  # a date within the service's calendar (1900 to 2200: `app.params.CalendarDate`)
    earliest: date | None = None  # a date
    description: str | None = None

    @property
    def nullable(self) -> bool:
        return not self.required and self.default is None


@dataclass(frozen=True)
class Property:
    """One property of a layer, as every output and input names and types it."""

    name: str  # JSON name (OGC properties, exports' column, tile attribute, import field)
    sql: str  # expression over the source row `f`
    type: str  # JSON type, see above
    tile: bool = True  # an attribute of the vector tiles
    shapefile: str | None = None  # the 10-character Shapefile field name, when `name` is longer
    aliases: tuple[str, ...] = ()  # column names an imported file may use for it
    filterable: bool = False  # a queryable (OGC API - Features Part 3: filter, and a query parameter)
    sortable: bool = False  # a sortby key
    values: tuple[str, ...] = ()  # the values it takes (of each item, for an array), when they are a closed list
    export: bool = True  # a column of the export
    input: Input | None = None  # given by the client (else computed by the ledger)

    @property
    def column(self) -> str | None:
        """The stored column the property reads, when its SQL is one (`f.<column>`)."""
        found = _COLUMN.match(self.sql)
        return found.group(1) if found else None

    @property
    def mvt_sql(self) -> str:
        """The expression in a type MVT can carry: ids and dates as text, a list as comma-separated text."""
        if self.type == "array":
            return f"array_to_string({self.sql}, ',')"
        if self.type in _MVT_TEXT_TYPES:
            return f"({self.sql})::text"
        return self.sql

    @property
    def export_sql(self) -> str:
        """The expression a file column takes: ids as text, a list as `;`-separated text (dates stay dates)."""
        if self.type == "array":
            return f"array_to_string({self.sql}, ';')"
        if self.type == "uuid":
            return f"({self.sql})::text"
        return self.sql


HAZARD_PROPERTIES: tuple[Property, ...] = (
    Property("state", "f.state_iso3", "string", filterable=True, sortable=True),
    Property("external_id", "f.external_id", "string", filterable=True, shapefile="ext_id", sortable=True,
             aliases=("external_id", "external_i", "ext_id", "hazard_id", "hazard_ref", "ref", "reference", "code"),
             input=Input("text", required=True, min_length=1, max_length=200,
                         description="The national centre's own reference")),
    Property("name", "f.name", "string", filterable=True, sortable=True, aliases=("name", "hazard_name", "site_name"),
             input=Input("text", max_length=500)),
    Property("classification", "f.classification", "string", sortable=True, shapefile="class", filterable=True,
             aliases=("classification", "classifica", "class", "hazard_class", "haz_class", "category"),
             values=CLASSIFICATIONS,
             input=Input("varchar(3)", required=True, accepts=(("DHA", "CHA"),),
                         description="SHA or CHA (older data's DHA counts as CHA)")),
    Property("contamination", "f.contamination", "array", filterable=True, shapefile="contam",
             aliases=("contamination", "contaminat", "contam", "contamination_types", "hazard_type"),
             values=CONTAMINATION_TYPES, input=Input("text[]", default=("AP_MINE",), min_length=1)),
    Property("region", "f.region", "string", filterable=True, sortable=True, aliases=("region", "province", "district"),
             input=Input("text", max_length=500)),
    Property("recorded_on", "f.recorded_on", "date", filterable=True, shapefile="recorded", sortable=True,
             aliases=("recorded_on", "recorded_o", "recorded", "record_date", "date_recorded", "survey_date", "date"),
             input=Input("date", required=True, not_in_future=True, description="YYYY-MM-DD, not in the future")),
    Property("date_of_information", "f.date_of_information", "date", filterable=True, sortable=True,
             shapefile="date_of_in",
             aliases=("date_of_information", "date_of_in", "date_info", "info_date"),
             input=Input("date", not_in_future=True, earliest=date(1900, 1, 1),
                         description="The date the information about the hazard was collected (GICHD Minimum "
                                     "Data Requirements): YYYY-MM-DD, from 1900-01-01, not in the future")),
    Property("priority", "f.priority", "string", filterable=True, sortable=True, values=("high", "medium", "low"),
             aliases=("priority", "prio", "hazard_priority", "release_priority"),
             input=Input("text", description="The national centre's priority for releasing the hazard (GICHD "
                                             "Minimum Data Requirements): high, medium or low")),
    # GICHD Minimum Data Requirements of a hazard (0013): the evidence of contamination and what it blocks
    Property("evidence_kind", "f.evidence_kind", "string", shapefile="evid_kind", values=EVIDENCE_KINDS,
             aliases=("evidence_kind", "evid_kind"), filterable=True,
             input=Input("text", description="direct (an accident, a device seen) or indirect evidence")),
    Property("evidence", "f.evidence", "array", shapefile="evidence", values=EVIDENCE_TYPES,
             aliases=("evidence", "evidence_type", "evidence_types"),
             input=Input("text[]", description="What the evidence is: " + ", ".join(EVIDENCE_TYPES))),
    Property("blockages", "f.blockages", "array", shapefile="blockages", values=BLOCKAGES,
             aliases=("blockages", "blockage", "blocks"),
             input=Input("text[]", description="What the hazard blocks: " + ", ".join(BLOCKAGES))),
    # the reporting organisation, from the State's register (app.organisations; set when a submission is approved)
    Property("organisation_id", "f.organisation_id", "uuid", tile=False, shapefile="org_id"),
    Property("organisation", "(SELECT o.name FROM organisations o WHERE o.id = f.organisation_id)", "string",
             shapefile="org"),
    Property("parent_id", "f.parent_id", "uuid", filterable=True, tile=False),
    Property("baseline_area_m2", "f.baseline_area_m2", "number", filterable=True, shapefile="base_m2", sortable=True),
    Property("remaining_area_m2", "f.remaining_area_m2", "number", filterable=True, shapefile="remain_m2",
             sortable=True),
    Property("status", "f.status", "string", sortable=True, filterable=True, values=HAZARD_STATUSES),
    Property("released_on", "f.released_on", "date", filterable=True, sortable=True, shapefile="released"),
    # where the hazard lies (app/places): its province, and whether it was accepted across its State's border
    Property("province_code", "f.province_code", "string", filterable=True, sortable=True, shapefile="prov_code"),
    Property("province", "(SELECT p.name FROM provinces p WHERE p.code = f.province_code)", "string",
             shapefile="province"),
    Property("border_flag", "f.border_flag", "boolean", filterable=True, shapefile="border"),
)
HAZARD_INPUTS = tuple(p for p in HAZARD_PROPERTIES if p.input is not None)  # what the client gives of a hazard

def _devices_found(category: str) -> str:
    """SQL: how many devices of the category the event found (its devices, `event_devices`)."""
    return (f"(SELECT COALESCE(sum(d.quantity), 0)::integer FROM event_devices d WHERE d.event_id = f.id "
            f"AND d.category = '{category}')")


EVENT_PROPERTIES: tuple[Property, ...] = (
    Property("state", "f.state_iso3", "string", filterable=True, sortable=True),
    Property("hazard_id", "f.hazard_id", "uuid", filterable=True),
    Property("external_id", "f.external_id", "string", filterable=True, sortable=True, shapefile="ext_id",
             aliases=("external_id", "ext_id", "event_id", "event_ref", "event_external_id"),
             input=Input("text", min_length=1, max_length=200)),
    Property("kind", "f.kind", "string", sortable=True, filterable=True, values=EVENT_KINDS,
             input=Input("varchar(20)", required=True)),
    Property("releases_land", sql_releases_land("f.kind"), "boolean", filterable=True, shapefile="releases"),
    Property("date", "f.date", "date", filterable=True, sortable=True, input=Input("date", required=True,
             calendar=True)),
    Property("organisation", "f.organisation", "string", filterable=True, sortable=True, shapefile="org",
             input=Input("text", max_length=500)),
    Property("organisation_id", "f.organisation_id", "uuid", tile=False, shapefile="org_id"),  # app.organisations
    # GICHD Minimum Data Requirements of a land-release report (0013); the event's date is the end date
    Property("start_date", "f.start_date", "date", shapefile="start",
             input=Input("date", calendar=True, description="The day the work began (the event's date is its end)")),
    Property("work_status", "f.work_status", "string", shapefile="work_stat", values=WORK_STATUSES, filterable=True,
             input=Input("text", description="completed, suspended, or ongoing for a progress report")),
    Property("methods", "f.methods", "array", values=WORK_METHODS,
             input=Input("text[]", description="The methods and assets used: " + ", ".join(WORK_METHODS))),
    Property("clearance_depth_cm", "f.clearance_depth_cm", "integer", shapefile="depth_cm",
             input=Input("integer", description="The depth cleared to, in cm")),
    Property("land_use", "f.land_use", "array", values=LAND_USES,
             input=Input("text[]", description="The use of the land after release: " + ", ".join(LAND_USES))),
    Property("handover_date", "f.handover_date", "date", shapefile="handover",
             input=Input("date", calendar=True, description="The day the released land was handed over")),
    Property("handover_to", "f.handover_to", "string", shapefile="handed_to", tile=False,
             input=Input("text", max_length=500, description="To whom the land was handed over")),
    *(Property(f"{reach}_{group}", f"f.{reach}_{group}", "integer", tile=False, shapefile=f"{reach[:3]}_{group}",
               input=Input("integer", description=f"{reach.capitalize()} beneficiaries: {group} (Oslo Action Plan "
                                                  "Action 22: data by sex and age)"))
      for reach in ("direct", "indirect") for group in BENEFICIARY_GROUPS),
    Property("released_area_m2", "f.released_area_m2", "number", filterable=True, shapefile="rel_m2", sortable=True),
    Property("outside_area_m2", "f.outside_area_m2", "number", filterable=True, sortable=True, tile=False,
             shapefile="out_m2"),
    Property("ap_mines", "f.ap_mines", "integer", filterable=True, sortable=True),
    Property("improvised_ap_mines", "f.improvised_ap_mines", "integer", filterable=True, shapefile="iap_mines"),
    Property("av_mines", "f.av_mines", "integer", filterable=True, sortable=True),
    Property("other_eo", "f.other_eo", "integer", filterable=True),
    # the devices found (app.ledger.devices) that other_eo counts together, by category, and the models found
    *(Property(name, _devices_found(category), "integer", filterable=True, tile=False, shapefile=short)
      for name, category, short in (("uxo", "UXO", None), ("cluster_submunitions", "CLUSTER_SUBMUNITION", "cluster_sm"),
                                    ("other_devices", "OTHER", "other_dev"))),
    Property("device_models", "(SELECT COALESCE(array_agg(DISTINCT d.model ORDER BY d.model), '{}') FROM "
             "event_devices d WHERE d.event_id = f.id AND d.model IS NOT NULL)", "array", tile=False,
             shapefile="dev_models"),
    Property("new_hazard_id", "f.new_hazard_id", "uuid", filterable=True, tile=False, shapefile="new_hazard"),
    Property("voided", "f.voided_at IS NOT NULL", "boolean", filterable=True,
             export=False),  # the export has valid events only
    Property("void_reason", "f.void_reason", "string", filterable=True, tile=False, export=False),
    Property("recorded_at", "f.recorded_at", "date-time", filterable=True, sortable=True, tile=False, export=False),
)
EVENT_INPUTS = tuple(p for p in EVENT_PROPERTIES if p.input is not None)  # what the client gives of an event
# An event's hazard by its external_id, in files: the column the export writes after `hazard_id` (read over
# the hazard `h`), and the one the history import matches (app.files.history)
EVENT_HAZARD_REFERENCE = Property("hazard_external_id", "h.external_id", "string", shapefile="hazard_ext",
                                  aliases=("hazard_external_id", "hazard_ext", "hazard_ref", "hazard_code", "hazard"))

# The submissions awaiting review (app.submissions), as reviewers and operators read them in the OGC API: the
# source row `f` is a submission with its land-release report's kind (`event_kind`), what it would release
# (`would_release_m2`) and its geometry (app.ogc.collections)
SUBMISSION_KINDS = ("hazard", "release", "batch")
PENDING_STATUSES = ("submitted", "returned")  # not approved yet: awaiting review, or returned for correction
SUBMISSION_PROPERTIES: tuple[Property, ...] = (
    Property("state", "f.state_iso3", "string", filterable=True, sortable=True),
    Property("kind", "f.kind", "string", filterable=True, sortable=True, values=SUBMISSION_KINDS),
    Property("event_kind", "f.event_kind", "string", filterable=True, values=EVENT_KINDS),  # a land-release report's
    Property("status", "f.status", "string", filterable=True, sortable=True, values=PENDING_STATUSES),
    Property("hazard_id", "f.hazard_id", "uuid", filterable=True, tile=False),  # the hazard a report is for
    Property("organisation_id", "f.organisation_id", "uuid", filterable=True, tile=False),
    Property("organisation", "(SELECT o.name FROM organisations o WHERE o.id = f.organisation_id)", "string",
             filterable=True, sortable=True),
    Property("revision", "f.revision", "integer", filterable=True),
    Property("feature_count", "f.feature_count", "integer", filterable=True),
    Property("area_m2", "f.area_m2", "number", filterable=True, sortable=True),  # of the submitted polygons
    # a land-release report's: the land of its hazard, as it remains now, that approving it would release
    Property("would_release_m2", "f.would_release_m2", "number", filterable=True, sortable=True),
    Property("date_of_information", "f.date_of_information", "date", filterable=True, sortable=True),
    Property("submitted_by", "f.submitted_by", "string", filterable=True, sortable=True),
    Property("submitted_at", "f.submitted_at", "date-time", filterable=True, sortable=True),
    Property("comment", "f.comment", "string", tile=False),  # a returned submission's: what to correct
)


def sql_json_properties(properties: tuple[Property, ...]) -> str:
    """`json_build_object(...)` of the properties, in their declared order."""
    return "json_build_object(" + ", ".join(f"'{p.name}', {p.sql}" for p in properties) + ")"


# A tile's own attribute, after the feature's id and its tile properties: how many features the drawn
# feature stands for (1 for a polygon; a point stands for every feature under a pixel in its pixel: app.ogc.tiles)
POINT_COUNT = "point_count"


def sql_tile_attributes(properties: tuple[Property, ...]) -> str:
    """The SELECT list of a tile's attributes from the feature: its id, then each tile property, in MVT types."""
    return ", ".join(["f.id::text AS id", *(f"{p.mvt_sql} AS {p.name}" for p in properties if p.tile)])
