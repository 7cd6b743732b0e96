"""Summaries, the Committee's overview and the Article 7 report, on a hand-built scenario with known answers.

Cambodia (KHM), squares in UTM 48N (geodesic areas from `true_area`):
- A  SHA 1000x1000, Battambang, AP_MINE, recorded 2020-03-01
     2021-05-10 cancellation y 0-300; 2021-12-01 cancellation y 500-600 (posted last: back-dated);
     2022-03-01 reclassification y 700-1000 -> child CHA (not "added"); 2023-07-01 reduction y 300-500
- child CHA 2023-04-01 clearance of its western half, 12 AP mines
- B  CHA 500x400, Pailin, AP_MINE + AV_MINE, recorded 2021-06-01; 2022-08-01 cleared in full (3 AP, 1 AV)
- C  SHA 600x600, Battambang, IMPROVISED_AP_MINE, recorded 2022-02-01; a cancellation of all of it, voided
- D  SHA 200x200, no region, recorded 2020-01-15; reclassified as a whole to CHA on 2022-05-01
- an extension granted on 2023-06-15 (deadline 2025-12-31 -> 2028-12-31) with milestones 2023 and 2024.
Bosnia and Herzegovina (BIH) has no hazard and no event.
"""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from pyproj import Transformer
from shapely.geometry import shape

from tests.ledger_scenarios import X0, Y0, post_event, post_hazard, rect, true_area

REL = 1e-4


def approx(value: float) -> pytest.approx:
    return pytest.approx(value, rel=REL, abs=2.0)


def a(x: float, y: float, w: float, h: float) -> float:
    return true_area(x, y, w, h)


AREA_A, AREA_B, AREA_C, AREA_D = (a(0, 0, 1000, 1000), a(2000, 0, 500, 400), a(0, 2000, 600, 600),
                                  a(3000, 3000, 200, 200))
CANCEL_1, CANCEL_2 = a(0, 0, 1000, 300), a(0, 500, 1000, 100)
SPLIT, REDUCTION, CHILD_CLEARANCE = a(0, 700, 1000, 300), a(0, 300, 1000, 200), a(0, 700, 500, 300)


@pytest.fixture
def scenario(client) -> dict:
    ha = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), recorded_on="2020-03-01", region="Battambang",
                     name="Phum A", contamination=["AP_MINE"])
    hd = post_hazard(client, "KHM-D", rect(3000, 3000, 200, 200), recorded_on="2020-01-15")
    hb = post_hazard(client, "KHM-B", rect(2000, 0, 500, 400), classification="CHA", recorded_on="2021-06-01",
                     region="Pailin", contamination=["AP_MINE", "AV_MINE"])
    hc = post_hazard(client, "KHM-C", rect(0, 2000, 600, 600), recorded_on="2022-02-01", region="Battambang",
                     contamination=["IMPROVISED_AP_MINE"])
    post_event(client, ha["id"], "cancellation", "2021-05-10", rect(0, 0, 1000, 300))
    split = post_event(client, ha["id"], "reclassification", "2022-03-01", rect(0, 700, 1000, 300))
    child = split["new_hazard_id"]
    post_event(client, child, "clearance", "2023-04-01", rect(0, 700, 500, 300), items_destroyed={"ap_mines": 12})
    post_event(client, ha["id"], "reduction", "2023-07-01", rect(0, 300, 1000, 200))
    post_event(client, ha["id"], "cancellation", "2021-12-01", rect(0, 500, 1000, 100))  # back-dated
    post_event(client, hb["id"], "clearance", "2022-08-01", rect(2000, 0, 500, 400),
               items_destroyed={"ap_mines": 3, "av_mines": 1})
    wrong = post_event(client, hc["id"], "cancellation", "2022-09-01", rect(0, 2000, 600, 600))
    voided = client.post(f"/api/v1/events/{wrong['id']}/void", json={"reason": "recorded on the wrong hazard"})
    assert voided.status_code == 200, voided.text
    post_event(client, hd["id"], "reclassification", "2022-05-01", None)
    extension = client.post("/api/v1/states/KHM/article5/decisions",
                            json={"kind": "extension", "decided_on": "2023-06-15", "deadline": "2028-12-31",
                                  "meeting": "21MSP"})
    assert extension.status_code == 201, extension.text
    # The work plan of this extension (the one in force today is the 22MSP's, in the reference data).
    plan = client.put("/api/v1/states/KHM/milestones", params={"decision_id": extension.json()["decision"]["id"]},
                      json=[{"year": 2023, "area_m2": 300_000, "areas": 2}, {"year": 2024, "area_m2": 400_000}])
    assert plan.status_code == 200, plan.text
    return {"A": ha["id"], "B": hb["id"], "C": hc["id"], "D": hd["id"], "child": child,
            "extension": extension.json()["decision"]["id"]}


