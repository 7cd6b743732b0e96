"""One declaration of each layer: the kinds of event, and the properties of hazards and events.

The OGC items and single items (`app.ogc.items`), the vector tiles (`app.ogc.tiles`) and the OGC
collections are generated from these tuples: adding a property to a layer is one `Property` entry
here (plus its column in a migration and in `app.models`). Each property is an SQL expression over
the layer's source row, aliased `f` (`app.ogc.collections.Collection.source`).

This module knows no database, HTTP or files: it imports nothing of the application.
"""
from __future__ import annotations

from dataclasses import dataclass


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


# --- properties -------------------------------------------------------------------------------------
# JSON types: string, number, integer, boolean, date, date-time, uuid, array (of strings)
_MVT_TEXT_TYPES = ("date", "date-time", "uuid")


@dataclass(frozen=True)
class Property:
    """One property of a layer, as every output and input names and types it."""

    name: str  # JSON name (OGC properties, exports' column, tile attribute)
    sql: str  # expression over the source row `f`
    type: str  # JSON type, see above
    tile: bool = True  # an attribute of the vector tiles
    shapefile: str | None = None  # the 10-character Shapefile field name, when `name` is longer
    aliases: tuple[str, ...] = ()  # column names an imported file may use for it
    filterable: bool = False
    sortable: bool = False

    @property
    def mvt_sql(self) -> str:
        """The expression in a type MVT can carry: ids and dates as text, a list as comma-separated text."""
        if self.type == "array":
            return f"array_to_string({self.sql}, ',')"
        if self.type in _MVT_TEXT_TYPES:
            return f"({self.sql})::text"
        return self.sql


HAZARD_PROPERTIES: tuple[Property, ...] = (
    Property("state", "f.state_iso3", "string", filterable=True, sortable=True),
    Property("external_id", "f.external_id", "string", shapefile="ext_id", sortable=True,
             aliases=("external_id", "external_i", "ext_id", "hazard_id", "hazard_ref", "ref", "reference", "code")),
    Property("name", "f.name", "string", aliases=("name", "hazard_name", "site_name")),
    Property("classification", "f.classification", "string", shapefile="class", filterable=True,
             aliases=("classification", "classifica", "class", "hazard_class", "haz_class", "category")),
    Property("contamination", "f.contamination", "array", shapefile="contam",
             aliases=("contamination", "contaminat", "contam", "contamination_types", "hazard_type")),
    Property("region", "f.region", "string", aliases=("region", "province", "district")),
    Property("recorded_on", "f.recorded_on", "date", shapefile="recorded", sortable=True,
             aliases=("recorded_on", "recorded_o", "recorded", "record_date", "date_recorded", "survey_date", "date")),
    Property("date_of_information", "f.date_of_information", "date", shapefile="date_of_in",
             aliases=("date_of_information", "date_of_in", "date_info", "info_date")),
    Property("parent_id", "f.parent_id", "uuid", tile=False),
    Property("baseline_area_m2", "f.baseline_area_m2", "number", shapefile="base_m2", sortable=True),
    Property("remaining_area_m2", "f.remaining_area_m2", "number", shapefile="remain_m2", sortable=True),
    Property("status", "f.status", "string", filterable=True),
    Property("released_on", "f.released_on", "date", shapefile="released"),
    # where the hazard lies (app/places): its province, and whether it was accepted across its State's border
    Property("province_code", "f.province_code", "string", shapefile="prov_code"),
    Property("province", "(SELECT p.name FROM provinces p WHERE p.code = f.province_code)", "string",
             shapefile="province"),
    Property("border_flag", "f.border_flag", "boolean", shapefile="border"),
)

EVENT_PROPERTIES: tuple[Property, ...] = (
    Property("state", "f.state_iso3", "string", filterable=True, sortable=True),
    Property("hazard_id", "f.hazard_id", "uuid"),
    Property("external_id", "f.external_id", "string", shapefile="ext_id"),
    Property("kind", "f.kind", "string", filterable=True),
    Property("releases_land", sql_releases_land("f.kind"), "boolean", shapefile="releases"),
    Property("date", "f.date", "date", sortable=True),
    Property("organisation", "f.organisation", "string", shapefile="org"),
    Property("released_area_m2", "f.released_area_m2", "number", shapefile="rel_m2", sortable=True),
    Property("outside_area_m2", "f.outside_area_m2", "number", tile=False, shapefile="out_m2"),
    Property("ap_mines", "f.ap_mines", "integer"),
    Property("improvised_ap_mines", "f.improvised_ap_mines", "integer", shapefile="iap_mines"),
    Property("av_mines", "f.av_mines", "integer"),
    Property("other_eo", "f.other_eo", "integer"),
    Property("new_hazard_id", "f.new_hazard_id", "uuid", tile=False, shapefile="new_hazard"),
    Property("voided", "f.voided_at IS NOT NULL", "boolean"),
    Property("void_reason", "f.void_reason", "string", tile=False),
    Property("recorded_at", "f.recorded_at", "date-time", tile=False),
)


def sql_json_properties(properties: tuple[Property, ...]) -> str:
    """`json_build_object(...)` of the properties, in their declared order."""
    return "json_build_object(" + ", ".join(f"'{p.name}', {p.sql}" for p in properties) + ")"


def sql_tile_attributes(properties: tuple[Property, ...]) -> str:
    """The SELECT list of a tile's attributes: the feature's id, then each tile property in MVT types."""
    return ", ".join(["f.id::text AS id", *(f"{p.mvt_sql} AS {p.name}" for p in properties if p.tile)])
