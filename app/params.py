"""Parameter types the routes share, declared once so the OpenAPI document states them exactly.

- `ISO3`: a State in a path, `^[A-Za-z]{3}$` (an ISO 3166 alpha-3 code; any case, read upper-case).
- `IsoDate`: a day written YYYY-MM-DD. Pydantic alone would also read a number as a Unix time
  (`as_of=0` as 1970-01-01); a number is refused.
- `CalendarDate`: an `IsoDate` from 1900-01-01 to 2200-12-31 (the range every date of the service is
  computed over; the OpenAPI pattern says so). A date with a narrower rule of its own (a hazard's
  recorded_on is not in the future) is an `IsoDate` checked by that rule.
- `MAX_OFFSET`: a paging offset is at most PostgreSQL's bigint (a larger one could not be sent to it).
- `Instant`: a point in time in ISO 8601: a date-time (`2024-05-01T08:00:00Z`, with or without its
  offset) or a plain date (its midnight). Numbers are refused here too.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BeforeValidator, WithJsonSchema

MAX_OFFSET = 2**63 - 1
ISO3_PATTERN = "^[A-Za-z]{3}$"
ISO3 = Annotated[str, Path(pattern=ISO3_PATTERN, description="ISO 3166 alpha-3 code of the State, e.g. KHM")]

_DATE = r"\d{4}-\d{2}-\d{2}"
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2200, 12, 31)
# YYYY-MM-DD with a year from 1900 to 2200 (the calendar itself is format: date's business)
DATE_PATTERN = r"^(19\d\d|2[01]\d\d|2200)-\d\d-\d\d$"
_TIME = r"[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?"


def _date_text(value: Any) -> Any:
    if isinstance(value, (int, float)):
        raise ValueError("give a date as YYYY-MM-DD, not a number")
    if isinstance(value, str) and not re.fullmatch(_DATE, value.strip()):
        raise ValueError("give a date as YYYY-MM-DD")
    return value


def _date_in_range(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(_DATE, value.strip()) and not re.fullmatch(DATE_PATTERN, value.strip()):
        raise ValueError(f"the date {value.strip()} is out of range: give a date from {EARLIEST_DATE} to {LATEST_DATE}")
    return value


def _instant_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(f"{_DATE}({_TIME})?", value.strip()):
        raise ValueError("give an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SSZ)")
    if isinstance(value, (int, float)):
        raise ValueError("give an ISO 8601 date or date-time, not a number")
    return value


IsoDate = Annotated[date, BeforeValidator(_date_text)]
CalendarDate = Annotated[IsoDate, BeforeValidator(_date_in_range),
                         WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN})]
Instant = Annotated[datetime | date, BeforeValidator(_instant_text)]