def summary(client, iso3: str = "KHM", as_of: str | None = None) -> dict:
    response = client.get(f"/api/v1/states/{iso3}/summary", params={"as_of": as_of} if as_of else {})
    assert response.status_code == 200, response.text
    return response.json()


def check_area(entry: dict, count: int, area_m2: float) -> None:
    assert entry["count"] == count
    assert entry["area_m2"] == approx(area_m2)


def check_year(row: dict, year: int, cancelled=0.0, reduced=0.0, cleared=0.0, items=None, added=0.0,
               added_count=0) -> None:
    assert row["year"] == year
    assert row["cancelled_m2"] == approx(cancelled)
    assert row["reduced_m2"] == approx(reduced)
    assert row["cleared_m2"] == approx(cleared)
    assert row["released_m2"] == approx(cancelled + reduced + cleared)
    assert row["items_destroyed"] == {"ap_mines": 0, "improvised_ap_mines": 0, "av_mines": 0, "other_eo": 0,
                                      **(items or {})}
    assert row["added_m2"] == approx(added)
    assert row["added_count"] == added_count


def check_outlook(a5: dict, as_of: date, deadline: date, remaining_m2: float, rate_m2: float) -> None:
    """projected = as_of + remaining / rate (in years of 365 days); required = remaining / years left."""
    assert a5["deadline"] == deadline.isoformat()
    assert a5["days_remaining"] == (deadline - as_of).days
    assert a5["release_rate_m2_per_year"] == approx(rate_m2)
    projected = as_of + timedelta(days=round(remaining_m2 / rate_m2 * 365))
    assert abs((date.fromisoformat(a5["projected_completion"]) - projected).days) <= 1
    assert a5["on_track"] == (projected <= deadline)
    assert a5["required_rate_m2_per_year"] == approx(remaining_m2 / ((deadline - as_of).days / 365))


# --- one State -------------------------------------------------------------------------------------
def test_summary_at_the_end_of_2021(client, scenario) -> None:
    s = summary(client, as_of="2021-12-31")
    assert s["state"] == "KHM" and s["name"] == "Cambodia" and s["as_of"] == "2021-12-31"
    rem_a = AREA_A - CANCEL_1 - CANCEL_2  # the back-dated cancellation counts
    check_area(s["remaining"]["sha"], 2, rem_a + AREA_D)
    check_area(s["remaining"]["cha"], 1, AREA_B)
    check_area(s["remaining"]["total"], 3, rem_a + AREA_D + AREA_B)
    assert set(s["remaining"]["by_contamination"]) == {"AP_MINE", "AV_MINE"}
    check_area(s["remaining"]["by_contamination"]["AP_MINE"], 3, rem_a + AREA_D + AREA_B)
    check_area(s["remaining"]["by_contamination"]["AV_MINE"], 1, AREA_B)
    assert set(s["remaining"]["by_region"]) == {"Battambang", "Pailin", "(no region)"}
    check_area(s["remaining"]["by_region"]["Battambang"], 1, rem_a)
    check_area(s["remaining"]["by_region"]["Pailin"], 1, AREA_B)
    check_area(s["remaining"]["by_region"]["(no region)"], 1, AREA_D)
    by_year = s["released"]["by_year"]
    assert [y["year"] for y in by_year] == [2020, 2021]
    check_year(by_year[0], 2020, added=AREA_A + AREA_D, added_count=2)
    check_year(by_year[1], 2021, cancelled=CANCEL_1 + CANCEL_2, added=AREA_B, added_count=1)
    total = s["released"]["total"]
    assert total["cancelled_m2"] == approx(CANCEL_1 + CANCEL_2)
    assert total["reduced_m2"] == 0 and total["cleared_m2"] == 0
    a5 = s["article5"]
    assert a5["original_deadline"] == "2010-01-01" and a5["extensions"] == 2 and a5["status"] == "obligation"
    check_outlook(a5, date(2021, 12, 31), date(2025, 12, 31), rem_a + AREA_D + AREA_B, CANCEL_1 + CANCEL_2)
    assert s["milestones"] == []  # the work plan belongs to an extension granted later


