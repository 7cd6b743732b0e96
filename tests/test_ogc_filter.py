"""OGC API - Features Part 3 (Filtering) and CQL2, sortby, properties, skipGeometry: each conformance class
declared is exercised here, every filter is compiled to bound SQL, and paging stays exact under any sort."""
from __future__ import annotations

import itertools
import json

import pytest
from pyproj import Transformer

from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect

PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
TO_LL = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def ll(x: float, y: float) -> tuple[float, float]:
    """Lon/lat of a point given in metres from the scenarios' origin (UTM 48N 500000, 1450000)."""
    return TO_LL.transform(500_000 + x, 1_450_000 + y)


def items(client, collection: str = "hazardous_areas", expect: int = 200, **params) -> dict:
    response = client.get(f"/collections/{collection}/items", params=params)
    assert response.status_code == expect, response.text
    return response.json()


def ext_ids(body: dict) -> set[str]:
    return {f["properties"]["external_id"] for f in body["features"]}


@pytest.fixture
def ledger(client) -> dict:
    a = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), region="Battambang")
    b = post_hazard(client, "KHM-B", rect(2000, 0, 500, 500), classification="CHA", recorded_on="2016-06-01")
    c = post_hazard(client, "KHM-C", rect(4000, 0, 300, 300), region="Pailin")
    t = post_hazard(client, "THA-A", rect(0, 5000, 200, 200), iso3="THA")
    e1 = post_event(client, a["id"], "clearance", "2018-03-01", rect(0, 0, 400, 1000),
                    items_destroyed={"ap_mines": 12, "av_mines": 1})
    e2 = post_event(client, b["id"], "reduction", "2019-05-01", rect(2000, 0, 500, 500))
    return {"a": a, "b": b, "c": c, "t": t, "e1": e1, "e2": e2}


def test_conformance_declares_part3_and_the_cql2_classes_tested_here(client) -> None:
    classes = set(client.get("/conformance").json()["conformsTo"])
    assert {PART3 + c for c in ("queryables", "queryables-query-parameters", "filter", "features-filter")} <= classes
    assert {CQL2 + c for c in ("cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators",
                               "case-insensitive-comparison", "basic-spatial-functions",
                               "basic-spatial-functions-plus", "spatial-functions", "property-property",
                               "array-functions")} <= classes
    # not implemented, so not declared
    assert not {CQL2 + c for c in ("temporal-functions", "accent-insensitive-comparison", "arithmetic",
                                   "functions")} & classes


