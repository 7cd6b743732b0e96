"""The ledger: the domain of hazards and land-release events, between the routers and SQL.

- `book`: recording hazards and events, voids, replays, and the ledger's JSON reads;
- `corrections`: correcting a hazard (its declared attributes, its polygon with every event replayed), each
  correction kept with who, when, why, before and after;
- `input`: the rules the properties follow on the way in, for the JSON API and the file import;
- `as_of`: the ledger seen at a date (the SELECT of the hazards as they stood at the end of a day);
- `overlaps`: land is counted once per State;
- `results`: what the writes answer, typed.

The properties of each layer, as every output names them, are declared in `app.layers`.
"""
from app.ledger.book import (
    LEDGER_ORDER,
    NewEvent,
    NewHazard,
    hazard_feature,
    list_hazards,
    lock_state_of,
    record_event,
    record_hazards,
    replay,
    require_state,
    void_event,
)

__all__ = [
    "LEDGER_ORDER", "NewEvent", "NewHazard", "hazard_feature", "list_hazards", "lock_state_of", "record_event",
    "record_hazards", "replay", "require_state", "void_event",
]
