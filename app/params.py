"""Parameter types the routes share, declared once so the OpenAPI document states them exactly.

- `ISO3`: a State in a path, `^[A-Za-z]{3}$` (an ISO 3166 alpha-3 code; any case, read upper-case).
- `CalendarDate`: a day written YYYY-MM-DD. Pydantic alone would also read a number as a Unix time
  (`as_of=0` as 1970-01-01); a number is refused.
- `Instant`: a point in time in ISO 8601: a date-time (`2024-05-01T08:00:00Z`, with or without its
  offset) or a plain date (its midnight). Numbers are refused here too.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BeforeValidator

ISO3_PATTERN = "^[A-Za-z]{3}$"
ISO3 = Annotated[str, Path(pattern=ISO3_PATTERN, description="ISO 3166 alpha-3 code of the State, e.g. KHM")]

_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?"


def _date_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(_DATE, value.strip()):
        raise ValueError("give a date as YYYY-MM-DD")
    if isinstance(value, (int, float)):
        raise ValueError("give a date as YYYY-MM-DD, not a number")
    return value


def _instant_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(f"{_DATE}({_TIME})?", value.strip()):
        raise ValueError("give an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SSZ)")
    if isinstance(value, (int, float)):
        raise ValueError("give an ISO 8601 date or date-time, not a number")
    return value


CalendarDate = Annotated[date, BeforeValidator(_date_text)]
Instant = Annotated[datetime | date, BeforeValidator(_instant_text)]