def test_queryables_are_json_schema_from_the_declaration(client) -> None:
    from app.layers import HAZARD_PROPERTIES

    collection = client.get("/collections/hazardous_areas").json()
    link = next(x for x in collection["links"] if x["rel"].endswith("/queryables"))
    response = client.get(link["href"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema["type"] == "object" and schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert schema["$id"] == link["href"]
    members = schema["properties"]
    assert set(members) == {"geometry", *(p.name for p in HAZARD_PROPERTIES if p.filterable)}
    assert members["remaining_area_m2"]["type"] == "number"
    assert members["recorded_on"] == {"title": "recorded on", "type": "string", "format": "date"}
    assert members["status"]["enum"] == ["active", "released"] or "released" in members["status"]["enum"]
    assert members["classification"]["enum"] == ["SHA", "CHA"]
    assert members["contamination"]["type"] == "array"
    assert members["geometry"]["format"] == "geometry-any"
    events = client.get("/collections/land_release_events/queryables").json()["properties"]
    assert events["kind"]["enum"] == ["cancellation", "reduction", "clearance", "reclassification"]
    assert events["ap_mines"]["type"] == "integer" and events["releases_land"]["type"] == "boolean"
    assert client.get("/collections/minefields/queryables").status_code == 404


def test_basic_cql2_text_and_json(client, ledger) -> None:
    assert ext_ids(items(client, filter="state = 'KHM' AND remaining_area_m2 > 200000")) == {"KHM-A"}
    assert ext_ids(items(client, filter="NOT (state = 'KHM')")) == {"THA-A"}
    assert ext_ids(items(client, filter="classification = 'CHA' OR region = 'Pailin'")) == {"KHM-B", "KHM-C"}
    assert ext_ids(items(client, filter="recorded_on >= DATE('2016-01-01')")) == {"KHM-B"}
    assert ext_ids(items(client, filter="recorded_on <> DATE('2016-06-01') AND state <> 'THA'")) == {"KHM-A", "KHM-C"}
    assert ext_ids(items(client, filter="region IS NULL")) == {"KHM-B", "THA-A"}
    assert ext_ids(items(client, filter="region IS NOT NULL AND remaining_area_m2 <= 100000")) == {"KHM-C"}
    assert len(items(client, filter="TRUE")["features"]) == 4
    as_json = json.dumps({"op": "and", "args": [{"op": "=", "args": [{"property": "status"}, "active"]},
                                                {"op": "<", "args": [{"property": "baseline_area_m2"}, 100000]}]})
    assert ext_ids(items(client, filter=as_json, **{"filter-lang": "cql2-json"})) == {"KHM-C", "THA-A"}
    events = items(client, "land_release_events", filter="ap_mines = 12 AND releases_land = TRUE")
    assert [f["id"] for f in events["features"]] == [ledger["e1"]["id"]]
    events = items(client, "land_release_events", filter="recorded_at > TIMESTAMP('2000-01-01T00:00:00Z')")
    assert len(events["features"]) == 2
    hazard = items(client, "land_release_events", filter=f"hazard_id = '{ledger['b']['id']}'")
    assert [f["id"] for f in hazard["features"]] == [ledger["e2"]["id"]]
    # the count follows the filter
    assert items(client, filter="state = 'KHM'")["numberMatched"] == 3


def test_advanced_comparison_case_insensitive_property_property_and_arrays(client, ledger) -> None:
    assert ext_ids(items(client, filter="external_id LIKE 'KHM-%'")) == {"KHM-A", "KHM-B", "KHM-C"}
    assert ext_ids(items(client, filter="external_id NOT LIKE '%-A'")) == {"KHM-B", "KHM-C"}
    assert ext_ids(items(client, filter="external_id LIKE 'KHM-_'")) == {"KHM-A", "KHM-B", "KHM-C"}
    assert ext_ids(items(client, filter="remaining_area_m2 BETWEEN 50000 AND 100000")) == {"KHM-C"}
    assert ext_ids(items(client, filter="state IN ('THA', 'LAO')")) == {"THA-A"}
    assert ext_ids(items(client, filter="external_id NOT IN ('KHM-A', 'KHM-B', 'KHM-C')")) == {"THA-A"}
    assert ext_ids(items(client, filter="CASEI(region) = casei('BATTAMBANG')")) == {"KHM-A"}
    assert ext_ids(items(client, filter="CASEI(external_id) LIKE casei('tha%')")) == {"THA-A"}
    # property-property: KHM-A was cleared in part, KHM-B released in full
    assert ext_ids(items(client, filter="remaining_area_m2 < baseline_area_m2")) == {"KHM-A", "KHM-B"}
    assert ext_ids(items(client, filter="A_CONTAINS(contamination, ('AP_MINE'))")) == {"KHM-A", "KHM-B", "KHM-C",
                                                                                       "THA-A"}
    assert ext_ids(items(client, filter="A_OVERLAPS(contamination, ('AV_MINE', 'ERW'))")) == set()
    assert len(items(client, filter="A_CONTAINEDBY(contamination, ('AP_MINE', 'AV_MINE'))")["features"]) == 4
    assert len(items(client, filter="A_EQUALS(contamination, ('AP_MINE'))")["features"]) == 4


def test_spatial_functions_in_crs84_and_in_filter_crs(client, ledger) -> None:
    (x, y) = ll(500, 500)  # inside KHM-A, in the part not yet cleared
    assert ext_ids(items(client, filter=f"S_INTERSECTS(geometry, POINT({x} {y}))")) == {"KHM-A"}
    (x1, y1), (x2, y2) = ll(1900, -100), ll(4500, 600)
    envelope = f"BBOX({x1}, {y1}, {x2}, {y2})"
    assert ext_ids(items(client, filter=f"S_INTERSECTS(geometry, {envelope})")) == {"KHM-C"}  # KHM-B: nothing remains
    assert ext_ids(items(client, filter=f"S_INTERSECTS(geometry, {envelope})", geometry="baseline")) == \
        {"KHM-B", "KHM-C"}
    polygon = f"POLYGON(({x1} {y1}, {x2} {y1}, {x2} {y2}, {x1} {y2}, {x1} {y1}))"
    assert ext_ids(items(client, filter=f"S_WITHIN(geometry, {polygon})")) == {"KHM-C"}
    # KHM-B has no land left: its (empty) remaining geometry is disjoint from everything
    assert ext_ids(items(client, filter=f"S_DISJOINT(geometry, {polygon}) AND state = 'KHM'")) == {"KHM-A", "KHM-B"}
    line = "LINESTRING({} {}, {} {})".format(*ll(-100, 500), *ll(1100, 500))
    assert ext_ids(items(client, filter=f"S_CROSSES(geometry, {line})")) == {"KHM-A"}
    assert ext_ids(items(client, filter=f"S_CONTAINS(geometry, POINT({x} {y}))")) == {"KHM-A"}
    # the same point in UTM 48N (filter-crs), and in EPSG:4326 (lat/lon)
    utm = items(client, filter="S_INTERSECTS(geometry, POINT(500500 1450500))", **{"filter-crs": "EPSG:32648"})
    assert ext_ids(utm) == {"KHM-A"}
    latlon = items(client, filter=f"S_INTERSECTS(geometry, POINT({y} {x}))",
                   **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert ext_ids(latlon) == {"KHM-A"}
    as_json = json.dumps({"op": "s_intersects", "args": [{"property": "geometry"},
                                                         {"type": "Point", "coordinates": [x, y]}]})
    assert ext_ids(items(client, filter=as_json, **{"filter-lang": "cql2-json"})) == {"KHM-A"}
    # events test their released land
    events = items(client, "land_release_events", filter="S_INTERSECTS(geometry, POINT({} {}))".format(*ll(200, 500)))
    assert [f["id"] for f in events["features"]] == [ledger["e1"]["id"]]


def test_queryables_as_query_parameters(client, ledger) -> None:
    assert ext_ids(items(client, region="Battambang")) == {"KHM-A"}
    assert ext_ids(items(client, recorded_on="2016-06-01")) == {"KHM-B"}
    assert ext_ids(items(client, region="Pailin", status="active")) == {"KHM-C"}
    events = items(client, "land_release_events", ap_mines="12")
    assert [f["id"] for f in events["features"]] == [ledger["e1"]["id"]]
    assert len(items(client, "land_release_events", releases_land="true")["features"]) == 2
    for name, bad in (("recorded_on", "June"), ("baseline_area_m2", "big"), ("parent_id", "x")):
        assert items(client, expect=400, **{name: bad})["invalid_params"][0]["name"] == name
    assert items(client, "land_release_events", expect=400, ap_mines="1.5")["invalid_params"][0]["name"] == "ap_mines"


@pytest.mark.parametrize(("params", "name", "says"), [
    ({"filter": "colour = 'red'"}, "filter", "'colour' is not a queryable"),
    ({"filter": "status = "}, "filter", "not cql2-text"),
    ({"filter": "status == 'active'"}, "filter", "1:9"),
    ({"filter": "recorded_on > '2016-01-01'"}, "filter", "cannot be compared"),
    ({"filter": "remaining_area_m2 > 'big'"}, "filter", "cannot be compared"),
    ({"filter": "T_AFTER(recorded_on, DATE('2016-01-01'))"}, "filter", "'t_after' is not supported"),
    ({"filter": "ACCENTI(name) = accenti('x')"}, "filter", "accenti"),
    ({"filter": "S_INTERSECTS(geometry, POINT(500 91))"}, "filter", "outside where"),
    ({"filter": "S_INTERSECTS(geometry, POINT(9000000000 0))", "filter-crs": "EPSG:32648"}, "filter", "outside where"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 0 0)))"}, "filter", "not a valid geometry"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))"}, "filter", "Self-intersection"),
    ({"filter": "S_INTERSECTS(name, POINT(0 0))"}, "filter", "not a geometry"),
    ({"filter": "contamination = 'AP_MINE'"}, "filter", "A_ functions"),
    ({"filter": "recorded_on > DATE('2016-13-01')"}, "filter", "2016-13-01"),
    ({"filter": "{\"op\": \"=\", \"args\": [1]}", "filter-lang": "cql2-json"}, "filter", "= takes 2 arguments"),
    ({"filter": "{\"op\": \"=\", ", "filter-lang": "cql2-json"}, "filter", "not cql2-json"),
    ({"filter": "state = 'KHM'", "filter-lang": "sql"}, "filter-lang", "cql2-text or cql2-json"),
    ({"filter-lang": "cql2-text"}, "filter-lang", "without filter"),
    ({"filter": "state = 'KHM'", "filter-crs": "EPSG:2154"}, "filter-crs", "not a CRS of these collections"),
    ({"filter-crs": "EPSG:32648"}, "filter-crs", "without filter"),
    ({"filter": "name = 'a\x00b'"}, "filter", "NUL"),
    ({"region": "a\x00b"}, "region", "NUL"),
    ({"ap_mines": "3"}, "ap_mines", "it applies to land_release_events"),
    ({"sortby": "colour"}, "sortby", "not a sortable property"),
    ({"sortby": "name,-name"}, "sortby", "given twice"),
    ({"properties": "name,colour"}, "properties", "'colour' is not a property"),
    ({"skipGeometry": "maybe"}, "skipGeometry", "not true or false"),
    ({"sortby": "name", "after": "00000000-0000-0000-0000-000000000000~bad"}, "after", "follow the next link"),
])
def test_bad_filters_sorts_and_selections_are_400s_that_name_the_fault(client, params, name, says) -> None:
    problem = items(client, expect=400, **params)
    assert problem["invalid_params"][0]["name"] == name
    assert says in problem["detail"], problem["detail"]


