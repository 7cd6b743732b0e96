"""Hostile files (issue 12): imports open only what they claim to be, never reach the network or other
files, stay within their limits in a worker process, drop nothing silently and show no server path."""
from __future__ import annotations

import http.server
import json
import os
import re
import resource
import sqlite3
import stat
import struct
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
from pyproj import CRS

from tests.conftest import auth_headers
from tests.test_files import stored, upload, utm_frame, write

HOSTILE_NAMES = ["hazards.geojson", "hazards.json", "hazards.csv", "hazards.kml", "hazards.gpkg"]


@pytest.fixture
def secret(tmp_path) -> tuple[Path, str]:
    """A server-side file the upload must never read: a CSV of hazards carrying a unique token."""
    token = f"SECRET-{uuid.uuid4().hex}"
    path = tmp_path / "server_side" / "secret.csv"
    path.parent.mkdir()
    path.write_text(f"external_id,classification,recorded_on,WKT\n{token},SHA,2020-01-01,"
                    '"POLYGON ((105 13,105.001 13,105.001 13.001,105 13))"\n')
    return path, token


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request (an SSRF target): its URL and the paths asked."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            asked.append(self.path)
            body = b'{"type": "FeatureCollection", "features": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()


def refused(response: httpx.Response, *fragments: str, status: int = 422, hidden: tuple[str, ...] = ()) -> dict:
    """A problem answer with these fragments, no server path, and none of the hidden strings."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.text
    for fragment in fragments:
        assert fragment.lower() in body.lower(), (fragment, body)
    for never in ("/tmp", "landrelease-import", "landrelease-read", "/vsizip", *hidden):
        assert never not in body, (never, body)
    return response.json()


def post(client, name: str, content: bytes, **form: str) -> httpx.Response:
    return client.post("/api/v1/states/KHM/imports", files={"file": (name, content)}, data=form)


def vrt(source: str) -> bytes:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="hazards"><SrcDataSource>{source}</SrcDataSource>'
            '</OGRVRTLayer></OGRVRTDataSource>').encode()


def gdalg(source: str) -> bytes:
    return json.dumps({"type": "gdal_streamed_alg",
                       "command_line": f"gdal vector pipeline ! read {source} ! write --of stream streamed_dataset"}
                      ).encode()


def zipped(members: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# --- meta-formats under innocent names ---------------------------------------------------------------------
META = {"OGR VRT": vrt, "GDALG pipeline": gdalg}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("meta", list(META))
def test_a_meta_format_under_an_innocent_name_is_refused_and_reads_nothing(client, secret, name, meta) -> None:
    path, token = secret
    expected = {"hazards.gpkg": "not a GeoPackage"}.get(name, meta)
    refused(post(client, name, META[meta](str(path))), expected, hidden=(token,))
    assert stored("KHM") == {}


@pytest.mark.parametrize("meta", list(META))
def test_a_meta_format_inside_a_zip_or_kmz_is_refused(client, secret, meta) -> None:
    path, token = secret
    content = META[meta](str(path))
    shx = struct.pack(">7i", 9994, 0, 0, 0, 0, 0, 50) + b"\0" * 72
    refused(post(client, "hazards.zip", zipped({"hazards.shp": content, "hazards.shx": shx,
                                                "hazards.dbf": b"\x03" + b"\0" * 31})), meta, hidden=(token,))
    refused(post(client, "hazards.kmz", zipped({"doc.kml": content})), meta, hidden=(token,))
    assert stored("KHM") == {}


def test_a_vrt_hidden_after_a_megabyte_of_blank_lines_is_still_not_opened_as_a_vrt(client, secret) -> None:
    """The sniffing looks at the first megabyte; past it the worker's GDAL has no VRT driver to open it with."""
    path, token = secret
    content = b"\n" * (1024 * 1024 + 10) + vrt(str(path))
    for name in ("hazards.csv", "hazards.geojson", "hazards.kml"):
        response = post(client, name, content)
        assert 400 <= response.status_code < 500, response.text
        refused(response, status=response.status_code, hidden=(token,))
    assert stored("KHM") == {}


