"""The explosive ordnance found by a land-release report, one by one (GICHD Minimum Data Requirements):
category, model, quantity, disposal and, optionally, where it was found.

Rules:
- Categories: `AP_MINE`, `IMPROVISED_AP_MINE`, `AV_MINE`, `UXO`, `CLUSTER_SUBMUNITION`, `OTHER`;
  disposal: `destroyed_in_situ` or `removed`; a quantity is a positive integer; a location is a
  GeoJSON Point in WGS84 longitude/latitude.
- The devices replace the event's four counters as the record: the counters (`ap_mines`,
  `improvised_ap_mines`, `av_mines`, `other_eo`) are their totals, kept on the event for the figures
  that read them (UXO, cluster submunitions and other items count as other explosive ordnance). An
  event given counters only records one device per counted kind (as migration 0014 did with the
  events stored before it); an event given both is a 422 when they disagree.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.models import ITEM_KINDS
from app.problems import Problem

Category = Literal["AP_MINE", "IMPROVISED_AP_MINE", "AV_MINE", "UXO", "CLUSTER_SUBMUNITION", "OTHER"]
DEVICE_CATEGORIES = get_args(Category)
DISPOSALS = ("destroyed_in_situ", "removed")
# the counter each category adds to (app.models.ITEM_KINDS), and the category a counter's devices are recorded as
COUNTER_OF = {"AP_MINE": "ap_mines", "IMPROVISED_AP_MINE": "improvised_ap_mines", "AV_MINE": "av_mines",
              "UXO": "other_eo", "CLUSTER_SUBMUNITION": "other_eo", "OTHER": "other_eo"}
CATEGORY_OF_COUNTER = {"ap_mines": "AP_MINE", "improvised_ap_mines": "IMPROVISED_AP_MINE", "av_mines": "AV_MINE",
                       "other_eo": "OTHER"}
assert set(COUNTER_OF.values()) == set(ITEM_KINDS) == set(CATEGORY_OF_COUNTER)


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category
    model: str | None = Field(None, min_length=1, max_length=200, description="e.g. PMN-2, Type 72A")
    quantity: int = Field(1, ge=1, strict=True)
    disposal: Literal["destroyed_in_situ", "removed"] | None = None
    location: dict[str, Any] | None = Field(None, description="Where it was found: a GeoJSON Point in WGS84")

    @field_validator("location")
    @classmethod
    def _a_point(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        coordinates = value.get("coordinates")
        if value.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) not in (2, 3) \
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates) \
                or not (-180 <= coordinates[0] <= 180 and -90 <= coordinates[1] <= 90):
            raise ValueError("a location is a GeoJSON Point of WGS84 longitude and latitude")
        return {"type": "Point", "coordinates": [float(coordinates[0]), float(coordinates[1])]}


def counters(devices: list[Device]) -> dict[str, int]:
    """The four counters the devices add up to."""
    totals = dict.fromkeys(ITEM_KINDS, 0)
    for device in devices:
        totals[COUNTER_OF[device.category]] += device.quantity
    return totals


def from_counters(items: dict[str, int]) -> list[Device]:
    """One device per counted kind, for an event given counters only."""
    return [Device.model_validate({"category": CATEGORY_OF_COUNTER[item], "quantity": count})
            for item in ITEM_KINDS if (count := items.get(item, 0)) > 0]


def reconcile(devices: list[Device] | None, items: dict[str, int]) -> tuple[list[Device], dict[str, int]]:
    """The event's devices and counters from what was given (devices, counters or both)."""
    if devices is None:
        return from_counters(items), {item: items.get(item, 0) for item in ITEM_KINDS}
    totals = counters(devices)
    if any(items.get(item, 0) for item in ITEM_KINDS) and any(items.get(i, 0) != totals[i] for i in ITEM_KINDS):
        raise Problem(422, f"items_destroyed {items} disagree with the devices found, which add up to {totals}: "
                           "give the devices only (the counters are their totals).")
    return devices, totals


def record(session: Session, event_id: uuid.UUID, iso3: str, devices: list[Device]) -> None:
    if not devices:
        return
    session.execute(
        text("INSERT INTO event_devices (event_id, state_iso3, category, model, quantity, disposal, location) "
             "SELECT :event_id, :iso3, d.category, d.model, d.quantity, d.disposal, "
             "ST_SetSRID(ST_GeomFromGeoJSON(d.location), 4326) "
             "FROM jsonb_to_recordset(CAST(:devices AS jsonb)) AS d(category text, model text, quantity int, "
             "disposal text, location text)"),
        {"event_id": event_id, "iso3": iso3,
         "devices": json.dumps([{**d.model_dump(), "location": json.dumps(d.location) if d.location else None}
                                for d in devices])},
    )


def of_events(session: Session, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The devices of these events, in the order they were given."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in session.execute(
            text("SELECT event_id, category, model, quantity, disposal, ST_AsGeoJSON(location)::json AS location "
                 "FROM event_devices WHERE event_id = ANY(:ids) ORDER BY id"), {"ids": event_ids}):
        found.setdefault(row.event_id, []).append({"category": row.category, "model": row.model,
                                                   "quantity": row.quantity, "disposal": row.disposal,
                                                   "location": row.location})
    return found
