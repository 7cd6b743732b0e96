"""The hazard fields a file's columns are matched to: their aliases (declared in `app.layers`) and a
`mapping` given with the import."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

from app.layers import EVENT_HAZARD_REFERENCE, EVENT_INPUTS, EVENT_PROPERTIES, HAZARD_INPUTS
from app.models import ITEM_KINDS
from app.problems import Problem

# the hazard fields a file's columns are matched to (what the client gives of a hazard), and their aliases
# (a field without aliases by its own name), as the layer declares them (app.layers)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {p.name: p.aliases or (p.name,) for p in HAZARD_INPUTS}
HAZARD_FIELDS = tuple(COLUMN_ALIASES)
REQUIRED_FIELDS = tuple(p.name for p in HAZARD_INPUTS if p.input and p.input.required)
# the event fields of a history file's events (app.files.history): the event's hazard by its external_id, what
# the client gives of an event, and the items destroyed, by their names (and their Shapefile names)
EVENT_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    EVENT_HAZARD_REFERENCE.name: EVENT_HAZARD_REFERENCE.aliases,
    **{p.name: p.aliases or (p.name, *((p.shapefile,) if p.shapefile else ())) for p in EVENT_INPUTS},
    **{p.name: (p.name, *((p.shapefile,) if p.shapefile else ())) for p in EVENT_PROPERTIES if p.name in ITEM_KINDS},
}
EVENT_FIELDS = tuple(EVENT_COLUMN_ALIASES)
REQUIRED_EVENT_FIELDS = (EVENT_HAZARD_REFERENCE.name,
                         *(p.name for p in EVENT_INPUTS if p.input and p.input.required))


def read_mapping(value: str | None, fields: tuple[str, ...] = HAZARD_FIELDS) -> dict[str, str]:
    """`{"external_id": "REF"}` or `external_id=REF,classification=CLASS` into {field: column} (of `fields`)."""
    if value is None or not value.strip():
        return {}
    value = value.strip()
    if value.startswith("{"):
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise Problem(400, f"mapping is not valid JSON: {exc.msg}", invalid_params=[
                {"name": "mapping", "reason": "not valid JSON"}]) from exc
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise Problem(400, "mapping must be a JSON object of field name to column name",
                          invalid_params=[{"name": "mapping", "reason": "not an object of strings"}])
        pairs = list(loaded.items())
    else:
        pairs = []
        for part in re.split(r"[,\n]", value):
            if not part.strip():
                continue
            if "=" not in part:
                raise Problem(400, f"mapping entry '{part.strip()}' is not field=column",
                              invalid_params=[{"name": "mapping", "reason": "entries are field=column"}])
            target, column = part.split("=", 1)
            pairs.append((target.strip(), column.strip()))
    unknown = [t for t, _ in pairs if t not in fields]
    if unknown:
        raise Problem(400, f"mapping names unknown field(s) {', '.join(unknown)}: the fields are "
                           f"{', '.join(fields)}",
                      invalid_params=[{"name": "mapping", "reason": "unknown field"}])
    return dict(pairs)


def resolve_columns(columns: list[str], given: Mapping[str, str],
                    aliases: Mapping[str, tuple[str, ...]] = COLUMN_ALIASES,
                    required: tuple[str, ...] = REQUIRED_FIELDS) -> dict[str, str]:
    """{field: column of the file} from the given mapping, then the `aliases` of each field (a hazard's by
    default); 422 if a `required` field has none."""
    by_lower = {c.lower(): c for c in columns}
    resolved: dict[str, str] = {}
    for target, column in given.items():
        found = by_lower.get(column.lower())
        if found is None:
            raise Problem(422, f"The mapping names column '{column}' for {target}, but the file has no such column. "
                               f"Its columns are: {', '.join(columns) or '(none)'}.", columns=columns)
        resolved[target] = found
    taken = set(resolved.values())
    for target, names in aliases.items():
        if target in resolved:
            continue
        for alias in names:
            found = by_lower.get(alias)
            if found is not None and found not in taken:
                resolved[target] = found
                taken.add(found)
                break
    missing = [t for t in required if t not in resolved]
    if missing:
        raise Problem(422, f"No column found for {', '.join(missing)}. The file's columns are: "
                           f"{', '.join(columns) or '(none)'}. Name them with a mapping, e.g. "
                           f"mapping=external_id=REF,classification=CLASS,recorded_on=DATE.",
                      missing_fields=missing, columns=columns)
    return resolved