def test_summary_at_the_end_of_2022_counts_the_split_but_not_the_voided_event(client, scenario) -> None:
    s = summary(client, as_of="2022-12-31")
    rem_a = AREA_A - CANCEL_1 - CANCEL_2 - SPLIT
    # A and C are SHA; the split-off child and the wholly reclassified D are CHA; B is cleared.
    check_area(s["remaining"]["sha"], 2, rem_a + AREA_C)
    check_area(s["remaining"]["cha"], 2, SPLIT + AREA_D)
    check_area(s["remaining"]["total"], 4, rem_a + AREA_C + SPLIT + AREA_D)
    assert set(s["remaining"]["by_contamination"]) == {"AP_MINE", "IMPROVISED_AP_MINE"}
    check_area(s["remaining"]["by_contamination"]["AP_MINE"], 3, rem_a + SPLIT + AREA_D)
    check_area(s["remaining"]["by_contamination"]["IMPROVISED_AP_MINE"], 1, AREA_C)
    assert set(s["remaining"]["by_region"]) == {"Battambang", "(no region)"}
    check_area(s["remaining"]["by_region"]["Battambang"], 3, rem_a + SPLIT + AREA_C)
    by_year = s["released"]["by_year"]
    assert [y["year"] for y in by_year] == [2020, 2021, 2022]
    # The reclassification is not released land; the split-off CHA is not newly found land.
    check_year(by_year[2], 2022, cleared=AREA_B, items={"ap_mines": 3, "av_mines": 1}, added=AREA_C, added_count=1)
    check_outlook(s["article5"], date(2022, 12, 31), date(2025, 12, 31), rem_a + AREA_C + SPLIT + AREA_D, AREA_B)


def test_an_extension_granted_mid_year(client, scenario) -> None:
    remaining = AREA_A - CANCEL_1 - CANCEL_2 - SPLIT + SPLIT - CHILD_CLEARANCE + AREA_C + AREA_D
    rate = AREA_B + CHILD_CLEARANCE  # 2022-08-01 and 2023-04-01 fall in the 365 days before
    before = summary(client, as_of="2023-06-14")
    check_area(before["remaining"]["total"], 4, remaining)
    assert before["article5"]["extensions"] == 2
    check_outlook(before["article5"], date(2023, 6, 14), date(2025, 12, 31), remaining, rate)
    assert before["milestones"] == []
    after = summary(client, as_of="2023-06-15")
    check_area(after["remaining"]["total"], 4, remaining)
    assert after["article5"]["extensions"] == 3
    check_outlook(after["article5"], date(2023, 6, 15), date(2028, 12, 31), remaining, rate)
    m2023, m2024 = after["milestones"]
    assert m2023["year"] == 2023 and m2023["planned_m2"] == 300_000 and m2023["planned_areas"] == 2
    assert m2023["released_m2"] == approx(CHILD_CLEARANCE)
    assert m2023["met"] is None  # not reached yet, and the year is not over
    assert m2023["decision_id"] == scenario["extension"]
    assert m2024["planned_m2"] == 400_000 and m2024["released_m2"] == 0 and m2024["met"] is None


