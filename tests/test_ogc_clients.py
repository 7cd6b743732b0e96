"""Real OGC API clients against a live server: GDAL's OAPIF driver (Debian's ogrinfo, and the GDAL inside
the pyogrio wheel) with its CRS, PREFERRED_CRS and DATETIME options and a -where that GDAL sends as a
filter, and OWSLib (collections, items, queryables, a filter). What each client asked for is read from
GDAL's own debug log, so the tests show the work was done by the server, not by the client."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import text

from app import database
from tests.conftest import auth_headers
from tests.ledger_scenarios import UTM48N, hazard_feature, post_event, post_hazard, rect

LAYER_SIZE = 628 + 3  # the G- hazards and the three KHM ones


@pytest.fixture
def layer(client) -> dict:
    """628 small hazards recorded in 2017 (5 km south), and three recorded in 2015-2016, one cleared in part."""
    a = post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000), region="Battambang")
    post_hazard(client, "KHM-B", rect(2000, 0, 500, 500), classification="CHA", recorded_on="2016-06-01")
    post_hazard(client, "KHM-C", rect(4000, 0, 300, 300))
    post_event(client, a["id"], "clearance", "2018-03-01", rect(0, 0, 400, 1000))
    features = [hazard_feature(f"G-{i:04d}", rect(i * 60.0, -5000.0, 40, 40), recorded_on="2017-01-01")
                for i in range(628)]
    response = client.post("/api/v1/states/KHM/hazards", params={"crs": UTM48N},
                           json={"type": "FeatureCollection", "features": features})
    assert response.status_code == 201, response.text
    return {"a": a}


def _count(sql: str) -> int:
    with database.get_engine().connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def _fetched(log: Path) -> list[str]:
    """The URLs GDAL fetched, decoded, in order (from its CPL_DEBUG log)."""
    return [unquote(m) for m in re.findall(r"HTTP: Fetch\((.*?)\)\n", log.read_text())]


def test_debian_gdal_sends_a_where_as_a_cql2_filter(layer, live_server, tmp_path: Path) -> None:
    """GDAL 3.6 (Debian) finds filter-lang in the OpenAPI document and sends `-where` whole to the server
    (its name for CQL2 text is cql-text; its dates are quoted strings), then pages through the result."""
    log = tmp_path / "gdal.log"
    where = "status = 'active' AND remaining_area_m2 > 50000 AND recorded_on >= '2015-01-01'"
    info = subprocess.run(["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{live_server}", "hazardous_areas", "-where", where],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CPL_DEBUG": "ON", "CPL_LOG": str(log)})
    assert info.returncode == 0, info.stderr
    filtered = [u for u in _fetched(log) if "filter=" in u]
    assert filtered and all("filter-lang=cql-text" in u for u in filtered), _fetched(log)
    assert "(remaining_area_m2 > 50000)" in filtered[0], filtered
    assert "Only part of the filter" not in log.read_text() and "client side" not in log.read_text()
    expected = _count("SELECT count(*) FROM hazardous_areas WHERE voided_at IS NULL AND status = 'active' "
                      "AND remaining_area_m2 > 50000")
    assert expected == 3 and info.stdout.count("OGRFeature(") == expected, (filtered, info.stdout[-2000:])
    # a plain -where on a queryable: every feature it names, over several pages
    everything = subprocess.run(["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{live_server}", "hazardous_areas",
                                 "-where", "recorded_on = '2017-01-01'", "-oo", "PAGE_SIZE=250"],
                                capture_output=True, text=True, timeout=180)
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.count("OGRFeature(") == 628


# pyogrio runs in a process of its own: its GDAL holds the GIL while it reads, which would stall the live
# server's thread in this process.
PYOGRIO_READ = """
import json, os, sys
import pyogrio
pyogrio.set_gdal_config_options({"CPL_DEBUG": "ON", "CPL_LOG": sys.argv[1], "GDAL_HTTP_HEADER_FILE": sys.argv[2]})
source, layer, options = sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
where = options.pop("where", None)
frame = pyogrio.read_dataframe(source, layer=layer, where=where, **options)
print(json.dumps({"gdal": pyogrio.__gdal_version_string__, "epsg": frame.crs.to_epsg(),
                  "rows": json.loads(frame.drop(columns="geometry").to_json(orient="records")),
                  "bounds": [list(g.bounds) for g in frame.geometry]}))
