"""The import's file reader: an uploaded file of hazards is parsed in a worker process of its own.

`app.files.imports` starts `python -m app.files.reader` for every import, sends it a `ReadRequest` as JSON on
stdin, and reads back one JSON line on stdout (`{"ok": ...}` or `{"problem": {"status", "detail", ...}}`)
and, on success, the rows in the output folder: `geometry.bin` (the WKB of every row, one after the
other), `wkb_index.npy` (each row's start and length in it, -1 for a row without geometry; read
with `allow_pickle=False`) and `attributes.json` (the columns, the CRS and the layer). Nothing the file
holds reaches the service other than as data: no pickle, no GDAL in the service's process.

Rules (what the worker trusts of a file)
- The worker limits itself before it reads anything: address space (`import_memory_mb`), CPU seconds
  (`import_cpu_seconds`, SIGXCPU ends it), file size written, open files, no core dump; it runs at a
  lower priority (nice 10), so the service's other requests keep their latency. The service kills it
  after `import_seconds` of wall-clock time. A hostile file ends its worker, never the service.
- Network: the worker cuts itself off (a network namespace of its own, where the kernel allows it),
  GDAL's network file systems (`/vsicurl/`, `/vsis3/`, ...) are removed, its HTTP goes to a proxy that
  does not exist, and PROJ's network is off.
- Each format opens with its own GDAL drivers only (`DRIVERS`); every other driver is left
  unregistered (`GDAL_SKIP`), so an OGR VRT, a GDALG pipeline or any other format that reads other files
  or URLs cannot be opened under an innocent name. The content must also be what the name says
  (`_sniff`): a GeoPackage starts with the SQLite header, a zip with `PK`, GeoJSON with `{`, KML is XML
  with a `kml` root and no DOCTYPE or NetworkLink; CSV is text. A file that is a VRT or a GDALG pipeline
  is refused by name.
- Zips (Shapefile, KMZ): no member may be a symlink, absolute, contain `..`, `\\` or `:`; a Shapefile
  needs its `.shx` and `.dbf`, whose record counts must equal (the `.shx` length and the `.dbf` header);
  a zip with several Shapefiles needs `layer`.
- GeoPackage: inspected with SQLite (read-only, immutable, untrusted schema) before GDAL opens it: views
  and virtual tables (other than the R*Tree spatial indexes) are refused, since reading a view runs the
  query its author wrote. Triggers are left alone (the spatial index needs them, and they fire on writes
  only: the file is opened read-only); what a table itself can cost to read (generated columns, huge
  blobs) is bounded by the geometry-bytes check and the worker's limits.
- Layers: a file with several layers needs `layer` (a Shapefile in a zip is named by its `.shp` without
  extension, or by its path in the zip when two share a name), except our own export (its layers are
  `hazardous_areas` and `land_release_events`, with the State's prefix in the zip: `hazardous_areas` is
  read).
- Limits: at most `max_import_features` rows and `max_import_vertices` vertices per file. Shapefiles and
  GeoPackages are measured before GDAL reads them (the `.shx` record count and sizes, the GeoPackage's
  row count and geometry bytes: what their coordinates can hold at 16, 24 or 32 bytes a vertex); other
  formats are read with at most one row more than the limit. The vertices are counted exactly before
  anything is sent back. The per-geometry limit is the JSON API's (a rejected row).
- What comes back is bounded too: the attribute columns at most `MAX_ATTRIBUTE_BYTES` as JSON (413), no
  two columns of the same name (422: one would hide the other), a CRS of at most `MAX_CRS_CHARACTERS`.
- Messages name the uploaded file by its own name only, never a path on the server.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import resource
import stat
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

KINDS = {".gpkg": "gpkg", ".zip": "shapefile", ".geojson": "geojson", ".json": "geojson", ".kml": "kml",
         ".kmz": "kmz", ".csv": "csv"}
DRIVERS = {"gpkg": ("GPKG",), "shapefile": ("ESRI Shapefile",), "geojson": ("GeoJSON",), "kml": ("LIBKML", "KML"),
           "kmz": ("LIBKML",), "csv": ("CSV",)}
OPEN_OPTIONS = {"csv": {"GEOM_POSSIBLE_NAMES": "WKT,geometry,geom,the_geom", "KEEP_GEOM_COLUMNS": "NO"}}
OUR_EXPORT_LAYERS = ("hazardous_areas", "land_release_events")
NETWORK_FILE_SYSTEMS = ("/vsicurl/", "/vsicurl_streaming/", "/vsis3/", "/vsis3_streaming/", "/vsigs/",
                        "/vsigs_streaming/", "/vsiaz/", "/vsiaz_streaming/", "/vsiadls/", "/vsioss/",
                        "/vsioss_streaming/", "/vsiswift/", "/vsiswift_streaming/", "/vsiwebhdfs/", "/vsihdfs/")
GDAL_CONFIG = {
    "GDAL_HTTP_PROXY": "127.0.0.1:9",  # nothing listens there (and the worker has no network where it can)
    "GDAL_HTTP_TIMEOUT": "1", "GDAL_HTTP_CONNECTTIMEOUT": "1", "GDAL_HTTP_MAX_RETRY": "0",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".landrelease-no-remote-files",
    "LIBKML_EXTERNAL_STYLE": "NO", "PROJ_NETWORK": "OFF",
}
META_FORMATS = {"<OGRVRTDataSource": "an OGR VRT", "<VRTDataset": "a GDAL VRT", "gdal_streamed_alg": "a GDALG pipeline"}
SNIFF_BYTES = 1024 * 1024
MAX_CRS_CHARACTERS = 100_000
MAX_ATTRIBUTE_BYTES = 256 * 1024 * 1024  # the attribute columns as JSON: what the service then holds in memory
SQLITE_HEADER = b"SQLite format 3\x00"
SHAPEFILE_CODE = 9994
SHAPE_TYPES_Z, SHAPE_TYPES_M = (11, 13, 15, 18, 31), (21, 23, 25, 28)
SHAPE_RECORD_FIXED_BYTES = 48  # type, box, part and point counts, one part start: the rest are coordinates
GPKG_FIXED_BYTES = 53  # GeoPackage header with an XY envelope, a WKB polygon's byte order, type and counts


@dataclass
class ReadRequest:
    path: str  # the file on disk
    name: str  # the file's own name, the only one messages show
    out: str  # the folder for the rows
    layer: str | None = None
    max_features: int = 200_000
    max_vertices: int = 5_000_000
    memory_mb: int = 1024
    cpu_seconds: int = 120
    all_drivers: list[str] = field(default_factory=list)  # GDAL's vector drivers: all but ours are skipped


class Refused(Exception):
    """The file is refused: the status and the message the client gets."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra


