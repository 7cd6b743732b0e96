"""Schemathesis against the service's own OpenAPI document: every check, and a stateful phase.

Every check schemathesis has (`--checks all`: no 5xx, status codes, media types, response headers
and schemas as declared, refusal of data the schema excludes and acceptance of data it allows,
OPTIONS and 405 `Allow`, auth that is not ignored, deleted resources that stay deleted, ...), over
the examples, coverage, fuzzing and stateful phases. The stateful phase follows the OpenAPI links the
service declares (POST hazards -> GET the hazard / POST an event -> void it) and those schemathesis
infers.

Bounded and deterministic: a fixed seed, deterministic generation (no example database), a few
examples per operation and a time budget, so that `make test` finishes within a few minutes.
`make schemathesis` runs the same test with a much larger budget (LANDRELEASE_SCHEMATHESIS_EXAMPLES,
LANDRELEASE_SCHEMATHESIS_SECONDS). Runs as the admin (everything allowed), with a small ledger in
place so that generated requests meet real hazards and events too.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import auth_headers
from tests.ledger_scenarios import post_event, post_hazard, rect

MAX_EXAMPLES = int(os.environ.get("LANDRELEASE_SCHEMATHESIS_EXAMPLES", "10"))
MAX_SECONDS = int(os.environ.get("LANDRELEASE_SCHEMATHESIS_SECONDS", "80"))
SEED = "20261123"
CONFIG = Path(__file__).with_name("schemathesis.toml")  # what each operation may refuse, and why


def _st() -> list[str]:
    local = Path(sys.executable).parent / "st"
    if local.exists():
        return [str(local)]
    found = shutil.which("st")
    assert found, "schemathesis is not installed: pip install -e '.[test]'"
    return [found]


def test_schemathesis_all_checks_and_stateful_find_nothing(client, admin_key, live_server,
                                                             artifacts_dir: Path) -> None:
    hazard = post_hazard(client, "KHM-ST-1", rect(0, 0, 1000, 1000))
    event = post_event(client, hazard["id"], "clearance", "2020-01-01", rect(0, 0, 100, 1000))
    (name, value), = auth_headers(admin_key).items()
    report = artifacts_dir / "schemathesis-junit.xml"
    command = [
        *_st(), "--config-file", str(CONFIG), "run", f"{live_server}/openapi.json",
        "--checks", "all",
        "--header", f"{name}: {value}",
        "--max-examples", str(MAX_EXAMPLES),
        "--max-time", str(MAX_SECONDS),
        "--seed", SEED,
        "--generation-deterministic",  # (and so no example database)
        # One worker: CPython 3.11 < 3.11.8 can fail hypothesis' ast.parse when several threads generate
        # ("AST constructor recursion depth mismatch"), an error of the tool, not of the service.
        "--workers", "1",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-junit-path", str(report),
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=MAX_SECONDS + 300,
                         env={**os.environ, "SCHEMATHESIS_HOOKS": "", "LANDRELEASE_ST_HAZARD_ID": hazard["id"],
                              "LANDRELEASE_ST_EVENT_ID": event["id"]})
    (artifacts_dir / "schemathesis.txt").write_text(run.stdout + "\n" + run.stderr)
    summary = run.stdout[-15000:]
    assert run.returncode == 0, f"schemathesis found problems:\n{summary}\n{run.stderr[-3000:]}"
    assert re.search(r"\d+ passed", run.stdout), summary
    assert "Stateful" in run.stdout, summary  # the stateful phase ran