def test_filter_text_never_reaches_the_sql(client, ledger) -> None:
    """A value that would be SQL is a bound parameter: it matches nothing, and the table is still there."""
    from app.ogc import filters

    hostile = "x'; DROP TABLE hazardous_areas; --"
    assert items(client, filter=f"name = '{hostile.replace(chr(39), chr(39) * 2)}'")["features"] == []
    assert items(client, region=hostile)["features"] == []
    params: dict = {}
    tree = filters.parse_filter(f"name = '{hostile.replace(chr(39), chr(39) * 2)}'", "cql2-text")
    from app.layers import HAZARD_PROPERTIES

    sql = filters.compile_filter(tree, HAZARD_PROPERTIES, "f.remaining_geom", params)
    assert "DROP" not in sql and list(params.values()) == [hostile]
    assert len(items(client)["features"]) == 4


def test_sortby_properties_and_skip_geometry(client, ledger) -> None:
    body = items(client, sortby="-remaining_area_m2")
    areas = [f["properties"]["remaining_area_m2"] for f in body["features"]]
    assert areas == sorted(areas, reverse=True) and body["features"][0]["properties"]["external_id"] == "KHM-A"
    body = items(client, sortby="+region,external_id")  # missing values last
    assert [f["properties"]["external_id"] for f in body["features"]] == ["KHM-A", "KHM-C", "KHM-B", "THA-A"]
    body = items(client, sortby="state,-recorded_on,external_id")
    assert [f["properties"]["external_id"] for f in body["features"]] == ["KHM-B", "KHM-A", "KHM-C", "THA-A"]
    selected = items(client, properties="external_id,status", skipGeometry="true")
    for feature in selected["features"]:
        assert set(feature["properties"]) == {"external_id", "status"} and feature["geometry"] is None
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in items(client, skipGeometry="false")["features"])
    # the declared order, whatever the order asked
    assert list(items(client, properties="status,external_id")["features"][0]["properties"]) == ["external_id",
                                                                                                 "status"]


