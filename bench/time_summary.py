"""Latency of the per-State summary and the Committee overview, and a check of the remaining area.

    .venv/bin/python -m bench.time_summary --data-dir bench/work/summary-data [--state KHM] [--repeats 20]

Runs `app.committee.summaries.state_summary` and `overview` in-process against an embedded cluster loaded by
`bench.generate`, for today and three earlier dates, and prints p50/p95 in ms. `--check` compares,
for every State, class, contamination type and region, the remaining count and area of both forms
of `summaries.remaining` with the per-hazard sub-query the summaries used before (kept here as the
reference) and prints the largest difference.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The remaining area at :as_of as app/committee/summaries.py computed it before: a sub-query per hazard.
PER_HAZARD_REFERENCE = """
    WITH hz AS (
        SELECT h.state_iso3, COALESCE(h.region, '(no region)') AS region, h.contamination,
               CASE WHEN h.reclassified_on <= :as_of THEN 'CHA' ELSE h.classification END AS classification,
               GREATEST(h.baseline_area_m2 - COALESCE((
                   SELECT sum(e.released_area_m2) FROM land_release_events e
                   WHERE e.hazard_id = h.id AND e.voided_at IS NULL AND e.date <= :as_of), 0), 0) AS remaining_m2
        FROM hazardous_areas h
        WHERE h.voided_at IS NULL AND h.recorded_on <= :as_of
          AND (h.released_on IS NULL OR h.released_on > :as_of))
    SELECT state_iso3, 'classification' AS dimension, classification AS key, count(*) AS n, sum(remaining_m2) AS m2
    FROM hz GROUP BY 1, 2, 3
    UNION ALL SELECT state_iso3, 'contamination', c, count(*), sum(remaining_m2)
    FROM hz CROSS JOIN LATERAL unnest(hz.contamination) AS c GROUP BY 1, 2, 3
    UNION ALL SELECT state_iso3, 'region', region, count(*), sum(remaining_m2) FROM hz GROUP BY 1, 2, 3
"""


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def timed(call, repeats: int) -> tuple[float, float]:
    call()  # warm
    spent = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        spent.append((time.perf_counter() - t) * 1000)
    return percentile(spent, 50), percentile(spent, 95)


def flatten(result: dict) -> dict[tuple[str, str, str], tuple[int, float]]:
    out = {}
    for iso3, e in result.items():
        for key in ("sha", "cha"):
            if e[key]["count"]:
                out[(iso3, "classification", key.upper())] = (e[key]["count"], e[key]["area_m2"])
        for dimension in ("contamination", "region"):
            for key, value in e.get("by_" + dimension, {}).items():
                out[(iso3, dimension, key)] = (value["count"], value["area_m2"])
    return out


def check(session, days: list[date]) -> None:
    from sqlalchemy import text

    from app.committee import summaries

    for day in days:
        reference = {(r.state_iso3, r.dimension, r.key): (r.n, r.m2)
                     for r in session.execute(text(PER_HAZARD_REFERENCE), {"as_of": day})}
        for form in (True, False):
            got = flatten(summaries.remaining(session, day, None, detail=True, from_current_state=form))
            assert set(got) == set(reference), (day, form, set(got) ^ set(reference))
            counts = all(got[k][0] == reference[k][0] for k in got)
            worst = max((abs(got[k][1] - reference[k][1]) for k in got), default=0.0)
            rel = max((abs(got[k][1] - reference[k][1]) / max(reference[k][1], 1.0) for k in got), default=0.0)
            print(f"  check {day} {'current state' if form else 'baseline'}: {len(got)} groups, counts equal: "
                  f"{counts}, largest difference {worst:.3g} m2 (relative {rel:.2g})")
            assert counts and rel < 1e-9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT / "bench" / "work" / "data"))
    parser.add_argument("--state", default="KHM")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    from app import database
    from app.committee import summaries
    from app.embedded import EmbeddedCluster

    today = date.today()
    days = [today, date(today.year - 1, 12, 31), date(2015, 6, 30), date(2005, 12, 31)]
    cluster = EmbeddedCluster(Path(args.data_dir), fsync=False)
    cluster.start()
    database.configure(cluster.url)
    try:
        with database.session() as session:
            counts = session.execute(__import__("sqlalchemy").text(
                "SELECT (SELECT count(*) FROM hazardous_areas), (SELECT count(*) FROM land_release_events), "
                "(SELECT count(*) FROM hazardous_areas WHERE state_iso3 = :s), "
                "(SELECT count(*) FROM land_release_events WHERE state_iso3 = :s)"), {"s": args.state}).one()
            print(f"{counts[0]} hazards, {counts[1]} events; {args.state}: {counts[2]} hazards, {counts[3]} events")
            if args.check:
                check(session, days)
            for day in days:
                p50, p95 = timed(lambda day=day: summaries.state_summary(session, args.state, day), args.repeats)
                print(f"  summary {args.state} {day}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
                p50, p95 = timed(lambda day=day: summaries.overview(session, day), args.repeats)
                print(f"  overview     {day}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
    finally:
        database.dispose()
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