# --- the worker's own limits ----------------------------------------------------------------------------
def _limit_self(request: ReadRequest) -> None:
    memory = request.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (request.cpu_seconds, request.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    os.nice(10)


def _cut_network() -> None:
    """A network namespace of the worker's own (no interface up), where the kernel allows it: as root
    directly, otherwise inside a user namespace of its own (where those are allowed). Elsewhere GDAL's
    own guards (`_gdal`) are what keeps the worker off the network."""
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    if libc.unshare(clone_newnet) == 0:
        return
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(clone_newuser | clone_newnet) == 0:
        with contextlib.suppress(OSError):  # the same ids inside, or the worker could not create its output files
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _gdal(request: ReadRequest, kind: str) -> Any:
    """pyogrio with only this kind's drivers registered and GDAL's network file systems removed."""
    os.environ["GDAL_SKIP"] = ",".join(d for d in request.all_drivers if d not in DRIVERS[kind])
    os.environ.update(GDAL_CONFIG)  # read by GDAL (and PROJ) from the environment
    import pyogrio

    registered = set(pyogrio.list_drivers())
    if registered - set(DRIVERS[kind]):
        raise RuntimeError(f"GDAL drivers left registered: {sorted(registered - set(DRIVERS[kind]))}")
    for library in _loaded_gdal_libraries():
        gdal = ctypes.CDLL(library)
        for prefix in NETWORK_FILE_SYSTEMS:
            gdal.VSIRemovePluginHandler(prefix.encode())
    return pyogrio


def _loaded_gdal_libraries() -> list[str]:
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if "/libgdal" in path and path.startswith("/"):
                found.add(path)
    if not found:
        raise RuntimeError("the GDAL library is not loaded")
    return sorted(found)


# --- what the content is --------------------------------------------------------------------------------
def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def _meta_format(head: bytes, name: str) -> None:
    for marker, what in META_FORMATS.items():
        if marker.encode() in head:
            raise Refused(422, f"'{name}' is {what}, which reads other files or URLs: such files are not imported. "
                               "Send the data itself.")


def _text_start(head: bytes) -> bytes:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()


KML_REFUSED = re.compile(rb"<!DOCTYPE|<!ENTITY|<([\w.-]+:)?NetworkLink[\s>/]", re.IGNORECASE)


def _sniff_kml(stream: IO[bytes], name: str) -> None:
    """KML: XML with a `kml` root; no DOCTYPE or entities, and no NetworkLink anywhere in the file."""
    head = stream.read(SNIFF_BYTES)
    _meta_format(head, name)
    start = _text_start(head)
    if not start.startswith(b"<"):
        raise Refused(422, f"'{name}' is not KML: it does not start with XML.")
    root = re.search(rb"<(?![?!])([\w.-]+:)?([\w.-]+)", start)
    if root is None or root.group(2).lower() != b"kml":
        raise Refused(422, f"'{name}' is not KML: its root element is not <kml>.")
    chunk = head
    while chunk:
        found = KML_REFUSED.search(chunk)
        if found is not None:
            if found.group(0).startswith(b"<!"):
                raise Refused(422, f"'{name}' declares a DOCTYPE or entities: KML for import may not.")
            raise Refused(422, f"'{name}' holds a NetworkLink, which points at other data: send the data itself.")
        more = stream.read(SNIFF_BYTES)
        # a tag cut by the chunk's end is read again whole: from its `<` (a prefix may be of any length)
        cut = chunk.rfind(b"<")
        chunk = (chunk[cut:] if cut >= 0 else b"") + more if more else b""


def _sniff(path: Path, kind: str, name: str) -> None:
    head = _head(path)
    if kind == "gpkg":
        if not head.startswith(SQLITE_HEADER):
            raise Refused(422, f"'{name}' is not a GeoPackage: it does not start with the SQLite header.")
    elif kind in ("shapefile", "kmz"):
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")) or not zipfile.is_zipfile(path):
            raise Refused(422, f"'{name}' is not a zip archive.")
    elif kind == "geojson":
        _meta_format(head, name)
        if not _text_start(head).startswith(b"{"):
            raise Refused(422, f"'{name}' is not GeoJSON: it does not start with '{{'.")
    elif kind == "kml":
        with path.open("rb") as stream:
            _sniff_kml(stream, name)
    else:  # csv
        _meta_format(head, name)
        if b"\x00" in head or _text_start(head).startswith((b"<", b"{", b"[")):
            raise Refused(422, f"'{name}' is not CSV text.")


# --- zips -----------------------------------------------------------------------------------------------
def _members(archive: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    members = []
    for info in archive.infolist():
        parts = info.filename.split("/")
        if info.filename.startswith("/") or "\\" in info.filename or ":" in info.filename or ".." in parts \
                or "\x00" in info.filename:
            raise Refused(422, f"'{name}' holds a member with a path that is not allowed: "
                               f"'{_printable(info.filename)}'.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise Refused(422, f"'{name}' holds a symbolic link ('{_printable(info.filename)}'): not allowed.")
        if not info.is_dir() and not info.filename.startswith("__MACOSX/"):
            members.append(info)
    return members


def _printable(text: str) -> str:
    return re.sub(r"[^\w./ -]", "?", text)[:200]


def _shapefile(path: Path, request: ReadRequest) -> tuple[str, str]:
    """The GDAL path of the zip's Shapefile (the one `layer` names if there are several) and its layer name."""
    name = request.name
    with zipfile.ZipFile(path) as archive:
        members = _members(archive, name)
        by_lower = {m.filename.lower(): m for m in members}
        shapefiles = sorted(m.filename for m in members if m.filename.lower().endswith(".shp"))
        if not shapefiles:
            listed = ", ".join(_printable(m.filename) for m in members[:20])
            raise Refused(422, f"The zip holds no Shapefile (.shp); it holds: {listed}.")
        stems = [Path(s).stem for s in shapefiles]
        # a layer is the .shp's name without extension (its path in the zip when two have the same name)
        layers = dict(zip(stems if len(set(stems)) == len(stems) else [s[:-4] for s in shapefiles], shapefiles,
                          strict=True))
        chosen = _choose(list(layers), request.layer, name)
        member = layers[chosen]
        stem = member[:-4].lower()
        shx, dbf = by_lower.get(stem + ".shx"), by_lower.get(stem + ".dbf")
        if shx is None or dbf is None:
            raise Refused(422, f"The Shapefile '{_printable(member)}' in '{name}' comes without its "
                               f"{'.shx' if shx is None else '.dbf'}: zip the .shp, .shx, .dbf and .prj together.")
        with archive.open(by_lower[member.lower()]) as f:
            head = f.read(100)
        if len(head) < 100 or struct.unpack(">i", head[:4])[0] != SHAPEFILE_CODE:
            _meta_format(head, f"{_printable(member)}' in '{name}")
            raise Refused(422, f"'{_printable(member)}' in '{name}' is not a Shapefile: its header is not one.")
        records = _shx_records(archive, shx, request)
        with archive.open(dbf) as f:
            header = f.read(32)
        if len(header) < 32:
            raise Refused(422, f"The .dbf of '{_printable(member)}' in '{name}' is not a dBASE file.")
        attributes = struct.unpack("<I", header[4:8])[0]
        if attributes != records:
            raise Refused(422, f"The Shapefile '{_printable(member)}' in '{name}' has {records} shapes but its .dbf "
                               f"has {attributes} records: the parts do not belong together (nothing is imported "
                               "rather than rows paired with the wrong attributes).")
    return f"/vsizip/{path}/{member}", chosen


def _shx_records(archive: zipfile.ZipFile, shx: zipfile.ZipInfo, request: ReadRequest) -> int:
    """The number of shapes the .shx lists, once their record sizes (what GDAL will read) are within the
    vertex limit."""
    import numpy as np

    with archive.open(shx) as f:
        header = f.read(100)
        records = (struct.unpack(">i", header[24:28])[0] * 2 - 100) // 8 if len(header) == 100 else -1
        if records < 0 or struct.unpack(">i", header[:4])[0] != SHAPEFILE_CODE:
            raise Refused(422, f"The .shx in '{request.name}' is not a Shapefile index.")
        if records > request.max_features:
            _too_many_features(records, request)
        shape_type = struct.unpack("<i", header[32:36])[0]
        per_vertex = 32 if shape_type in SHAPE_TYPES_Z else 24 if shape_type in SHAPE_TYPES_M else 16
        coordinate_bytes = 0
        remaining = records
        while remaining > 0:
            chunk = f.read(8 * min(remaining, 65536))
            if len(chunk) < 8:
                break
            sizes = np.frombuffer(chunk[:len(chunk) // 8 * 8], dtype=">i4")[1::2].astype(np.int64) * 2  # in bytes
            coordinate_bytes += int(np.clip(sizes - SHAPE_RECORD_FIXED_BYTES, 0, None).sum())
            remaining -= len(sizes)
    vertices = coordinate_bytes // per_vertex
    if vertices > request.max_vertices:
        _too_many_vertices(vertices, request, about=True)
    return records


# --- GeoPackages ----------------------------------------------------------------------------------------
def _geopackage_schema(path: Path, name: str) -> Any:
    """A read-only SQLite connection to the GeoPackage, once its schema holds no view or virtual table."""
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        db.execute("PRAGMA trusted_schema = OFF")
        objects = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    except sqlite3.Error as exc:
        raise Refused(422, f"'{name}' is not a readable GeoPackage: {exc}.") from exc
    refused = [str(n) for kind, n, sql in objects
               if kind == "view" or (kind == "table" and re.match(r"\s*CREATE\s+VIRTUAL\s+TABLE", sql or "", re.I)
                                     and not re.search(r"USING\s+rtree\s*\(", sql or "", re.I))]
    if refused:
        listed = ", ".join(_printable(r) for r in refused[:20])
        raise Refused(422, f"'{name}' holds views or virtual tables ({listed}): "
                           "reading them runs queries the file brings along. Save the layer as a plain table.",
                      views=[_printable(r) for r in refused[:100]])
    tables = {str(n) for kind, n, _ in objects if kind == "table"}
    if not {"gpkg_contents", "gpkg_geometry_columns", "gpkg_spatial_ref_sys"} <= tables:
        raise Refused(422, f"'{name}' is an SQLite file but not a GeoPackage (it has no gpkg_contents).")
    return db


def _geopackage_bounds(db: Any, layer: str, request: ReadRequest) -> None:
    """The layer's row count and geometry bytes within the limits, measured before GDAL reads a row."""
    quoted = '"' + layer.replace('"', '""') + '"'
    rows = db.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
    if rows > request.max_features:
        _too_many_features(rows, request)
    column = db.execute("SELECT column_name, z, m FROM gpkg_geometry_columns WHERE table_name = ?",
                        (layer,)).fetchone()
    if column is not None:
        geometry = '"' + str(column[0]).replace('"', '""') + '"'
        per_vertex = 16 + 8 * (column[1] == 1) + 8 * (column[2] == 1)
        size = db.execute(f"SELECT coalesce(sum(max(length({geometry}) - {GPKG_FIXED_BYTES}, 0)), 0) "
                          f"FROM {quoted}").fetchone()[0]
        if size // per_vertex > request.max_vertices:
            _too_many_vertices(size // per_vertex, request, about=True)


# --- layers and limits ----------------------------------------------------------------------------------
def _choose(layers: list[str], wanted: str | None, name: str) -> str:
    if wanted:
        if wanted not in layers:
            raise Refused(422, f"'{name}' has no layer '{wanted}'; its layers are: "
                               f"{', '.join(_printable(n) for n in layers)}.", layers=layers)
        return wanted
    if len(layers) == 1:
        return layers[0]
    ours = [n for n in layers if n.endswith(OUR_EXPORT_LAYERS[0])]
    if len(ours) == 1 and all(n.endswith(OUR_EXPORT_LAYERS) for n in layers):
        return ours[0]  # our own export: its hazards
    raise Refused(422, f"'{name}' has {len(layers)} layers ({', '.join(_printable(n) for n in layers[:50])}): "
                       "say which one holds the hazards with `layer`.", layers=layers[:1000])


def _too_many_features(count: int, request: ReadRequest) -> None:
    raise Refused(413, f"'{request.name}' has more than {request.max_features} rows"
                       f"{f' ({count})' if count > request.max_features else ''}, the limit per file: split it.",
                  limit=request.max_features, limit_name="max_import_features")


def _too_many_vertices(count: int, request: ReadRequest, about: bool = False) -> None:
    raise Refused(413, f"The geometries of '{request.name}' hold {'about ' if about else ''}{count} vertices; "
                       f"the limit is {request.max_vertices} per file: split the file or simplify the polygons.",
                  limit=request.max_vertices, limit_name="max_import_vertices")


# --- reading ------------------------------------------------------------------------------------------
def _clean(message: str, path: Path) -> str:
    """GDAL's message without any path of the server: the file is called by its own name."""
    for text in (f"/vsizip/{path}/", f"/vsizip/{path}", str(path), f"{path.parent}/", str(path.parent)):
        if len(text) > 1:
            message = message.replace(text, "")
    message = message.split("; It might help to specify the correct driver", 1)[0]  # GDAL's hint, not for clients
    return re.sub(r"/vsi\w+/", "", message)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return value


def read(request: ReadRequest) -> dict[str, Any]:
    """Check and read the file; write its rows into `request.out`; what to answer on stdout."""
    import numpy as np

    path = Path(request.path)
    kind = KINDS[path.suffix.lower()]
    _sniff(path, kind, request.name)
    db = None
    if kind == "shapefile":
        dataset, layer = _shapefile(path, request)
    else:
        dataset, layer = str(path), None
        if kind == "kmz":
            with zipfile.ZipFile(path) as archive:
                for info in _members(archive, request.name):
                    if info.filename.lower().endswith(".kml"):
                        with archive.open(info) as stream:
                            _sniff_kml(stream, request.name)
        if kind == "gpkg":
            db = _geopackage_schema(path, request.name)
    pyogrio = _gdal(request, kind)
    import shapely
    from pyogrio import raw

    options = OPEN_OPTIONS.get(kind, {})
    try:
        if layer is None:
            layers = [str(row[0]) for row in pyogrio.list_layers(dataset)]
            if not layers:
                raise Refused(422, f"'{request.name}' has no layers.")
            layer = _choose(layers, request.layer, request.name)
        if db is not None:
            _geopackage_bounds(db, layer, request)
            db.close()
        # GeoPackages and Shapefiles are counted already: read in full, so that a geometry GDAL cannot
        # decode is a row without geometry (pyogrio stops the whole read on it when given max_features)
        bounded = {} if kind in ("gpkg", "shapefile") else {"max_features": request.max_features + 1}
        gdal_layer = None if kind == "shapefile" else layer  # the .shp is the only layer of its dataset
        meta, _, wkb, columns = raw.read(dataset, layer=gdal_layer, datetime_as_string=True, **bounded, **options)
    except (Refused, MemoryError):
        raise
    except Exception as exc:  # GDAL says why it cannot read the file
        raise Refused(422, f"'{request.name}' cannot be read: {_clean(str(exc), path)}") from exc
    if wkb is None:
        raise Refused(422, f"'{request.name}' has no geometry column: hazards need polygons.")
    count = len(wkb)
    if count > request.max_features:
        _too_many_features(count, request)
    vertices = sum(int(shapely.get_num_coordinates(shapely.from_wkb(wkb[start:start + 10_000],
                                                                    on_invalid="ignore")).sum())
                   for start in range(0, count, 10_000))
    if vertices > request.max_vertices:
        _too_many_vertices(vertices, request)
    crs = meta.get("crs")
    if crs is not None and len(crs) > MAX_CRS_CHARACTERS:
        raise Refused(422, f"The CRS of '{request.name}' is {len(crs)} characters long: not a CRS this service reads.")
    out = Path(request.out)
    index = np.full((2, count), -1, dtype=np.int64)  # each row's start and length in geometry.bin
    with (out / "geometry.bin").open("wb") as f:
        position = 0
        for i, one in enumerate(wkb):
            if one is not None:
                index[:, i] = position, len(one)
                f.write(one)
                position += len(one)
    np.save(out / "wkb_index.npy", index, allow_pickle=False)
    names = [str(c) for c in meta["fields"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Refused(422, f"'{request.name}' has several columns named {', '.join(map(_printable, twice[:20]))}: "
                           "rename them, or one would hide the other.")
    attributes = {"layer": layer, "crs": crs, "columns": names,
                  "values": [[_json_value(v) for v in column.tolist()] for column in columns]}
    with (out / "attributes.json").open("w") as f:
        json.dump(attributes, f)
        if f.tell() > MAX_ATTRIBUTE_BYTES:
            raise Refused(413, f"The attributes of '{request.name}' take more than {MAX_ATTRIBUTE_BYTES // 2**20} MB, "
                               "the limit for an import: leave out the columns the hazards do not need.",
                          limit=MAX_ATTRIBUTE_BYTES, limit_name="attribute_bytes")
    return {"ok": {"rows": count, "vertices": vertices}}


def main() -> int:
    request = ReadRequest(**json.loads(sys.stdin.read(1024 * 1024)))
    _limit_self(request)
    _cut_network()
    try:
        answer = read(request)
    except Refused as exc:
        answer = {"problem": {"status": exc.status, "detail": exc.detail, **exc.extra}}
    except MemoryError:
        answer = {"problem": {"status": 413, "detail": f"'{request.name}' needs more than the {request.memory_mb} MB "
                                                       "of memory an import may use: split the file.",
                              "limit_name": "import_memory_mb"}}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

