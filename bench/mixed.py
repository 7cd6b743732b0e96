"""Mixed load: readers and writers on the service at once, for a fixed time.

Each kind of read (layer pages, map views, tiles, summaries) is first timed alone by one client (its
unloaded p95), then 16 reader threads (spread evenly over the kinds) and 4 writer threads (events and
approvals of pending submissions) run together for `seconds`. Afterwards every accepted write is looked
for by SQL: an event in `land_release_events` and its `create` row in `audit_log`; an approval as an
approved submission with its `approve` row in `audit_log` and the event it applied, in the ledger and the
audit log. A 409 is the documented refusal (a submission no longer awaiting review, an event the ledger
refuses); any other status is an error.

The clients are Python threads on the same machine as the service and PostgreSQL: their own CPU is
part of what the readers see.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

READERS = 16
ACCEPTED = {"event": 201, "approval": 200}
DOCUMENTED_REFUSAL = 409


@dataclass
class MixedResult:
    unloaded_p95: dict[str, float]
    loaded_p95: dict[str, float]
    reads: dict[str, int]
    writes: dict[str, int]  # accepted writes by kind
    refused: dict[str, int]  # documented 409s by kind
    errors: list[str] = field(default_factory=list)  # anything else: "<kind> <status> <text>"
    missing: list[str] = field(default_factory=list)  # accepted writes the SQL check did not find
    exhausted: list[str] = field(default_factory=list)  # writers that ran out of work before the end


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * 0.95
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _get(client: httpx.Client, url: str) -> tuple[float, int]:
    t = time.perf_counter()
    r = client.get(url)
    r.read()
    return (time.perf_counter() - t) * 1000, r.status_code


def run(headers: dict[str, str], reads: dict[str, list[str]],
        events: Iterator[tuple[str, dict[str, Any]]], approvals: list[str], conninfo: str,
        seconds: float, unloaded_requests: int = 40) -> MixedResult:
    """`reads`: URLs by kind of read; `events`: (url, body) to POST; `approvals`: approve URLs of pending
    submissions (each taken once)."""
    errors: list[str] = []
    lock = threading.Lock()
    with httpx.Client(timeout=120, headers=headers) as client:
        unloaded = {}
        for kind, urls in reads.items():
            samples = []
            rng = random.Random(kind)  # the readers' choice: uniform over the kind's URLs
            for url in (rng.choice(urls) for _ in range(unloaded_requests)):
                ms, status = _get(client, url)
                samples.append(ms)
                if status >= 400:
                    errors.append(f"{kind} (unloaded) {status} {url}")
            unloaded[kind] = _p95(samples)

    loaded: dict[str, list[float]] = {kind: [] for kind in reads}
    accepted: dict[str, list[str]] = {"event": [], "approval": []}
    refused = {"event": 0, "approval": 0}
    exhausted: list[str] = []
    pending = list(approvals)
    deadline = time.monotonic() + seconds

    def reader(kind: str, seed: int) -> None:
        rng = random.Random(seed)
        urls = reads[kind]
        with httpx.Client(timeout=120, headers=headers) as client:
            while time.monotonic() < deadline:
                ms, status = _get(client, rng.choice(urls))
                with lock:
                    loaded[kind].append(ms)
                    if status >= 400:
                        errors.append(f"{kind} {status}")

    def writer(kind: str, next_write: Callable[[], tuple[str, dict[str, Any]] | None]) -> None:
        with httpx.Client(timeout=120, headers=headers) as client:
            while time.monotonic() < deadline:
                with lock:
                    work = next_write()
                if work is None:
                    exhausted.append(kind)
                    return
                url, body = work
                r = client.post(url, json=body)
                with lock:
                    if r.status_code == ACCEPTED[kind]:
                        accepted[kind].append(r.json()["id"])
                    elif r.status_code == DOCUMENTED_REFUSAL:
                        refused[kind] += 1
                    else:
                        errors.append(f"{kind} {r.status_code} {r.text[:200]}")

    def next_event() -> tuple[str, dict[str, Any]] | None:
        return next(events, None)

    def next_approval() -> tuple[str, dict[str, Any]] | None:
        return (pending.pop(0), {}) if pending else None

    kinds = list(reads)
    threads = [threading.Thread(target=reader, args=(kinds[i % len(kinds)], i)) for i in range(READERS)]
    threads += [threading.Thread(target=writer, args=("event", next_event)) for _ in range(2)]
    threads += [threading.Thread(target=writer, args=("approval", next_approval)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return MixedResult(
        unloaded_p95=unloaded, loaded_p95={k: _p95(v) for k, v in loaded.items() if v},
        reads={k: len(v) for k, v in loaded.items()}, writes={k: len(v) for k, v in accepted.items()},
        refused=refused, errors=errors, missing=check_writes(conninfo, accepted["event"], accepted["approval"]),
        exhausted=sorted(set(exhausted)))


def check_writes(conninfo: str, event_ids: list[str], submission_ids: list[str]) -> list[str]:
    """Every accepted write in the ledger and the audit log; what was not found."""
    missing: list[str] = []
    with psycopg.connect(conninfo) as conn:
        # the events an approval applied are checked as the direct ones are
        applied = conn.execute(
            "SELECT s.id::text, s.status, e->>'id' FROM submissions s "
            "LEFT JOIN LATERAL jsonb_array_elements(s.applied->'events') e ON true WHERE s.id = ANY(%s::uuid[])",
            (submission_ids,)).fetchall()
        found = {row[0] for row in applied}
        missing += [f"submission {s}: not found" for s in set(submission_ids) - found]
        missing += [f"submission {s}: {status}" for s, status, _ in applied if status != "approved"]
        missing += [f"submission {s}: applied no event" for s, _, e in applied if e is None]
        approved = {row[0] for row in conn.execute(
            "SELECT row_id FROM audit_log WHERE table_name = 'submissions' AND action = 'approve' "
            "AND row_id = ANY(%s)", (submission_ids,))}
        missing += [f"submission {s}: no approve row in audit_log" for s in set(submission_ids) - approved]
        events = set(event_ids) | {e for _, _, e in applied if e is not None}
        in_ledger = {row[0] for row in conn.execute(
            "SELECT id::text FROM land_release_events WHERE voided_at IS NULL AND id = ANY(%s::uuid[])",
            (list(events),))}
        audited = {row[0] for row in conn.execute(
            "SELECT row_id FROM audit_log WHERE table_name = 'land_release_events' AND action = 'create' "
            "AND row_id = ANY(%s)", (list(events),))}
        missing += [f"event {e}: not in land_release_events" for e in events - in_ledger]
        missing += [f"event {e}: no create row in audit_log" for e in events - audited]
    return missing