def test_summary_at_the_end_of_2023_and_2024(client, scenario) -> None:
    s = summary(client, as_of="2023-12-31")
    rem_a = AREA_A - CANCEL_1 - CANCEL_2 - SPLIT - REDUCTION
    rem_child = SPLIT - CHILD_CLEARANCE
    check_area(s["remaining"]["sha"], 2, rem_a + AREA_C)
    check_area(s["remaining"]["cha"], 2, rem_child + AREA_D)
    assert rem_a == approx(a(0, 600, 1000, 100))  # the strip nothing touched
    by_year = s["released"]["by_year"]
    assert [y["year"] for y in by_year] == [2020, 2021, 2022, 2023]
    check_year(by_year[3], 2023, reduced=REDUCTION, cleared=CHILD_CLEARANCE, items={"ap_mines": 12})
    total = s["released"]["total"]
    assert total["cancelled_m2"] == approx(CANCEL_1 + CANCEL_2)
    assert total["reduced_m2"] == approx(REDUCTION)
    assert total["cleared_m2"] == approx(AREA_B + CHILD_CLEARANCE)
    assert total["items_destroyed"] == {"ap_mines": 15, "improvised_ap_mines": 0, "av_mines": 1, "other_eo": 0}
    assert total["added_m2"] == approx(AREA_A + AREA_B + AREA_C + AREA_D) and total["added_count"] == 4
    assert s["released"]["last_year"]["released_m2"] == approx(REDUCTION + CHILD_CLEARANCE)
    check_outlook(s["article5"], date(2023, 12, 31), date(2028, 12, 31), rem_a + AREA_C + rem_child + AREA_D,
                  REDUCTION + CHILD_CLEARANCE)
    m2023, m2024 = s["milestones"]
    assert m2023["released_m2"] == approx(REDUCTION + CHILD_CLEARANCE) and m2023["met"] is True
    assert m2024["released_m2"] == 0 and m2024["met"] is None

    later = summary(client, as_of="2024-12-31")
    assert [y["year"] for y in later["released"]["by_year"]] == [2020, 2021, 2022, 2023, 2024]
    check_year(later["released"]["by_year"][4], 2024)
    assert later["milestones"][1]["met"] is False  # 2024 is over and nothing was released
    a5 = later["article5"]
    assert a5["release_rate_m2_per_year"] == 0
    assert a5["projected_completion"] is None and a5["on_track"] is None  # no rate, no projection
    assert a5["required_rate_m2_per_year"] == approx(
        (rem_a + AREA_C + rem_child + AREA_D) / ((date(2028, 12, 31) - date(2024, 12, 31)).days / 365))


def test_nothing_counts_before_it_happened(client, scenario) -> None:
    s = summary(client, as_of="2019-12-31")
    check_area(s["remaining"]["total"], 0, 0)
    assert s["remaining"]["by_contamination"] == {} and s["remaining"]["by_region"] == {}
    assert s["released"]["by_year"] == []
    assert s["article5"]["release_rate_m2_per_year"] == 0


def test_a_state_with_no_events(client, scenario) -> None:
    s = summary(client, "BIH", as_of="2023-12-31")
    assert s["name"] == "Bosnia and Herzegovina"
    for key in ("sha", "cha", "total"):
        check_area(s["remaining"][key], 0, 0)
    assert s["released"]["by_year"] == [] and s["milestones"] == []
    assert s["released"]["total"]["released_m2"] == 0 and s["released"]["total"]["added_count"] == 0
    a5 = s["article5"]
    assert a5["deadline"] == "2027-03-01" and a5["extensions"] == 3
    assert a5["days_remaining"] == (date(2027, 3, 1) - date(2023, 12, 31)).days
    assert a5["release_rate_m2_per_year"] == 0 and a5["projected_completion"] is None and a5["on_track"] is None
    assert a5["required_rate_m2_per_year"] == 0


def test_summary_defaults_to_today(client, scenario) -> None:
    s = summary(client)
    assert s["as_of"] == date.today().isoformat()
    check_area(s["remaining"]["total"], 4, AREA_A - CANCEL_1 - CANCEL_2 - SPLIT - REDUCTION + SPLIT - CHILD_CLEARANCE
               + AREA_C + AREA_D)