@pytest.fixture
def many(client) -> list[dict]:
    """60 KHM hazards with many ties: three sizes, two recording dates, a region on every other one; a row
    of 10 per (size, date), 5 km south of the `ledger` fixture's place."""
    created = []
    for row, (size, day) in enumerate(itertools.product((30.0, 40.0, 50.0), ("2015-01-01", "2017-01-01"))):
        features = [hazard_feature(f"M-{row}-{i:02d}", rect(i * 100.0, -5000.0 - row * 100.0, size, size),
                                   recorded_on=day, **({"region": "Pursat"} if i % 2 else {}))
                    for i in range(10)]
        response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                               json={"type": "FeatureCollection", "features": features})
        assert response.status_code == 201, response.text
        created += response.json()["hazards"]
    return created


SORTS = ("", "-remaining_area_m2", "recorded_on,-external_id", "region,-recorded_on,remaining_area_m2")


@pytest.mark.parametrize("sortby", SORTS)
def test_filter_sortby_bbox_datetime_crs_paging_get_every_feature_exactly_once(client, many, sortby: str) -> None:
    """Every combination of filter, bbox, datetime, crs and page size under each sort: the pages hold every
    matching feature exactly once, in order, as many as a direct SQL query finds."""
    from sqlalchemy import text

    from app import database

    (x1, y1), (x2, y2) = ll(-100, -5600), ll(590, -4900)  # the first 6 hazards of each row
    for cql, bbox, as_of, crs, limit in itertools.product(("", "baseline_area_m2 > 1000 AND state = 'KHM'"),
                                                          (False, True), (False, True), ("", "EPSG:32648"), (4, 25)):
        params = {k: v for k, v in {"sortby": sortby, "filter": cql, "crs": crs,
                                    "bbox": f"{x1},{y1},{x2},{y2}" if bbox else "",
                                    "datetime": "2016-12-31" if as_of else ""}.items() if v}
        sql = "SELECT id FROM hazardous_areas WHERE voided_at IS NULL"
        sql += " AND baseline_area_m2 > 1000 AND state_iso3 = 'KHM'" if cql else ""
        sql += " AND recorded_on <= '2016-12-31'" if as_of else ""
        sql += " AND ST_Intersects(remaining_geom, ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326))" if bbox else ""
        with database.get_engine().connect() as conn:
            want = {str(r[0]) for r in conn.execute(text(sql), {"x1": x1, "y1": y1, "x2": x2, "y2": y2})}
        seen, properties, pages = _all_pages(client, params, limit)
        assert len(seen) == len(set(seen)) == len(want) and set(seen) == want, params
        assert pages == max(1, -(-len(want) // limit)), params
        assert 0 < len(want) <= 60
        if sortby:
            keys = [k.lstrip("-") for k in sortby.split(",")]

            def key(p: dict, keys=keys, sortby=sortby) -> tuple:
                out = []
                for name, spec in zip(keys, sortby.split(","), strict=True):
                    value = p[name]
                    out.append((value is None, _negate(value) if spec.startswith("-") and value is not None
                                else value if value is not None else 0))
                return tuple(out)
            assert [key(p) for p in properties] == sorted(key(p) for p in properties), params


def _negate(value):
    if isinstance(value, int | float):
        return -value
    return tuple(-ord(c) for c in value) + (1,)  # text in reverse order (a prefix after its extensions)


def _all_pages(client, params: dict, limit: int) -> tuple[list[str], list[dict], int]:
    url, pages, seen, properties = "/collections/hazardous_areas/items", 0, [], []
    query: dict | None = {**params, "limit": limit}
    while url:
        response = client.get(url, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [f["id"] for f in body["features"]]
        properties += [f["properties"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        query = None
        pages += 1
        assert pages < 100
    return seen, properties, pages


def test_sorted_paging_survives_a_change_between_pages(client, many) -> None:
    """A feature of page 1 released in full between two requests (it leaves status=active): the next link
    carries the last feature's sort values, so nothing after it is skipped or repeated."""
    first = items(client, limit=20, status="active", sortby="-baseline_area_m2,recorded_on")
    sizes = [f["properties"]["baseline_area_m2"] for f in first["features"]]
    assert sizes == sorted(sizes, reverse=True)
    next_link = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert "~" in next_link  # the id and the sort values
    gone = first["features"][0]["properties"]["external_id"]
    _, row, i = gone.split("-")
    size = (30.0, 40.0, 50.0)[int(row) // 2]
    post_event(client, first["features"][0]["id"], "clearance", "2024-01-10",
               rect(int(i) * 100.0 - 5, -5005.0 - int(row) * 100.0, size + 10, size + 10))
    seen = [f["id"] for f in first["features"]]
    url = next_link
    while url:
        body = client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 60 and set(seen) == {h["id"] for h in many}
