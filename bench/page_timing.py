"""Time to the first byte and to the last of one OGC items page, over real HTTP on loopback.

    python -m bench.page_timing [--features 10000] [--runs 9]

Starts a private PostGIS cluster, records `--features` 50 m squares in KHM through the JSON API, serves
the service with uvicorn and GETs `/collections/hazardous_areas/items?limit=<features>` `--runs` times
after one warm-up request; prints the medians (and minimums) of both times and the page's size.
"""
from __future__ import annotations

import argparse
import http.client
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import database, migrate
from app.access import create_key
from app.committee.article5 import seed_reference_data
from app.embedded import EmbeddedCluster
from app.main import create_app

SQUARE_DEGREES = 0.00045  # about 50 m at 13 N


def _square(i: int) -> dict[str, Any]:
    x, y = 103.0 + (i % 100) * 2 * SQUARE_DEGREES, 13.0 + (i // 100) * 2 * SQUARE_DEGREES
    ring = [[x, y], [x + SQUARE_DEGREES, y], [x + SQUARE_DEGREES, y + SQUARE_DEGREES], [x, y + SQUARE_DEGREES], [x, y]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"external_id": f"H-{i:05d}", "classification": "SHA", "recorded_on": "2015-01-01",
                           "name": f"Hazard {i}", "region": "Battambang"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(features: int, runs: int) -> str:
    folder = Path(tempfile.mkdtemp(prefix="landrelease-page-timing-"))
    cluster = EmbeddedCluster(folder, fsync=False)
    cluster.start()
    try:
        migrate.upgrade(cluster.url)
        database.configure(cluster.url)
        with database.get_engine().begin() as conn:
            seed_reference_data(conn)
        with Session(database.get_engine()) as session:
            _, secret = create_key(session, name="page timing", role="admin")
        headers = {"Authorization": f"Bearer {secret}"}
        with TestClient(create_app(), headers=headers) as client:
            response = client.post("/api/v1/states/KHM/hazards",
                                   json={"type": "FeatureCollection",
                                         "features": [_square(i) for i in range(features)]})
            response.raise_for_status()
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        first_bytes, totals, size = [], [], 0
        for run in range(runs + 1):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            started = time.perf_counter()
            connection.request("GET", f"/collections/hazardous_areas/items?limit={features}", headers=headers)
            answer = connection.getresponse()
            first = answer.read(1)
            first_byte = time.perf_counter()
            size = len(first) + len(answer.read())
            done = time.perf_counter()
            connection.close()
            if answer.status != 200:
                raise RuntimeError(f"the page answered {answer.status}")
            if run:  # the first request warms the caches
                first_bytes.append(first_byte - started)
                totals.append(done - started)
        server.should_exit = True
    finally:
        database.dispose()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f})"

    return f"{features} features, {size / 1e6:.1f} MB: first byte {ms(first_bytes)}, whole page {ms(totals)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print(measure(args.features, args.runs))


if __name__ == "__main__":
    main()