@pytest.mark.parametrize("name", ["hazards.geojson", "hazards.csv", "hazards.kml", "hazards.json"])
def test_a_vrt_pointing_at_a_url_never_fetches_it(client, http_server, name) -> None:
    url, asked = http_server
    for source in (f"/vsicurl/{url}/hazards.geojson", f"{url}/hazards.geojson"):
        refused(post(client, name, vrt(source)), "OGR VRT")
        refused(post(client, name, gdalg(source)), "GDALG")
    assert asked == [] and stored("KHM") == {}


def test_geojson_with_a_crs_link_never_fetches_it(client, http_server) -> None:
    """GDAL's GeoJSON driver resolves a `crs` of type `link` by fetching the URL: the worker has no network."""
    url, asked = http_server
    frame = utm_frame(1).to_crs(4326)
    collection = json.loads(frame.to_json())
    collection["crs"] = {"type": "link", "properties": {"href": f"{url}/crs.prj", "type": "proj4"}}
    response = post(client, "hazards.geojson", json.dumps(collection).encode())
    assert response.status_code in (201, 422), response.text
    assert asked == []


def test_kml_network_links_and_doctypes_are_refused(client, http_server, secret) -> None:
    url, asked = http_server
    path, token = secret
    network_link = (f'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document><NetworkLink>'
                    f'<Link><href>{url}/more.kml</href></Link></NetworkLink></Document></kml>').encode()
    refused(post(client, "hazards.kml", network_link), "NetworkLink")
    refused(post(client, "hazards.kmz", zipped({"doc.kml": network_link})), "NetworkLink")
    late = network_link.replace(b"<Document>", b"<Document>" + b" " * (3 * 1024 * 1024))  # past the first megabyte
    refused(post(client, "hazards.kml", late), "NetworkLink")
    # a prefixed tag cut by the end of the first megabyte the sniffing reads
    prefix = b"n" * 200
    opening = b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2" xmlns:' + prefix + b'="x"><Document>'
    straddling = b"<" + prefix + b":NetworkLink><Link><href>" + url.encode() + b"/more.kml</href></Link></" + \
        prefix + b":NetworkLink></Document></kml>"
    padding = b" " * (1024 * 1024 - len(opening) - 100)  # the tag starts 100 bytes before the chunk's end
    refused(post(client, "hazards.kml", opening + padding + straddling), "NetworkLink")
    entity = (f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY s SYSTEM "file://{path}">]>'
              '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>&s;</name></Document></kml>').encode()
    refused(post(client, "hazards.kml", entity), "DOCTYPE", hidden=(token,))
    refused(post(client, "hazards.kml", b'{"type": "FeatureCollection"}'), "not KML")
    assert asked == []


def test_the_worker_gdal_has_only_its_drivers_and_no_network(http_server, tmp_path) -> None:
    """Without the network namespace: GDAL itself, as the worker sets it up, reaches no URL, while the same
    reads in a plain GDAL do (so the server would see them)."""
    url, asked = http_server
    linked = tmp_path / "linked.geojson"
    linked.write_text(json.dumps({"type": "FeatureCollection", "features": [], "crs": {
        "type": "link", "properties": {"href": f"{url}/crs", "type": "proj4"}}}))
    snippet = """
import json, sys
if sys.argv[1] == "worker":
    from app.files.reader import ReadRequest, _gdal
    pyogrio = _gdal(ReadRequest(path="", name="", out="", all_drivers=json.loads(sys.argv[2])), "geojson")
else:
    import pyogrio
print(json.dumps(sorted(pyogrio.list_drivers())))
for target in sys.argv[3:]:
    try:
        pyogrio.read_info(target)
    except Exception:
        pass
"""
    targets = [f"/vsicurl/{url}/a.geojson", f"{url}/b.geojson", f"/vsicurl_streaming/{url}/c.geojson", str(linked)]
    drivers = json.dumps(pyogrio.list_drivers())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    plain = subprocess.run([sys.executable, "-c", snippet, "plain", drivers, *targets], capture_output=True, text=True,
                           env=env, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert asked, "the plain GDAL should have fetched the URLs"
    asked.clear()
    worker = subprocess.run([sys.executable, "-c", snippet, "worker", drivers, *targets], capture_output=True,
                            text=True, env=env, timeout=60)
    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout.splitlines()[0]) == ["GeoJSON"]
    assert asked == []


