"""The two Python feature servers a national centre would pick instead of landrelease, run by the bench.

Each is installed from PyPI into a venv of its own under bench/work/ (the first run needs network
access to PyPI), started on a free port of its own and pointed at the same database through the
cluster's unix socket, over the view `bench.tipg_hazards` (`VIEW`, made by bench/run.py): the same
rows and properties as the service's hazard layer, with the remaining geometry.

- tipg (developmentseed): `uvicorn tipg.main:app`, configured by environment variables.
- pygeoapi (OSGeo): its PostgreSQL provider (SQLAlchemy over psycopg2) on the same view, served by its
  Starlette app under uvicorn, from a configuration and an OpenAPI document written here.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

WORK = Path(__file__).resolve().parent / "work"
VIEW_SCHEMA, VIEW_NAME = "bench", "tipg_hazards"
VIEW = f"{VIEW_SCHEMA}.{VIEW_NAME}"
PAGE = 10_000  # the largest page every server is configured to give


def free_port() -> int:
    """A TCP port nothing listens on now (other benchmarks may run on the same machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Peer:
    """A feature server as the bench runs it: where its collection of the view is, how it was started."""

    name: str
    base: str
    collection: str  # the collection id of the view
    process: subprocess.Popen
    health: str  # a path that answers once it is up

    @property
    def items(self) -> str:
        return f"{self.base}/collections/{self.collection}/items"


def _venv(name: str, packages: list[str]) -> Path:
    """bench/work/<name>-venv with `packages` installed (once: a marker file says the install finished, so a
    run stopped halfway through it installs again); its python."""
    venv = WORK / f"{name}-venv"
    python, installed = venv / "bin" / "python", venv / ".installed"
    if not installed.exists():
        print(f"installing {name} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True)
        installed.write_text(" ".join(packages) + "\n")
    return python


def version(name: str) -> str:
    python = WORK / f"{name}-venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", f"import {name}; print({name}.__version__)"], capture_output=True,
                         text=True)
    return out.stdout.strip() or "?"


def start_tipg(socket_dir: str) -> Peer:
    python = _venv("tipg", ["tipg", "uvicorn"])
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@{socket_dir.replace('/', '%2F')}:5432/landrelease",
           "TIPG_DB_SCHEMAS": f'["{VIEW_SCHEMA}"]', "TIPG_MAX_FEATURES_PER_QUERY": str(PAGE),
           "TIPG_DEFAULT_FEATURES_LIMIT": "10"}
    log = open(WORK / "tipg.log", "w")  # noqa: SIM115 - held open while tipg runs
    process = subprocess.Popen(
        [str(python), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], env=env, cwd=WORK, stdout=log, stderr=subprocess.STDOUT)
    return Peer("tipg", f"http://127.0.0.1:{port}", VIEW, process, "/healthz")


PYGEOAPI_COLLECTION = "hazards"
PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: {page}}}
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: OpenStreetMap}}
logging:
  level: ERROR
metadata:
  identification:
    title: bench
    description: the benchmark's peer
    keywords: [bench]
    keywords_type: theme
    terms_of_service: none
    url: http://127.0.0.1:{port}
  license: {{name: CC-BY 4.0, url: "https://creativecommons.org/licenses/by/4.0/"}}
  provider: {{name: bench, url: http://127.0.0.1:{port}}}
  contact: {{name: bench, position: bench, address: bench, city: bench, stateorprovince: bench, postalcode: "0",
            country: bench, phone: "0", fax: "0", email: bench@example.org, url: http://127.0.0.1:{port},
            hours: always, instructions: none, role: pointOfContact}}
resources:
  {collection}:
    type: collection
    title: hazards
    description: the hazards of the benchmark (the view {view})
    keywords: [hazards]
    extents:
      spatial: {{bbox: [-180, -90, 180, 90], crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {{host: "{socket_dir}", port: 5432, dbname: landrelease, user: postgres, search_path: [{schema}]}}
        id_field: id
        table: {table}
        geom_field: geom
"""


def start_pygeoapi(socket_dir: str) -> Peer:
    python = _venv("pygeoapi", ["pygeoapi", "starlette", "uvicorn", "psycopg2-binary", "SQLAlchemy", "GeoAlchemy2",
                                "pygeofilter[backend-sqlalchemy]"])
    port = free_port()
    config, openapi = WORK / "pygeoapi-config.yml", WORK / "pygeoapi-openapi.yml"
    config.write_text(PYGEOAPI_CONFIG.format(port=port, page=PAGE, collection=PYGEOAPI_COLLECTION, view=VIEW,
                                             socket_dir=socket_dir, schema=VIEW_SCHEMA, table=VIEW_NAME))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    proc = subprocess.run([str(python.parent / "pygeoapi"), "openapi", "generate", str(config), "--output-file",
                           str(openapi)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed: {proc.stderr[-400:]}")
    log = open(WORK / "pygeoapi.log", "w")  # noqa: SIM115 - held open while pygeoapi runs
    process = subprocess.Popen(
        [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], env=env, cwd=WORK, stdout=log, stderr=subprocess.STDOUT)
    return Peer("pygeoapi", f"http://127.0.0.1:{port}", PYGEOAPI_COLLECTION, process, "/conformance")