# --- the Committee's overview ----------------------------------------------------------------------
def test_overview_json_and_csv(client, scenario) -> None:
    response = client.get("/api/v1/summary", params={"as_of": "2023-12-31"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == "2023-12-31"
    rows = {r["state"]: r for r in body["states"]}
    assert len(rows) == 35  # the 30 with mined areas and the five that withdrew in 2025
    khm, bih = rows["KHM"], rows["BIH"]
    rem_a = AREA_A - CANCEL_1 - CANCEL_2 - SPLIT - REDUCTION
    rem_child = SPLIT - CHILD_CLEARANCE
    check_area(khm["remaining"]["sha"], 2, rem_a + AREA_C)
    check_area(khm["remaining"]["cha"], 2, rem_child + AREA_D)
    assert khm["released_last_year"]["cancelled_m2"] == 0
    assert khm["released_last_year"]["reduced_m2"] == approx(REDUCTION)
    assert khm["released_last_year"]["cleared_m2"] == approx(CHILD_CLEARANCE)
    check_outlook(khm["article5"], date(2023, 12, 31), date(2028, 12, 31), rem_a + AREA_C + rem_child + AREA_D,
                  REDUCTION + CHILD_CLEARANCE)
    check_area(bih["remaining"]["total"], 0, 0)
    assert bih["article5"]["deadline"] == "2027-03-01" and bih["article5"]["on_track"] is None
    # Chad's extensions before 2019 are not known (their number neither), its 4RC deadline is; Eritrea's is not.
    assert rows["TCD"]["article5"]["deadline"] == "2025-01-01" and rows["TCD"]["article5"]["extensions"] is None
    assert rows["ERI"]["article5"]["deadline"] is None

    response = client.get("/api/v1/summary", params={"as_of": "2023-12-31", "format": "csv", "headers": "names"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].startswith('"state","name","status","bound","bound_reason","sha_count","sha_km2",'
                               '"cha_count","cha_km2",'
                               '"remaining_count","remaining_km2"')  # text is quoted (app/committee/spreadsheet.py)
    table = {r["state"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert len(table) == 35
    row = table["KHM"]

    def km2(value: str, expected_m2: float) -> None:
        assert len(value.split(".")[1]) <= 3 if "." in value else True
        assert float(value) == pytest.approx(expected_m2 / 1e6, abs=0.0011)

    assert row["sha_count"] == "2" and row["cha_count"] == "2" and row["remaining_count"] == "4"
    km2(row["sha_km2"], rem_a + AREA_C)
    km2(row["cha_km2"], rem_child + AREA_D)
    km2(row["remaining_km2"], rem_a + AREA_C + rem_child + AREA_D)
    km2(row["cancelled_last_year_km2"], 0)
    km2(row["reduced_last_year_km2"], REDUCTION)
    km2(row["cleared_last_year_km2"], CHILD_CLEARANCE)
    assert row["deadline"] == "2028-12-31" and row["extensions"] == "3" and row["status"] == "obligation"
    assert row["projected_completion"] == khm["article5"]["projected_completion"]
    assert row["on_track"] == ("true" if khm["article5"]["on_track"] else "false")
    assert table["BIH"]["remaining_km2"] == "0.0" and table["BIH"]["on_track"] == ""
    assert table["TCD"]["deadline"] == "2025-01-01" and table["TCD"]["extensions"] == ""
    assert table["ERI"]["deadline"] == "" and table["KHM"]["bound"] == "true"


def test_overview_shows_a_state_key_its_own_row_only(client_as) -> None:
    response = client_as("viewer", "KHM").get("/api/v1/summary")
    assert response.status_code == 200
    assert [r["state"] for r in response.json()["states"]] == ["KHM"]
    assert len(client_as("committee").get("/api/v1/summary").json()["states"]) == 35
    assert client_as(None).get("/api/v1/summary").status_code == 401


# --- the Article 7 report --------------------------------------------------------------------------
_TO_WGS84 = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)


def test_article7_report_for_2022(client, scenario) -> None:
    response = client.get("/api/v1/states/KHM/report", params={"year": 2022})
    assert response.status_code == 200, response.text
    r = response.json()
    assert r["state"] == "KHM" and r["year"] == 2022 and r["as_of"] == "2022-12-31"
    areas = r["mined_areas"]
    ids = [m["external_id"] for m in areas]
    assert ids[0] == "KHM-A" and ids[1].startswith("KHM-A/CHA-") and ids[2:] == ["KHM-C", "KHM-D"]
    a_row, child, c_row, d_row = areas
    assert a_row["classification"] == "SHA" and a_row["name"] == "Phum A" and a_row["region"] == "Battambang"
    assert a_row["remaining_m2"] == approx(AREA_A - CANCEL_1 - CANCEL_2 - SPLIT)
    assert child["classification"] == "CHA" and child["remaining_m2"] == approx(SPLIT)
    assert child["contamination"] == ["AP_MINE"]
    assert c_row["classification"] == "SHA" and c_row["contamination"] == ["IMPROVISED_AP_MINE"]
    assert c_row["remaining_m2"] == approx(AREA_C)  # the voided cancellation does not count
    assert d_row["classification"] == "CHA" and d_row["region"] is None and d_row["remaining_m2"] == approx(AREA_D)
    lon, lat = _TO_WGS84.transform(X0 + 300, Y0 + 2300)  # the middle of C
    assert c_row["centroid_lon"] == pytest.approx(lon, abs=2e-6)
    assert c_row["centroid_lat"] == pytest.approx(lat, abs=2e-6)
    lon, lat = _TO_WGS84.transform(X0 + 500, Y0 + 850)  # the middle of the split-off strip
    assert child["centroid_lon"] == pytest.approx(lon, abs=2e-6)
    assert child["centroid_lat"] == pytest.approx(lat, abs=2e-6)
    # A at the end of 2022: the strips y 300-500 (reduced in 2023) and 600-700 (still there); the location
    # is the centroid of that remainder, the same as the geometry the ledger gives for that date
    lon, lat = _TO_WGS84.transform(X0 + 500, Y0 + (400 * 200 + 650 * 100) / 300)
    assert a_row["centroid_lon"] == pytest.approx(lon, abs=2e-6)
    assert a_row["centroid_lat"] == pytest.approx(lat, abs=2e-6)
    then = client.get(f"/api/v1/hazards/{scenario['A']}", params={"as_of": "2022-12-31"}).json()
    centroid = shape(then["geometry"]).centroid
    assert a_row["centroid_lon"] == pytest.approx(centroid.x, abs=2e-7)
    assert a_row["centroid_lat"] == pytest.approx(centroid.y, abs=2e-7)
    check_area(r["totals"]["sha"], 2, a_row["remaining_m2"] + AREA_C)
    check_area(r["totals"]["cha"], 2, SPLIT + AREA_D)
    check_area(r["totals"]["total"], 4, sum(m["remaining_m2"] for m in areas))
    assert r["released"]["cleared_m2"] == approx(AREA_B)
    assert r["released"]["cancelled_m2"] == 0 and r["released"]["reduced_m2"] == 0
    assert r["released"]["items_destroyed"] == {"ap_mines": 3, "improvised_ap_mines": 0, "av_mines": 1, "other_eo": 0}
    assert r["added"]["added_m2"] == approx(AREA_C) and r["added"]["added_count"] == 1

    response = client.get("/api/v1/states/KHM/report", params={"year": 2022, "format": "csv", "headers": "names"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["external_id", "name", "region", "province_code", "province", "classification",
                             "contamination", "remaining_m2", "remaining_km2", "centroid_lon", "centroid_lat"]
    assert [row["external_id"] for row in rows] == ids + ["TOTAL"]
    for row, m in zip(rows, areas, strict=False):
        assert float(row["remaining_m2"]) == pytest.approx(m["remaining_m2"], abs=0.01)
        assert row["remaining_km2"] == str(round(m["remaining_m2"] / 1e6, 3))
        assert float(row["centroid_lon"]) == pytest.approx(m["centroid_lon"], abs=1e-7)
    assert rows[0]["contamination"] == "AP_MINE" and rows[3]["region"] == ""
    assert float(rows[-1]["remaining_m2"]) == pytest.approx(r["totals"]["total"]["area_m2"], abs=0.01)
    assert rows[-1]["remaining_km2"] == str(round(r["totals"]["total"]["area_m2"] / 1e6, 3))


def test_article7_report_for_2021_and_2023(client, scenario) -> None:
    r2021 = client.get("/api/v1/states/KHM/report", params={"year": 2021}).json()
    assert [m["external_id"] for m in r2021["mined_areas"]] == ["KHM-A", "KHM-B", "KHM-D"]
    assert r2021["mined_areas"][1]["region"] == "Pailin"
    # A was split in 2022 and B released in full in 2022: their end-of-2021 locations are the centroids of
    # what the ledger shows for that date
    for row, hazard in zip(r2021["mined_areas"][:2], (scenario["A"], scenario["B"]), strict=True):
        then = client.get(f"/api/v1/hazards/{hazard}", params={"as_of": "2021-12-31"}).json()
        centroid = shape(then["geometry"]).centroid
        assert (row["centroid_lon"], row["centroid_lat"]) == (pytest.approx(centroid.x, abs=2e-7),
                                                             pytest.approx(centroid.y, abs=2e-7))
    assert r2021["released"]["cancelled_m2"] == approx(CANCEL_1 + CANCEL_2)
    assert r2021["added"]["added_count"] == 1 and r2021["added"]["added_m2"] == approx(AREA_B)
    r2023 = client.get("/api/v1/states/KHM/report", params={"year": 2023}).json()
    child = r2023["mined_areas"][1]
    assert child["remaining_m2"] == approx(SPLIT - CHILD_CLEARANCE)
    lon, lat = _TO_WGS84.transform(X0 + 750, Y0 + 850)  # the eastern half that is left
    assert child["centroid_lon"] == pytest.approx(lon, abs=2e-6)
    assert r2023["released"]["reduced_m2"] == approx(REDUCTION)
    assert r2023["released"]["cleared_m2"] == approx(CHILD_CLEARANCE)
    assert r2023["released"]["items_destroyed"]["ap_mines"] == 12
    assert r2023["added"] == {"added_m2": 0.0, "added_count": 0}


def test_report_of_a_state_with_no_hazards_and_bad_years(client) -> None:
    r = client.get("/api/v1/states/BIH/report", params={"year": 2023}).json()
    assert r["mined_areas"] == [] and r["totals"]["total"] == {"count": 0, "area_m2": 0.0}
    response = client.get("/api/v1/states/BIH/report", params={"year": 2023, "format": "csv"})
    assert response.text.splitlines()[1:] == ['"TOTAL","0 areas","","","","","",0.0,0.0,"",""']
    for year in ("1990", str(date.today().year + 1), "twenty"):
        response = client.get("/api/v1/states/BIH/report", params={"year": year})
        assert response.status_code == 422, year
        assert "year" in response.json()["detail"]
    assert client.get("/api/v1/states/BIH/report").status_code == 422  # year is required
    assert client.get("/api/v1/states/BIH/report", params={"year": 2023, "format": "xls"}).status_code == 422


# --- the command line ------------------------------------------------------------------------------
def test_cli_report_prints_the_summary(client, scenario, database_url, monkeypatch, capsys) -> None:
    from app import cli
    from app.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert cli.main(["report", "khm", "--as-of", "2023-12-31"]) == 0
        out = capsys.readouterr().out
        assert "Cambodia (KHM), as of 2023-12-31" in out
        assert "deadline                  2028-12-31 (3 extension(s))" in out
        total = AREA_A - CANCEL_1 - CANCEL_2 - SPLIT - REDUCTION + SPLIT - CHILD_CLEARANCE + AREA_C + AREA_D
        assert f"{total / 1e6:,.3f}" in out
        assert cli.main(["report", "KHM", "--as-of", "2023-02-30"]) == 2
        assert cli.main(["report", "XXX"]) == 1
        assert "Unknown State 'XXX'" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


# --- the two forms of the remaining area -----------------------------------------------------------
def test_both_forms_of_the_remaining_area_agree(client, scenario) -> None:
    """From the baseline (events up to D) and from the current state (events after D): the same answer."""
    from sqlalchemy.orm import Session

    from app import database
    from app.committee import summaries

    days = [date(2019, 12, 31), date(2020, 3, 1), date(2021, 5, 9), date(2021, 5, 10), date(2021, 12, 31),
            date(2022, 3, 1), date(2022, 7, 31), date(2022, 8, 1), date(2022, 9, 1), date(2023, 3, 31),
            date(2023, 4, 1), date(2023, 6, 30), date(2023, 7, 1), date.today()]
    with Session(database.get_engine()) as session:
        for day in days:
            for states, detail in ((["KHM", "BIH"], True), (None, False)):
                current = summaries.remaining(session, day, states, detail, from_current_state=True)
                baseline = summaries.remaining(session, day, states, detail, from_current_state=False)
                assert set(current) == set(baseline), day
                for iso3, entry in current.items():
                    other = baseline[iso3]
                    assert entry.keys() == other.keys()
                    for key in ("sha", "cha", "total"):
                        check_area(entry[key], other[key]["count"], other[key]["area_m2"])
                    for key in ("by_contamination", "by_region"):
                        assert entry.get(key, {}).keys() == other.get(key, {}).keys(), (day, key)
                        for name, value in entry.get(key, {}).items():
                            check_area(value, other[key][name]["count"], other[key][name]["area_m2"])
        # Known answers, with events both before and after the date (B is cleared in full on 2022-08-01).
        for form in (True, False):
            left = summaries.remaining(session, date(2022, 7, 31), ["KHM"], True, from_current_state=form)["KHM"]
            rem_a = AREA_A - CANCEL_1 - CANCEL_2 - SPLIT
            check_area(left["sha"], 2, rem_a + AREA_C)
            check_area(left["cha"], 3, SPLIT + AREA_D + AREA_B)
            check_area(left["by_region"]["Pailin"], 1, AREA_B)
            left = summaries.remaining(session, date(2022, 8, 1), ["KHM"], True, from_current_state=form)["KHM"]
            check_area(left["cha"], 2, SPLIT + AREA_D)
            assert "Pailin" not in left["by_region"]
            left = summaries.remaining(session, date(2023, 6, 30), ["KHM"], True, from_current_state=form)["KHM"]
            check_area(left["sha"], 2, rem_a + AREA_C)
            check_area(left["cha"], 2, SPLIT - CHILD_CLEARANCE + AREA_D)


def test_the_summary_is_the_same_whichever_form_the_date_picks(client, scenario, monkeypatch) -> None:
    from app.committee import summaries

    recent = {day: summary(client, as_of=day) for day in ("2021-12-31", "2022-07-31", "2023-06-30")}
    monkeypatch.setattr(summaries, "RECENT_DAYS", 0)  # every past date now takes the baseline form
    for day, expected in recent.items():
        got = summary(client, as_of=day)
        for key in ("sha", "cha", "total"):
            check_area(got["remaining"][key], expected["remaining"][key]["count"],
                       expected["remaining"][key]["area_m2"])
        assert got["released"] == expected["released"]


# --- the architecture: typed results, their schemas and one registry of formats ----------------------
COMMITTEE_JSON_ROUTES = [
    ("get", "/api/v1/states"), ("get", "/api/v1/states/{iso3}"), ("post", "/api/v1/states/{iso3}/article5/decisions"),
    ("post", "/api/v1/states/{iso3}/article5/decisions/{decision_id}/corrections"),
    ("put", "/api/v1/states/{iso3}/milestones"), ("get", "/api/v1/states/{iso3}/summary"), ("get", "/api/v1/summary"),
    ("get", "/api/v1/states/{iso3}/report"), ("get", "/api/v1/states/{iso3}/overlaps"),
    ("get", "/api/v1/states/{iso3}/chart.json"), ("get", "/api/v1/audit"), ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"), ("delete", "/api/v1/keys/{key_id}"), ("get", "/health"),
]


def test_every_committee_json_route_declares_its_response_schema(client) -> None:
    document = client.get("/openapi.json").json()
    for method, path in COMMITTEE_JSON_ROUTES:
        operation = document["paths"][path][method]
        success = next(status for status in operation["responses"] if status.startswith("2"))
        schema = operation["responses"][success]["content"]["application/json"]["schema"]
        assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path, schema)


def test_the_format_registry_drives_the_format_parameter_and_the_responses(client) -> None:
    from app.committee import formats
    from app.committee.results import AnnualReport, Overview

    document = client.get("/openapi.json").json()
    for path, result, names in (("/api/v1/summary", Overview, ["json", "csv", "xlsx"]),
                                ("/api/v1/states/{iso3}/report", AnnualReport,
                                 ["json", "csv", "csv-mines", "csv-beneficiaries", "csv-land-use", "csv-organisations",
                                  "xlsx", "pdf"])):
        operation = document["paths"][path]["get"]
        parameter = next(p for p in operation["parameters"] if p["name"] == "format")
        assert parameter["schema"]["enum"] == list(formats.names(result)) == names
        content = operation["responses"]["200"]["content"]
        assert set(content) == {formats.FORMATS[name].bare_media_type for name in formats.names(result)}
    assert client.get("/api/v1/summary", params={"format": "pdf"}).status_code == 422  # no PDF of the overview


def test_the_domain_functions_return_typed_results(client, scenario) -> None:
    from sqlalchemy.orm import Session

    from app import database
    from app.committee import article5, charts, summaries
    from app.committee.results import AnnualReport, Overview, StateRecord, StateSummary

    with Session(database.get_engine()) as session:
        got = summaries.state_summary(session, "KHM", date(2023, 6, 30))
        assert isinstance(got, StateSummary) and isinstance(got.as_of, date)
        assert got.article5.deadline == date(2028, 12, 31)
        assert isinstance(summaries.overview(session, date(2023, 6, 30)), Overview)
        assert isinstance(summaries.annual_report(session, "KHM", 2022), AnnualReport)
        assert isinstance(article5.state_record(session, "KHM"), StateRecord)
        chart = charts.burn_down(session, "KHM", date(2023, 6, 30))
        assert chart.progress.deadline == got.article5.deadline  # the chart reads the typed summary
        assert chart.progress.remaining_m2 == got.remaining.total.area_m2