# --- content against the name ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,content,fragment", [
    ("hazards.gpkg", b"PK\x03\x04 not a GeoPackage", "not a GeoPackage"),
    ("hazards.geojson", b"<kml></kml>", "not GeoJSON"),
    ("hazards.json", b"[1, 2, 3]", "not GeoJSON"),
    ("hazards.csv", b"<?xml version='1.0'?><kml/>", "not CSV"),
    ("hazards.csv", b"a,b\x00c", "not CSV"),
    ("hazards.kml", b"<gpx></gpx>", "root element is not <kml>"),
    ("hazards.zip", b"SQLite format 3\x00", "not a zip"),
    ("hazards.kmz", b"<kml/>", "not a zip"),
])
def test_content_must_be_what_the_name_says(client, name, content, fragment) -> None:
    refused(post(client, name, content), fragment)


def test_two_columns_of_the_same_name_are_refused(client) -> None:
    content = b'external_id,external_id,classification,recorded_on,WKT\nA,B,SHA,2020-01-01,"POINT (1 2)"\n'
    refused(post(client, "hazards.csv", content), "several columns named external_id")


def test_a_broken_geopackage_is_a_422_without_server_paths(client) -> None:
    refused(post(client, "hazards.gpkg", b"SQLite format 3\x00" + b"\x10\x00" + os.urandom(4000)))