"""


@pytest.fixture
def pyogrio_read(live_server, tmp_path: Path):
    """`read(layer, **open_options)`: the layer as the GDAL inside pyogrio reads it, and the URLs it fetched."""
    import json
    import sys

    headers = tmp_path / "headers.txt"  # the key (GDAL 3.12's OAPIF driver sets HEADERS itself, over GDAL_HTTP_HEADERS)
    headers.write_text(os.environ["GDAL_HTTP_HEADERS"] + "\n")

    def read(layer: str, **options: str) -> tuple[dict, list[str]]:
        log = tmp_path / f"gdal-{len(list(tmp_path.glob('gdal-*.log')))}.log"
        run = subprocess.run([sys.executable, "-c", PYOGRIO_READ, str(log), str(headers), f"OAPIF:{live_server}", layer,
                              json.dumps(options)], capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads(run.stdout), _fetched(log)

    return read


def test_pyogrio_gdal_reads_in_a_listed_crs_at_a_date_with_a_server_side_filter(layer, pyogrio_read) -> None:
    """GDAL 3.12: `CRS=EPSG:32648` (accepted because the collection lists it), `PREFERRED_CRS`, `DATETIME`
    and a where clause, each done by the server; pages as large as the declared maximum allows."""
    utm, fetched = pyogrio_read("hazardous_areas", CRS="EPSG:32648")
    assert tuple(int(n) for n in utm["gdal"].split(".")[:2]) >= (3, 9)
    assert utm["epsg"] == 32648 and len(utm["rows"]) == LAYER_SIZE
    index = next(i for i, row in enumerate(utm["rows"]) if row["external_id"] == "KHM-A")
    minx, miny, maxx, maxy = utm["bounds"][index]
    assert minx == pytest.approx(500_400, abs=0.05) and maxx == pytest.approx(501_000, abs=0.05)
    assert miny == pytest.approx(1_450_000, abs=0.05) and maxy == pytest.approx(1_451_000, abs=0.05)
    pages = [u for u in fetched if "/collections/hazardous_areas/items" in u and "crs=" in u]
    assert pages and all("crs=http://www.opengis.net/def/crs/EPSG/0/32648" in u for u in pages), fetched
    # large pages (GDAL 3.12 pages by 1000, never above the declared maximum): the layer in one request
    assert "limit=1000" in pages[0] and len(pages) == 1, pages

    preferred, _ = pyogrio_read("hazardous_areas", PREFERRED_CRS="EPSG:32648", where="external_id = 'KHM-B'")
    assert preferred["epsg"] == 32648 and [r["external_id"] for r in preferred["rows"]] == ["KHM-B"]

    then, fetched = pyogrio_read("hazardous_areas", DATETIME="2016-01-01")
    assert sorted(r["external_id"] for r in then["rows"]) == ["KHM-A", "KHM-C"]  # KHM-B: June 2016; the rest 2017
    a = next(r for r in then["rows"] if r["external_id"] == "KHM-A")
    assert a["remaining_area_m2"] == pytest.approx(a["baseline_area_m2"], rel=1e-6)  # not cleared yet then
    assert any("datetime=2016-01-01" in u for u in fetched)

    filtered, fetched = pyogrio_read("hazardous_areas", where="status = 'active' AND remaining_area_m2 > 50000")
    assert sorted(r["external_id"] for r in filtered["rows"]) == ["KHM-A", "KHM-B", "KHM-C"]
    sent = [u for u in fetched if "filter=" in u]
    assert sent and "remaining_area_m2 > 50000" in sent[-1], fetched


def test_pyogrio_gdal_asks_for_a_national_grid_the_collection_lists(layer, pyogrio_read, live_server,
                                                                    admin_key) -> None:
    """Indian 1960 / UTM 48N (Cambodia's grid) is listed, so GDAL asks for it; an unlisted CRS is a 400."""
    import httpx

    indian, fetched = pyogrio_read("hazardous_areas", CRS="EPSG:3148", where="external_id = 'KHM-A'")
    assert indian["epsg"] == 3148 and len(indian["rows"]) == 1
    assert any("crs=http://www.opengis.net/def/crs/EPSG/0/3148" in u for u in fetched)
    response = httpx.get(f"{live_server}/collections/hazardous_areas/items", params={"crs": "EPSG:2154"},
                         headers=auth_headers(admin_key))
    assert response.status_code == 400 and "EPSG:3148" in response.json()["detail"]


def test_owslib_reads_collections_items_queryables_and_a_filter(layer, live_server, admin_key) -> None:
    from owslib.ogcapi.features import Features

    api = Features(live_server, headers=auth_headers(admin_key))
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in api.conformance()["conformsTo"]
    collections = {c["id"]: c for c in api.collections()["collections"]}
    assert set(collections) == {"hazardous_areas", "land_release_events", "countries", "provinces",
                                "pending_submissions"}  # a key knows of the submissions awaiting review
    page = api.collection_items("hazardous_areas", limit=50)
    assert page["numberMatched"] == LAYER_SIZE and page["numberReturned"] == 50
    queryables = api.collection_queryables("hazardous_areas")
    assert {"geometry", "status", "remaining_area_m2", "recorded_on"} <= set(queryables["properties"])
    filtered = api.collection_items("hazardous_areas", filter="status = 'active' AND remaining_area_m2 > 50000",
                                    sortby=("remaining_area_m2", "desc"))
    assert [f["properties"]["external_id"] for f in filtered["features"]] == ["KHM-A", "KHM-B", "KHM-C"]
    events = api.collection_items("land_release_events", filter="kind = 'clearance'")
    assert len(events["features"]) == 1

