"""Units of the Committee's figures: areas are kept and summed in m2; the Committee reads km2.

`M2_PER_KM2` is the one conversion factor and `km2` the one rounding rule (Python's `round` of the
area divided by it, None staying None). Two precisions are declared, by what the figure is for:
- `CSV_KM2_DECIMALS` (3, a thousand m2): the Committee's spreadsheets (the overview and Article 7 CSVs);
- `KM2_DECIMALS` (6, a square metre): the data behind the charts, which keeps every m2.
Other parts of the service that show km2 should use these.
"""
from __future__ import annotations

from typing import overload

M2_PER_KM2 = 1_000_000.0
KM2_DECIMALS = 6
CSV_KM2_DECIMALS = 3


@overload
def km2(area_m2: float, decimals: int = ...) -> float: ...
@overload
def km2(area_m2: None, decimals: int = ...) -> None: ...
def km2(area_m2: float | None, decimals: int = KM2_DECIMALS) -> float | None:
    """The area in km2, rounded to `decimals` places (None stays None)."""
    return None if area_m2 is None else round(area_m2 / M2_PER_KM2, decimals)
