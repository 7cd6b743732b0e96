"""Schemathesis against the service's own OpenAPI document: no 5xx, no response that breaks the schema.

Bounded: a fixed seed, a few examples per operation and a time budget, so that `make test` finishes
within a few minutes. Runs as the admin (everything allowed), with a small ledger in place so that
generated requests meet real hazards and events too.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import auth_headers
from tests.ledger_scenarios import post_event, post_hazard, rect

MAX_EXAMPLES = int(os.environ.get("LANDRELEASE_SCHEMATHESIS_EXAMPLES", "25"))
MAX_SECONDS = int(os.environ.get("LANDRELEASE_SCHEMATHESIS_SECONDS", "120"))


def _st() -> list[str]:
    local = Path(sys.executable).parent / "st"
    if local.exists():
        return [str(local)]
    found = shutil.which("st")
    assert found, "schemathesis is not installed: pip install -e '.[test]'"
    return [found]


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(client, admin_key, live_server,
                                                                       artifacts_dir: Path) -> None:
    hazard = post_hazard(client, "KHM-ST-1", rect(0, 0, 1000, 1000))
    post_event(client, hazard["id"], "clearance", "2020-01-01", rect(0, 0, 100, 1000))
    (name, value), = auth_headers(admin_key).items()
    report = artifacts_dir / "schemathesis-junit.xml"
    command = [
        *_st(), "run", f"{live_server}/openapi.json",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--header", f"{name}: {value}",
        "--max-examples", str(MAX_EXAMPLES),
        "--max-time", str(MAX_SECONDS),
        "--seed", "20261123",
        # One worker: CPython 3.11 < 3.11.8 can fail hypothesis' ast.parse when several threads generate
        # ("AST constructor recursion depth mismatch"), an error of the tool, not of the service.
        "--workers", "1",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-junit-path", str(report),
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=MAX_SECONDS + 240,
                         env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    (artifacts_dir / "schemathesis.txt").write_text(run.stdout + "\n" + run.stderr)
    summary = run.stdout[-12000:]
    assert run.returncode == 0, f"schemathesis found problems:\n{summary}\n{run.stderr[-3000:]}"
    assert "passed" in run.stdout.lower(), summary