# --- zips ------------------------------------------------------------------------------------------------
def _shapefile_parts(tmp_path: Path, n: int, stem: str = "hazards") -> dict[str, bytes]:
    folder = tmp_path / f"{stem}-{n}"
    folder.mkdir()
    pyogrio.write_dataframe(utm_frame(n), folder / f"{stem}.shp", driver="ESRI Shapefile")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_symlink_or_an_escaping_path_in_a_zip_is_refused(client, tmp_path) -> None:
    import io

    parts = _shapefile_parts(tmp_path, 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in parts.items():
            if name.endswith(".dbf"):
                link = zipfile.ZipInfo(name)
                link.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(link, "/etc/passwd")
            else:
                archive.writestr(name, content)
    refused(post(client, "hazards.zip", buffer.getvalue()), "symbolic link", hidden=("root:",))
    escaping = {f"../{name}": content for name, content in parts.items()}
    refused(post(client, "hazards.zip", zipped(escaping)), "not allowed")
    assert stored("KHM") == {}


@pytest.mark.parametrize("dbf_rows", [1, 5])
def test_a_dbf_with_another_record_count_than_the_shp_is_refused(client, tmp_path, dbf_rows) -> None:
    parts = _shapefile_parts(tmp_path, 3)
    parts["hazards.dbf"] = _shapefile_parts(tmp_path, dbf_rows)["hazards.dbf"]
    refused(post(client, "hazards.zip", zipped(parts)), f"3 shapes but its .dbf has {dbf_rows} records")
    assert stored("KHM") == {}


def test_a_shapefile_without_its_dbf_is_refused(client, tmp_path) -> None:
    parts = _shapefile_parts(tmp_path, 1)
    del parts["hazards.dbf"]
    refused(post(client, "hazards.zip", zipped(parts)), "without its .dbf")


def test_a_zip_with_two_shapefiles_needs_a_layer(client, tmp_path) -> None:
    parts = {**_shapefile_parts(tmp_path, 2, "north"), **_shapefile_parts(tmp_path, 3, "south")}
    problem = refused(post(client, "hazards.zip", zipped(parts)), "2 layers", "north", "south", "layer")
    assert problem["layers"] == ["north", "south"]
    assert stored("KHM") == {}
    response = post(client, "hazards.zip", zipped(parts), layer="south")
    assert response.status_code == 201, response.text
    assert response.json()["layer"] == "south" and len(stored("KHM")) == 3


# --- layers -----------------------------------------------------------------------------------------------
def test_a_geopackage_with_several_layers_needs_a_layer(client, tmp_path) -> None:
    path = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(utm_frame(2), path, layer="survey_2019", driver="GPKG")
    pyogrio.write_dataframe(utm_frame(3), path, layer="survey_2020", driver="GPKG", append=True)
    problem = refused(post(client, "two.gpkg", path.read_bytes()), "2 layers", "survey_2019", "survey_2020")
    assert problem["layers"] == ["survey_2019", "survey_2020"]
    response = post(client, "two.gpkg", path.read_bytes(), layer="survey_2020")
    assert response.status_code == 201 and len(stored("KHM")) == 3


def test_our_own_export_with_both_layers_imports_its_hazards(client, tmp_path) -> None:
    from tests.ledger_scenarios import post_hazard, rect

    post_hazard(client, "KHM-A", rect(0, 0, 1000, 1000))
    export = client.get("/api/v1/states/KHM/export", params={"format": "gpkg"})
    assert export.status_code == 200
    # KHM's hazards in THA and AFG: they go in as border polygons (app/places)
    response = client.post("/api/v1/states/THA/imports", files={"file": ("KHM.gpkg", export.content)},
                           data={"border": "accept"})
    assert response.status_code == 201, response.text
    assert response.json()["layer"] == "hazardous_areas" and set(stored("THA")) == {"KHM-A"}
    shapefiles = client.get("/api/v1/states/KHM/export", params={"format": "shp"}).content
    response = client.post("/api/v1/states/AFG/imports", files={"file": ("KHM.zip", shapefiles)},
                           data={"border": "accept"})
    assert response.status_code == 201, response.text
    assert response.json()["layer"] == "KHM_hazardous_areas" and set(stored("AFG")) == {"KHM-A"}


def test_two_shapefiles_of_the_same_name_in_two_folders_are_two_layers(client, tmp_path) -> None:
    parts = {f"{folder}/{name}": content for folder in ("north", "south")
             for name, content in _shapefile_parts(tmp_path, 2 if folder == "north" else 3).items()}
    problem = refused(post(client, "hazards.zip", zipped(parts)), "2 layers")
    assert problem["layers"] == ["north/hazards", "south/hazards"]
    response = post(client, "hazards.zip", zipped(parts), layer="south/hazards")
    assert response.status_code == 201, response.text
    assert len(stored("KHM")) == 3


def test_a_kml_with_two_folders_needs_a_layer_and_a_kmz_reads_like_its_kml(client, tmp_path) -> None:
    kml = write(utm_frame(2), tmp_path, "kml").read_text()
    body = kml[kml.index("<Placemark"):kml.rindex("</Placemark>") + len("</Placemark>")]
    two = kml.replace(body, f"<Folder><name>north</name>{body}</Folder><Folder><name>south</name>"
                            f"{body.replace('F-0000', 'S-0000')}</Folder>")
    problem = refused(post(client, "two.kml", two.encode()), "layers", "north", "south")
    assert len(problem["layers"]) >= 2
    # LIBKML does not find a Schema by its schemaUrl inside a KMZ: plain <Data> elements instead
    untyped = re.sub(r'<SimpleData name="(\w+)">([^<]*)</SimpleData>', r'<Data name="\1"><value>\2</value></Data>',
                     re.sub(r"</?SchemaData[^>]*>", "", kml))
    response = post(client, "hazards.kmz", zipped({"doc.kml": untyped.encode()}))
    assert response.status_code == 201, response.text
    assert set(stored("KHM")) == {"F-00000", "F-00001"}


# --- GeoPackage views -------------------------------------------------------------------------------------
def _as_view(path: Path, table: str, select: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_data")
        db.execute(f"CREATE VIEW {table} AS {select}")


@pytest.mark.parametrize("select", [
    # a view whose rows never end: a recursive CTE
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i AS fid, geom, external_id, "
    "classification, recorded_on FROM n, hazards_data",
    # a view of enormous blobs
    "SELECT fid, zeroblob(1000000000) AS geom, external_id, classification, recorded_on FROM hazards_data",
])
def test_a_geopackage_layer_that_is_a_view_is_refused_at_once(client, tmp_path, select) -> None:
    path = tmp_path / "hazards.gpkg"
    pyogrio.write_dataframe(utm_frame(2), path, layer="hazards", driver="GPKG")
    _as_view(path, "hazards", select)
    started = time.monotonic()
    problem = refused(post(client, "hazards.gpkg", path.read_bytes()), "views", "hazards")
    assert time.monotonic() - started < 15
    assert "hazards" in problem["views"] and stored("KHM") == {}


def test_gpkg_contents_as_a_view_is_refused(client, tmp_path) -> None:
    path = tmp_path / "hazards.gpkg"
    pyogrio.write_dataframe(utm_frame(1), path, layer="hazards", driver="GPKG")
    _as_view(path, "gpkg_contents", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                                    "SELECT c.* FROM n, gpkg_contents_data c")
    refused(post(client, "hazards.gpkg", path.read_bytes()), "views", "gpkg_contents")


# --- CRS --------------------------------------------------------------------------------------------------
MARS_PRJ = ('GEOGCS["Mars 2000",DATUM["D_Mars_2000",SPHEROID["Mars_2000_IAU_IAG",3396190.0,169.894447223612]],'
            'PRIMEM["Reference_Meridian",0.0],UNIT["Degree",0.0174532925199433]]')
LOCAL_PRJ = 'LOCAL_CS["Site grid",LOCAL_DATUM["Site datum",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'


@pytest.mark.parametrize("prj", [MARS_PRJ, LOCAL_PRJ])
def test_a_crs_of_another_body_or_a_local_crs_is_a_422(client, tmp_path, prj) -> None:
    parts = _shapefile_parts(tmp_path, 1)
    parts["hazards.prj"] = prj.encode()
    refused(post(client, "hazards.zip", zipped(parts)), "not an Earth CRS that can be transformed to WGS84")
    assert stored("KHM") == {}


# --- limits -----------------------------------------------------------------------------------------------
def test_rows_per_file_limit(client, tmp_path, limits) -> None:
    limits(max_import_features=2)
    for fmt in ("gpkg", "shp", "geojson", "csv", "kml"):
        folder = tmp_path / fmt
        folder.mkdir()
        path = write(utm_frame(3), folder, fmt)
        problem = refused(post(client, path.name, path.read_bytes()), "more than 2 rows", status=413)
        assert problem["limit_name"] == "max_import_features"
    assert stored("KHM") == {}


def test_vertices_per_file_limit(client, tmp_path, limits) -> None:
    limits(max_import_vertices=12)  # three squares of 5 vertices
    for fmt in ("gpkg", "shp", "geojson"):
        folder = tmp_path / fmt
        folder.mkdir()
        path = write(utm_frame(3), folder, fmt)
        problem = refused(post(client, path.name, path.read_bytes()), "vertices", "limit is 12", status=413)
        assert problem["limit_name"] == "max_import_vertices"
    assert stored("KHM") == {}


def _huge_shapefile_zip(vertices: int, records: int = 1) -> bytes:
    """A zipped Shapefile of `records` polygons of `vertices` vertices together, written in pieces."""
    import io

    per = vertices // records
    content_words = (44 + 4 + 16 * per) // 2
    shp_length = 50 + records * (4 + content_words)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        header = struct.pack(">7i", 9994, 0, 0, 0, 0, 0, shp_length) + struct.pack("<2i4d4d", 1000, 5, 0, 0, 1, 1,
                                                                                    0, 0, 0, 0)
        with archive.open("huge.shp", "w", force_zip64=True) as shp:
            shp.write(header)
            point = struct.pack("<2d", 500000.0, 1450000.0)
            for r in range(records):
                shp.write(struct.pack(">2i", r + 1, content_words))
                shp.write(struct.pack("<i4d2i", 5, 0, 0, 1, 1, 1, per) + struct.pack("<i", 0))
                block = point * 65536
                left = per
                while left:
                    n = min(left, 65536)
                    shp.write(block[:16 * n])
                    left -= n
        shx = struct.pack(">7i", 9994, 0, 0, 0, 0, 0, 50 + 4 * records) + header[28:100]
        offset = 50
        for _ in range(records):
            shx += struct.pack(">2i", offset, content_words)
            offset += 4 + content_words
        archive.writestr("huge.shx", shx)
        dbf_header = struct.pack("<4BIHH20x", 3, 124, 1, 1, records, 32 + 32 + 1, 1 + 10)
        field = struct.pack("<11sc4xBB14x", b"external_i", b"C", 10, 0)
        archive.writestr("huge.dbf", dbf_header + field + b"\r" + b"".join(b" " + f"H-{r:08d}"[:10].encode()
                                                                              for r in range(records)) + b"\x1a")
        archive.writestr("huge.prj", CRS.from_epsg(32648).to_wkt("WKT1_ESRI"))
    return buffer.getvalue()


def test_a_20_million_vertex_shapefile_is_refused_before_gdal_reads_it(client) -> None:
    content = _huge_shapefile_zip(20_000_000, records=3)
    assert len(content) < 2 * 1024 * 1024
    started = time.monotonic()
    problem = refused(post(client, "huge.zip", content), "vertices", "per file", status=413)
    elapsed = time.monotonic() - started
    print(f"\n{len(content) / 1024:.0f} KB zip of 20 M vertices refused in {elapsed:.2f} s")
    assert problem["limit_name"] == "max_import_vertices"
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert stored("KHM") == {}


def test_the_worker_memory_limit_ends_the_worker_not_the_service(client, tmp_path, limits) -> None:
    """A GeoJSON polygon of 3 million vertices needs far more than 400 MB in GDAL: the worker stops, the
    answer says why, the service answers the next request."""
    limits(import_memory_mb=400, max_import_vertices=10_000_000)
    path = tmp_path / "big.geojson"
    _big_geojson(path, 3_000_000)
    response = post(client, "big.geojson", path.read_bytes())
    refused(response, "memory", status=response.status_code)
    assert response.status_code in (413, 422)
    assert client.get("/health").status_code == 200


def test_the_cpu_limit_ends_the_worker(client, tmp_path, limits) -> None:
    limits(import_cpu_seconds=2, max_import_vertices=10_000_000)
    path = tmp_path / "big.geojson"
    _big_geojson(path, 3_000_000, features=30)
    problem = refused(post(client, "big.geojson", path.read_bytes()), "s of CPU", status=413)
    assert problem["limit_name"] == "import_cpu_seconds"


def test_the_wall_clock_limit_kills_the_worker(client, tmp_path, limits) -> None:
    limits(import_seconds=1, max_import_vertices=10_000_000)
    path = tmp_path / "big.geojson"
    _big_geojson(path, 3_000_000)
    before = _worker_pids()
    problem = refused(post(client, "big.geojson", path.read_bytes()), "longer than 1 s", status=413)
    assert problem["limit_name"] == "import_seconds"
    assert _worker_pids() <= before  # killed, not left running


def test_imports_wait_for_a_free_reader_then_are_503(client, tmp_path, limits) -> None:
    from app.files import imports

    limits(import_readers=1, import_seconds=1)
    slot = imports._reader_slot(1)
    path = write(utm_frame(1), tmp_path, "gpkg")
    assert slot.acquire(timeout=5)  # another import is being read
    try:
        response = post(client, path.name, path.read_bytes())
    finally:
        slot.release()
    refused(response, "send the file again", status=503)
    assert response.headers["retry-after"] == "60"
    limits(import_seconds=180)  # the reader is free again
    assert post(client, path.name, path.read_bytes()).status_code == 201


def _worker_pids() -> set[int]:
    """The file readers this test process started (its own children: other suites on the host do not count)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == os.getpid() and b"app.files.reader" in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def _big_geojson(path: Path, vertices: int, features: int = 1) -> None:
    """Polygons of `vertices` vertices together, in `features` features along latitude 13, written in pieces."""
    per = vertices // features
    step = 0.01 / per
    with path.open("w") as f:
        f.write('{"type": "FeatureCollection", "features": [')
        for n in range(features):
            x0 = 105 + n * 0.02
            f.write(('' if n == 0 else ',') + '{"type": "Feature", "properties": {"external_id": "BIG-%d", '
                    '"classification": "SHA", "recorded_on": "2020-01-01"}, "geometry": {"type": "Polygon", '
                    '"coordinates": [['.replace("%d", str(n)))
            for start in range(0, per - 2, 100_000):
                count = min(100_000, per - 2 - start)
                f.write(",".join(f"[{x0 + (start + i) * step:.9f},13.0]" for i in range(count)) + ",")
            f.write(f"[{x0 + 0.01:.9f},13.01],[{x0:.9f},13.0]]]}}}}")
        f.write("]}")


def test_a_hostile_upload_leaves_the_service_small_and_responsive(live_server, admin_key, tmp_path) -> None:
    """While the worker chews a big hostile file (and dies of it), the service's RSS stays where it was and
    /health keeps answering quickly. The service runs in this process; the upload comes from another one."""
    path = tmp_path / "big.geojson"
    _big_geojson(path, 6_000_000, features=60)
    sender = ("import httpx, json, sys\n"
              "with open(sys.argv[2], 'rb') as f:\n"
              "    r = httpx.post(sys.argv[1], files={'file': ('big.geojson', f)},\n"
              "                   headers={'Authorization': 'Bearer ' + sys.argv[3]}, timeout=300)\n"
              "print(json.dumps({'status': r.status_code, 'body': r.text}))\n")

    def rss_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    with httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=30) as http:
        assert http.get("/health").status_code == 200
        baseline = peak = rss_kb()
        started = time.monotonic()
        upload_process = subprocess.Popen([sys.executable, "-c", sender, f"{live_server}/api/v1/states/KHM/imports",
                                           str(path), admin_key], stdout=subprocess.PIPE, text=True)
        latencies = []
        while upload_process.poll() is None:
            asked = time.monotonic()
            assert http.get("/health").status_code == 200
            latencies.append(time.monotonic() - asked)
            peak = max(peak, rss_kb())
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    answer = json.loads(upload_process.stdout.read())
    worker_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the service's workers
    assert 400 <= answer["status"] < 500, answer
    growth_mb = (peak - baseline) / 1024
    print(f"\nhostile upload of {path.stat().st_size / 2**20:.0f} MB: {answer['status']} after {elapsed:.1f} s "
          f"({json.loads(answer['body'])['detail'][:120]}); service RSS growth {growth_mb:.0f} MB; "
          f"/health max {max(latencies):.3f} s, median {sorted(latencies)[len(latencies) // 2]:.3f} s "
          f"over {len(latencies)} calls; largest worker peak RSS {worker_peak_mb:.0f} MB")
    assert growth_mb < 200, growth_mb
    # normal latency: /health answers in a few ms; on a loaded 2-core machine a rare call may take longer
    ordered = sorted(latencies)
    assert ordered[len(ordered) // 2] < 0.1 and ordered[int(len(ordered) * 0.95)] < 1.0, latencies
    assert stored("KHM") == {}


# --- what the reader skips is an error -----------------------------------------------------------------------
def test_an_unreadable_geometry_is_a_rejected_row_not_a_dropped_one(client, tmp_path) -> None:
    path = tmp_path / "hazards.gpkg"
    pyogrio.write_dataframe(utm_frame(3), path, layer="hazards", driver="GPKG", layer_options={"SPATIAL_INDEX": "NO"})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE hazards SET geom = X'47500003E6100000' || X'0103000000FF' WHERE fid = 2")
    problem = upload(client, path, expect=422)
    assert "rejected" in problem, problem
    assert [r["row"] for r in problem["rejected"]] == [2]
    assert "geometry" in problem["rejected"][0]["errors"][0]["message"]
    assert stored("KHM") == {}
