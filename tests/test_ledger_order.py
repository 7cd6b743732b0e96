"""Order independence: the ledger's state for any date is the same whatever order events arrived in."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import auth_headers, make_api_key, reset_database
from tests.ledger_scenarios import UTM48N, post_hazard, rect

KINDS = ("cancellation", "reduction", "clearance")
HAZARD_PERIMETER_M = 4 * 1000.0  # rect(0, 0, 1000, 1000)

event_strategy = st.tuples(
    st.integers(min_value=-100, max_value=900),  # x offset (m), may stick out of the hazard
    st.integers(min_value=-100, max_value=900),  # y offset (m)
    st.integers(min_value=50, max_value=700),  # width
    st.integers(min_value=50, max_value=700),  # height
    st.integers(min_value=0, max_value=6),  # date: days of a small set, so ties happen
    st.sampled_from(KINDS),
)


def _apply_in_order(client, events, order) -> dict[str, float]:
    reset_database()  # also removes the API keys: make a new one for this client
    client.headers.update(auth_headers(make_api_key("editor", "KHM")))
    hazard = post_hazard(client, "H", rect(0, 0, 1000, 1000))
    for i in order:
        x, y, w, h, day, kind = events[i]
        response = client.post(f"/api/v1/hazards/{hazard['id']}/events", params={"crs": UTM48N},
                               json={"kind": kind, "date": (date(2016, 1, 1) + timedelta(days=100 * day)).isoformat(),
                                     "geometry": rect(x, y, w, h)})
        # An event whose land was already released by an earlier-dated one is refused when it
        # arrives last, and kept with nothing released when it arrived first: same remaining land.
        assert response.status_code in (201, 422), response.text
    remaining = {}
    for day in range(-1, 8):
        as_of = (date(2016, 1, 1) + timedelta(days=100 * day)).isoformat()
        props = client.get(f"/api/v1/hazards/{hazard['id']}", params={"as_of": as_of}).json()["properties"]
        remaining[as_of] = props["remaining_area_m2"]
    return remaining


# derandomize: CI sees the same examples every run (a failure found once is found again)
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event_strategy, min_size=2, max_size=5), data=st.data())
def test_remaining_area_does_not_depend_on_arrival_order(client, events, data) -> None:
    in_date_order = sorted(range(len(events)), key=lambda i: events[i][4])
    shuffled = data.draw(st.permutations(range(len(events))))
    expected = _apply_in_order(client, events, in_date_order)
    actual = _apply_in_order(client, events, shuffled)
    for as_of, area in expected.items():
        # The ledger's tolerance (README, "Geometry and precision"): 0.1 m2 + 2 mm x perimeter, that
        # of the 1 km hazard the events cut (the replays of these examples agree to the last bit).
        assert actual[as_of] == pytest.approx(area, abs=0.1 + 0.002 * HAZARD_PERIMETER_M), (as_of, events, shuffled)
