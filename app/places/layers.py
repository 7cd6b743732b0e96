"""The properties of the boundary layers (OGC collections `countries` and `provinces`), declared as
`app.layers` declares the ledger's: each an SQL expression over the source row `f`."""
from __future__ import annotations

from app.layers import Property

# where a map writes the name (a point inside the largest part, migration 0008)
LABEL = (Property("label_lon", "ST_X(f.label)", "number"), Property("label_lat", "ST_Y(f.label)", "number"))

COUNTRY_PROPERTIES: tuple[Property, ...] = (
    Property("iso3", "f.iso3", "string", filterable=True, sortable=True),
    Property("name", "f.name", "string"),
    *LABEL,
)

PROVINCE_PROPERTIES: tuple[Property, ...] = (
    Property("code", "f.code", "string", sortable=True),
    Property("name", "f.name", "string"),
    Property("state", "f.iso3", "string", filterable=True, sortable=True),
    Property("other_names", "f.other_names", "array", tile=False),
    *LABEL,
)

