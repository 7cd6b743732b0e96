"""Submissions: operators report, the national centre approves (the rules are in `book`).

- `book`: submitting, resubmitting, approving (through the ledger, in one transaction), returning and
  rejecting; the reads, the preview of an approval and the pending backlog, and what a land-release report
  claims of its hazard (stored with it while the hazard does not change);
- `results`: the typed answers and bodies of the submission routes.
"""
from app.submissions.book import (
    Report,
    SubmissionFilter,
    approve,
    backlog,
    decide,
    get,
    hazard_report,
    hold,
    list_submissions,
    preview,
    release_report,
    resubmit,
    resubmitted_report,
    review,
    sql_claimed_m2,
    submit,
)

__all__ = [
    "Report", "SubmissionFilter", "approve", "backlog", "decide", "get", "hazard_report", "hold",
    "list_submissions",
    "preview", "release_report", "resubmit", "resubmitted_report", "review", "sql_claimed_m2", "submit",
]
