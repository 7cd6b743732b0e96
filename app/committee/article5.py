"""Article 5 and Article 20 of the Convention: each State's deadline and whether it is bound, as a history
of dated decisions, and its work plans.

- A State's obligation starts when the Convention enters into force for it; its **original
  deadline** is ten years later (Article 5.1).
- A Meeting of the States Parties or a Review Conference may grant an **extension** of up to ten
  years (Article 5.3-6); extensions can be renewed. Each request carries a work plan with annual
  milestones (Oslo Action Plan Actions 19, 20, 23).
- A State that finishes declares **completion** (Action 25); completion can be **reopened** when
  previously unknown mined areas are found (Action 26), possibly with a new deadline.
- **Withdrawal** (Article 20): it takes effect six months after the instrument is received
  (`withdrawal_notified`); but if the State is then engaged in an armed conflict
  (`armed_conflict_began` without `armed_conflict_ended` by that day), not before the end of that
  conflict (Article 20.3). Until then the State is bound. A `withdrawal_effective` may record the day.
- A **suspension** is not provided for by the Convention: a `suspension_notified` is kept as the
  notified act it is, with no legal effect on the obligations (the State stays bound).

Every fact is one row of `article5_decisions` with its source and confidence, never one field that
gets overwritten. A decision counts from the day it was taken (`decided_on`); when only the meeting
is known, from the meeting's closing day (`decided_by`, the latest day it can have been taken); a
fact known without any date counts from `applies_from` (the deadline it extended), else from the
original deadline. No date is invented: unknown stays unknown (`decided_on` null, confidence low).
The reference facts are `geodata/article5_decisions.csv` (what was confirmed and what not:
`geodata/article5_sources.md`); the States and their entry into force `geodata/article5_states.csv`.

The Committee corrects a fact with a reason (`correct_decision`): the correction is a new row that
`replaces` the old one, which stays in the history (marked corrected) and no longer counts.
"""
from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app import audit
from app.committee.i18n import _, day
from app.committee.results import (
    Article5Status,
    Decision,
    PlannedYear,
    RecordedDecision,
    StateList,
    StateListEntry,
    StateRecord,
    WorkPlan,
)
from app.ledger import require_state
from app.problems import Problem

GEODATA = Path(__file__).resolve().parents[2] / "geodata"
STATES_CSV = GEODATA / "article5_states.csv"
DECISIONS_CSV = GEODATA / "article5_decisions.csv"
REFERENCE_SOURCE = "geodata/article5_states.csv"
DECISIONS_ORIGIN = "geodata/article5_decisions.csv"
POSTABLE_KINDS = ("extension", "completion", "reopening", "withdrawal_notified", "withdrawal_effective",
                  "armed_conflict_began", "armed_conflict_ended", "suspension_notified")
MAX_EXTENSION_YEARS = 10  # Article 5.3: an extension of up to ten years
WITHDRAWAL_NOTICE_MONTHS = 6  # Article 20.2

# The Article 5 status a decision puts a State in (the kinds not listed do not change it).
STATUS_OF_KIND = {
    "original_deadline": "obligation",
    "extension": "obligation",
    "reopening": "obligation",
    "completion": "completed",
    "withdrawal_notified": "withdrawal_notified",
}
WITHDRAWN = "withdrawn"
NOT_IN_FORCE = "not_in_force"
NO_OBLIGATION = "no_article5_obligation"  # a State Party that reported no mined areas
# The facts that decide whether a State is bound (Article 20).
TREATY_KINDS = ("withdrawal_notified", "withdrawal_effective", "armed_conflict_began", "armed_conflict_ended",
                "suspension_notified")


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _months_later(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)


# --- reference data -----------------------------------------------------------------------------
def _csv_date(value: str | None) -> date | None:
    value = (value or "").strip()
    return date.fromisoformat(value) if value else None


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]


_INSERT_SQL = """
    INSERT INTO article5_decisions (state_iso3, kind, decided_on, deadline, extensions_count, source, confidence,
                                    note{extra_columns})
    SELECT CAST(:iso3 AS varchar), CAST(:kind AS varchar), CAST(:decided_on AS date), CAST(:deadline AS date),
           CAST(:extensions_count AS integer), CAST(:source AS text), CAST(:confidence AS text),
           CAST(:note AS text){extra_values}
    WHERE NOT EXISTS (SELECT 1 FROM article5_decisions
                      WHERE state_iso3 = CAST(:iso3 AS varchar) AND kind = CAST(:kind AS varchar)
                        AND {same})
"""


def seed_original_deadlines(conn: Connection) -> int:
    """The States of `geodata/article5_states.csv` and the original deadline of each State with mined areas
    (migration 0002, before the columns of 0009 exist); safe to run again. Returns the decisions added."""
    added = 0
    for row in _read(STATES_CSV):
        entry = _csv_date(row["entry_into_force"])
        conn.execute(
            text("INSERT INTO states (iso3, name, entry_into_force, source) VALUES (:iso3, :name, :eif, :source) "
                 "ON CONFLICT (iso3) DO NOTHING"),
            {"iso3": row["iso3"], "name": row["name"], "eif": entry, "source": REFERENCE_SOURCE},
        )
        if entry is None or row.get("article5_obligation", "yes") == "no":
            continue
        added += conn.execute(
            text(_INSERT_SQL.format(extra_columns="", extra_values="", same="source = CAST(:source AS text)")),
            {"iso3": row["iso3"], "kind": "original_deadline", "decided_on": entry,
             "deadline": _years_later(entry, 10), "extensions_count": None, "source": REFERENCE_SOURCE,
             "confidence": "high", "note": "entry into force + 10 years (Article 5.1)"},
        ).rowcount
    return added


def seed_reference_data(conn: Connection) -> int:
    """The States, their original deadlines and the dated decisions of `geodata/article5_decisions.csv`
    (migration 0009); safe to run again. Returns the decisions added. A reference fact already loaded (same
    State, kind, dates and deadline, from the file) is left as it is, so a correction is never overwritten."""
    same = ("origin = CAST(:origin AS text) AND decided_on IS NOT DISTINCT FROM CAST(:decided_on AS date) "
            "AND decided_by IS NOT DISTINCT FROM CAST(:decided_by AS date) "
            "AND applies_from IS NOT DISTINCT FROM CAST(:applies_from AS date) "
            "AND deadline IS NOT DISTINCT FROM CAST(:deadline AS date)")
    sql = text(_INSERT_SQL.format(
        extra_columns=", decided_by, applies_from, meeting, origin",
        extra_values=", CAST(:decided_by AS date), CAST(:applies_from AS date), CAST(:meeting AS text), "
                     "CAST(:origin AS text)",
        same=same))
    added = seed_original_deadlines(conn)
    for row in _read(DECISIONS_CSV):
        count = row["extensions_count"]
        added += conn.execute(sql, {
            "iso3": row["iso3"], "kind": row["kind"], "decided_on": _csv_date(row["decided_on"]),
            "decided_by": _csv_date(row["decided_by"]), "applies_from": _csv_date(row["applies_from"]),
            "deadline": _csv_date(row["deadline"]), "extensions_count": int(count) if count else None,
            "meeting": row["meeting"] or None, "source": row["source"] or None,
            "confidence": row["confidence"] or None, "note": row["note"] or None, "origin": DECISIONS_ORIGIN,
        }).rowcount
    return added


# --- where a State stands at a date --------------------------------------------------------------
# Each decision with the date it counts from (see the module docstring). Deadline-setting decisions
# are ordered by that date; the original deadline yields to any extension of the same date.
# A corrected decision (one a correction `replaces`) no longer counts.
# An undated extension is `superseded` once the same extension (same deadline) is recorded with its
# date (or while one is being recorded: `:recording`): the dated record replaces it.
_ALL_DECISIONS_SQL = """
    SELECT d.*,
           COALESCE(d.decided_on, d.decided_by, d.applies_from,
                    (s.entry_into_force + interval '10 years')::date) AS effective_on,
           (d.decided_on IS NOT NULL OR d.decided_by IS NOT NULL) AS dated,
           CASE WHEN d.kind = 'original_deadline' THEN 0 ELSE 1 END AS rank,
           EXISTS (SELECT 1 FROM article5_decisions c WHERE c.replaces = d.id) AS corrected,
           (d.decided_on IS NULL AND d.decided_by IS NULL AND d.kind = 'extension' AND d.deadline IS NOT NULL AND (
                d.deadline IS NOT DISTINCT FROM CAST(:recording AS date)
                OR EXISTS (SELECT 1 FROM article5_decisions x
                           WHERE x.state_iso3 = d.state_iso3 AND x.kind = 'extension' AND x.id <> d.id
                             AND (x.decided_on IS NOT NULL OR x.decided_by IS NOT NULL) AND x.deadline = d.deadline
                             AND NOT EXISTS (SELECT 1 FROM article5_decisions c WHERE c.replaces = x.id))))
           -- "a later extension, deadline unknown": replaced by a dated extension beyond the deadline it follows,
           -- taken by then
           OR (d.decided_on IS NULL AND d.decided_by IS NULL AND d.kind = 'extension' AND d.deadline IS NULL
               AND d.applies_from IS NOT NULL AND EXISTS (
                   SELECT 1 FROM article5_decisions x
                   WHERE x.state_iso3 = d.state_iso3 AND x.kind = 'extension' AND x.deadline > d.applies_from
                     AND COALESCE(x.decided_on, x.decided_by) <= d.applies_from
                     AND NOT EXISTS (SELECT 1 FROM article5_decisions c WHERE c.replaces = x.id)))
               AS superseded
    FROM article5_decisions d JOIN states s ON s.iso3 = d.state_iso3
    WHERE CAST(:states AS text[]) IS NULL OR d.state_iso3 = ANY(CAST(:states AS text[]))
"""
_DECISIONS_SQL = f"SELECT * FROM ({_ALL_DECISIONS_SQL}) all_decisions WHERE NOT superseded AND NOT corrected"
_STATUS_KINDS = ", ".join(f"'{k}'" for k in STATUS_OF_KIND)

# The extensions in force: an undated extension standing for N of them (extensions_count N) covers the
# dated ones whose deadlines fall within it (after the day it counts from, before its own deadline).
STANDING_SQL = f"""
    WITH d AS ({_DECISIONS_SQL})
    SELECT s.iso3, s.name, s.entry_into_force,
           (SELECT o.deadline FROM d o WHERE o.state_iso3 = s.iso3 AND o.kind = 'original_deadline'
            ORDER BY o.recorded_at DESC LIMIT 1) AS original_deadline,
           dl.id AS deadline_decision_id, dl.deadline,
           ext.extensions,
           st.kind AS last_kind
    FROM states s
    LEFT JOIN LATERAL (
        SELECT d.id, d.deadline FROM d
        WHERE d.state_iso3 = s.iso3 AND d.effective_on <= :as_of
          AND (d.kind IN ('original_deadline', 'extension') OR (d.kind = 'reopening' AND d.deadline IS NOT NULL))
        ORDER BY d.effective_on DESC, d.rank DESC, d.recorded_at DESC LIMIT 1) dl ON true
    LEFT JOIN LATERAL (
        SELECT CASE WHEN bool_or(d.extensions_count IS NULL) THEN NULL
                    ELSE COALESCE(sum(d.extensions_count), 0) END AS extensions
        FROM d WHERE d.state_iso3 = s.iso3 AND d.kind = 'extension' AND d.effective_on <= :as_of
          AND NOT (d.dated AND EXISTS (
              SELECT 1 FROM d r WHERE r.state_iso3 = d.state_iso3 AND r.kind = 'extension' AND NOT r.dated
                AND r.deadline IS NOT NULL AND r.effective_on <= :as_of AND d.deadline > r.effective_on
                AND d.deadline < r.deadline))) ext ON true
    LEFT JOIN LATERAL (
        SELECT d.kind FROM d WHERE d.state_iso3 = s.iso3 AND d.effective_on <= :as_of
          AND d.kind IN ({_STATUS_KINDS})
        ORDER BY d.effective_on DESC, d.rank DESC, d.recorded_at DESC LIMIT 1) st ON true
    WHERE CAST(:states AS text[]) IS NULL OR s.iso3 = ANY(CAST(:states AS text[]))
    ORDER BY s.iso3
"""
TREATY_FACTS_SQL = f"""
    WITH d AS ({_DECISIONS_SQL})
    SELECT state_iso3, kind, effective_on FROM d
    WHERE kind IN ({", ".join(f"'{k}'" for k in TREATY_KINDS)}) AND effective_on <= :as_of
    ORDER BY state_iso3, effective_on, recorded_at
"""


@dataclass
class TreatyFact:
    kind: str
    on: date


@dataclass
class Bound:
    """Whether a State is bound by the Convention at a date, and why (Article 20)."""

    bound: bool
    reason: str
    withdrawal_effective_on: date | None = None


def _conflict_at(facts: list[TreatyFact], day: date) -> date | None:
    """The start of the armed conflict the State is engaged in on `day`, if any."""
    began = None
    for f in facts:
        if f.on > day:
            break
        if f.kind == "armed_conflict_began" and began is None:
            began = f.on
        elif f.kind == "armed_conflict_ended":
            began = None
    return began


def _conflict_end_after(facts: list[TreatyFact], day: date) -> date | None:
    return next((f.on for f in facts if f.kind == "armed_conflict_ended" and f.on > day), None)


def bound_at(entry_into_force: date | None, facts: list[TreatyFact], as_of: date) -> Bound:
    """Article 20 applied to a State's facts known up to `as_of` (the facts are in date order); the reason in
    the request's language (app.committee.i18n)."""
    if entry_into_force is None or entry_into_force > as_of:
        if entry_into_force is None:
            return Bound(False, _("not bound: the Convention is not in force for it on {as_of}", as_of=day(as_of)))
        return Bound(False, _("not bound: the Convention is not in force for it on {as_of} (it enters into force "
                              "on {entry})", as_of=day(as_of), entry=day(entry_into_force)))
    suspension = next((f for f in facts if f.kind == "suspension_notified"), None)
    note = _("; the 'suspension' notified on {on} has no legal effect: the Convention provides for no suspension",
             on=day(suspension.on)) if suspension else ""
    notified = next((f for f in facts if f.kind == "withdrawal_notified"), None)
    if notified is None:
        return Bound(True, _("bound since the entry into force on {entry}", entry=day(entry_into_force)) + note)
    recorded = next((f.on for f in facts if f.kind == "withdrawal_effective"), None)
    six_months = _months_later(notified.on, WITHDRAWAL_NOTICE_MONTHS)
    if recorded is not None:
        return Bound(False, _("not bound: withdrawal notified on {notified}, effective on {effective}",
                              notified=day(notified.on), effective=day(recorded)), withdrawal_effective_on=recorded)
    if as_of < six_months:
        return Bound(True, _("bound: withdrawal notified on {notified} takes effect six months later, on {effective} "
                             "(Article 20.2)", notified=day(notified.on), effective=day(six_months)) + note)
    conflict = _conflict_at(facts, six_months)
    if conflict is None:
        return Bound(False, _("not bound: withdrawal notified on {notified}, effective six months later on "
                              "{effective} (Article 20.2)", notified=day(notified.on), effective=day(six_months)),
                     withdrawal_effective_on=six_months)
    ended = _conflict_end_after(facts, six_months)
    if ended is None:
        return Bound(True, _("bound: withdrawal notified on {notified}, but on {six_months} the State is engaged in "
                             "an armed conflict (since {conflict}): the withdrawal takes effect at the end of the "
                             "conflict (Article 20.3)", notified=day(notified.on), six_months=day(six_months),
                             conflict=day(conflict)) + note)
    return Bound(False, _("not bound: withdrawal notified on {notified}, effective at the end of the armed conflict "
                          "it was engaged in, on {effective} (Article 20.3)", notified=day(notified.on),
                          effective=day(ended)), withdrawal_effective_on=ended)


@dataclass
class Standing:
    """Where a State stands under Articles 5 and 20 at a date."""

    iso3: str
    name: str
    entry_into_force: date | None
    original_deadline: date | None
    deadline: date | None
    deadline_decision_id: uuid.UUID | None
    extensions: int | None
    status: str
    bound: Bound

    def fields(self) -> dict[str, Any]:
        """The fields of `Article5Status`."""
        return {"entry_into_force": self.entry_into_force, "original_deadline": self.original_deadline,
                "deadline": self.deadline, "extensions": self.extensions, "status": self.status,
                "bound": self.bound.bound, "bound_reason": self.bound.reason,
                "withdrawal_effective_on": self.bound.withdrawal_effective_on}

    def status_result(self) -> Article5Status:
        return Article5Status(**self.fields())


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _status(last_kind: str | None, entry_into_force: date | None, bound: Bound, as_of: date) -> str:
    if bound.withdrawal_effective_on is not None:
        return WITHDRAWN
    if last_kind:
        return STATUS_OF_KIND[last_kind]
    return NO_OBLIGATION if entry_into_force is not None and entry_into_force <= as_of else NOT_IN_FORCE


def standings(session: Session | Connection, as_of: date, states: list[str] | None = None,
              recording: date | None = None) -> dict[str, Standing]:
    """Every State's (or the given States') deadline, extensions, status and whether it is bound at the end
    of `as_of`.

    `recording`: the deadline of an extension about to be recorded (an undated reference fact with
    that deadline is the same extension and is left out).
    """
    params = {"as_of": as_of, "states": states, "recording": recording}
    facts: dict[str, list[TreatyFact]] = {}
    for f in session.execute(text(TREATY_FACTS_SQL), params):
        facts.setdefault(f.state_iso3, []).append(TreatyFact(f.kind, f.effective_on))
    out = {}
    for r in session.execute(text(STANDING_SQL), params):
        bound = bound_at(r.entry_into_force, facts.get(r.iso3, []), as_of)
        out[r.iso3] = Standing(
            iso3=r.iso3, name=r.name, entry_into_force=r.entry_into_force, original_deadline=r.original_deadline,
            deadline=r.deadline, deadline_decision_id=r.deadline_decision_id,
            extensions=int(r.extensions) if r.extensions is not None else None,
            status=_status(r.last_kind, r.entry_into_force, bound, as_of), bound=bound,
        )
    return out


def standing(session: Session, iso3: str, as_of: date, recording: date | None = None) -> Standing:
    found = standings(session, as_of, [iso3], recording).get(iso3)
    if found is None:  # every State in the table has a standing: there is no such State
        require_state(session, iso3)
        raise AssertionError(f"{iso3} is a State without a standing")
    return found


# --- the history ---------------------------------------------------------------------------------
def decision_history(session: Session, iso3: str) -> list[Decision]:
    """The State's decisions in the order they took effect, each with its work-plan milestones."""
    rows = session.execute(
        text(
            f"""
            WITH d AS ({_ALL_DECISIONS_SQL})
            SELECT COALESCE(json_agg(json_build_object(
                'id', d.id, 'kind', d.kind, 'superseded', d.superseded, 'corrected', d.corrected,
                'decided_on', d.decided_on, 'decided_by', d.decided_by, 'applies_from', d.applies_from,
                'effective_on', d.effective_on, 'replaces', d.replaces, 'correction_reason', d.correction_reason,
                'meeting', d.meeting, 'deadline', d.deadline, 'extensions_count', d.extensions_count,
                'source', d.source, 'confidence', d.confidence, 'note', d.note, 'recorded_at', d.recorded_at,
                'milestones', (SELECT COALESCE(json_agg(json_build_object('year', m.year, 'area_m2', m.area_m2,
                                                                          'areas', m.areas) ORDER BY m.year), '[]')
                               FROM work_plan_milestones m WHERE m.decision_id = d.id))
                ORDER BY d.effective_on, d.rank, d.recorded_at), '[]'::json)
            FROM d
            """
        ),
        {"states": [iso3], "recording": None},
    ).scalar_one()
    return [Decision.model_validate(row) for row in rows]


def state_record(session: Session, iso3: str, today: date | None = None) -> StateRecord:
    """GET /states/{iso3}: the State, where it stands today and its decision history."""
    today = today or date.today()
    now = standing(session, iso3, today)
    source = session.execute(text("SELECT source FROM states WHERE iso3 = :iso3"), {"iso3": iso3}).scalar()
    return StateRecord(iso3=now.iso3, name=now.name, source=source, as_of=today, article5=now.status_result(),
                       decisions=decision_history(session, iso3))


def state_list(session: Session, today: date | None = None) -> StateList:
    today = today or date.today()
    return StateList(states=[StateListEntry(iso3=s.iso3, name=s.name, **s.fields())
                             for s in standings(session, today).values()])


# --- new decisions -------------------------------------------------------------------------------
@dataclass
class NewDecision:
    kind: str
    decided_on: date
    deadline: date | None = None
    meeting: str | None = None
    source: str | None = None
    confidence: str | None = None
    note: str | None = None


def _check_decision(session: Session, iso3: str, new: NewDecision, today: date) -> None:
    if new.kind not in POSTABLE_KINDS:
        raise Problem(422, f"kind '{new.kind}' cannot be recorded here: use one of {', '.join(POSTABLE_KINDS)} "
                           "(the original deadline follows from the entry into force).")
    if new.decided_on > today:
        raise Problem(422, f"decided_on {new.decided_on} is in the future: record a decision once it is taken.")
    recording = new.deadline if new.kind == "extension" else None
    before = standing(session, iso3, new.decided_on, recording)
    if before.entry_into_force is None or new.decided_on < before.entry_into_force:
        raise Problem(422, f"decided_on {new.decided_on} is before the Convention entered into force for "
                           f"{iso3} ({_iso(before.entry_into_force) or 'unknown'}).")
    if new.kind not in ("extension", "reopening") and new.deadline is not None:
        raise Problem(422, f"A {new.kind} carries no deadline: leave `deadline` out.")
    if new.kind == "extension":
        if new.deadline is None:
            raise Problem(422, "An extension needs `deadline`: the new deadline it grants.")
        if before.status not in ("obligation", "withdrawal_notified"):
            raise Problem(422, f"{iso3} is {before.status.replace('_', ' ')} on {new.decided_on}: there is no "
                               "deadline to extend.")
        extended = before.deadline
        if extended is None:  # unknown current deadline: at least later than every deadline known then
            extended = session.execute(
                text(f"WITH d AS ({_DECISIONS_SQL}) SELECT max(deadline) FROM d WHERE effective_on <= :as_of"),
                {"states": [iso3], "as_of": new.decided_on, "recording": recording},
            ).scalar()
        if extended is not None and new.deadline <= extended:
            raise Problem(422, f"The new deadline {new.deadline} is not later than the deadline it extends "
                               f"({extended}).", extended_deadline=extended.isoformat())
        if before.deadline is not None and new.deadline > _years_later(before.deadline, MAX_EXTENSION_YEARS):
            raise Problem(422, f"The new deadline {new.deadline} is more than {MAX_EXTENSION_YEARS} years after the "
                               f"deadline it extends ({before.deadline}); Article 5.3 allows up to ten years.")
        later = session.execute(
            text(f"WITH d AS ({_DECISIONS_SQL}) SELECT min(deadline) FROM d "
                 "WHERE kind = 'extension' AND effective_on > :as_of"),
            {"states": [iso3], "as_of": new.decided_on, "recording": recording},
        ).scalar()
        if later is not None and new.deadline >= later:
            raise Problem(422, f"A later extension already sets the deadline to {later}; an extension decided on "
                               f"{new.decided_on} must end before it.")
    elif new.kind == "completion":
        if before.status not in ("obligation", "withdrawal_notified"):
            raise Problem(422, f"{iso3} is {before.status.replace('_', ' ')} on {new.decided_on}: completion can "
                               "only be declared by a State with an Article 5 obligation.")
    elif new.kind == "reopening":
        if before.status != "completed":
            raise Problem(422, f"{iso3} is {before.status.replace('_', ' ')} on {new.decided_on}: only a declared "
                               "completion can be reopened.")
        if new.deadline is not None and new.deadline <= new.decided_on:
            raise Problem(422, f"The reopening's deadline {new.deadline} must be after its date {new.decided_on}.")
    elif new.kind in ("withdrawal_notified", "suspension_notified"):
        if not before.bound.bound or before.status == "withdrawal_notified":
            raise Problem(422, f"{iso3} is {before.status.replace('_', ' ')} on {new.decided_on} "
                               f"({before.bound.reason}): it cannot notify a {new.kind.split('_')[0]}.")
    elif new.kind in ("armed_conflict_began", "armed_conflict_ended"):
        in_conflict = _conflict_at(treaty_facts(session, iso3, new.decided_on), new.decided_on)
        if new.kind == "armed_conflict_began" and in_conflict is not None:
            raise Problem(422, f"{iso3} is already recorded as engaged in an armed conflict since {in_conflict}.")
        if new.kind == "armed_conflict_ended" and (in_conflict is None or in_conflict >= new.decided_on):
            raise Problem(422, f"{iso3} is not recorded as engaged in an armed conflict before {new.decided_on}: "
                               "record armed_conflict_began first.")
    elif new.kind == "withdrawal_effective":
        facts = treaty_facts(session, iso3, new.decided_on)
        notified = next((f.on for f in facts if f.kind == "withdrawal_notified"), None)
        if any(f.kind == "withdrawal_effective" for f in facts):
            raise Problem(422, f"{iso3}'s withdrawal is already recorded as effective.")
        if notified is None:
            raise Problem(422, f"{iso3} has not notified a withdrawal by {new.decided_on}: record "
                               "withdrawal_notified first.")
        earliest = _months_later(notified, WITHDRAWAL_NOTICE_MONTHS)
        if new.decided_on < earliest:
            raise Problem(422, f"A withdrawal notified on {notified} takes effect six months later at the earliest "
                               f"({earliest}), not on {new.decided_on} (Article 20.2).")
        conflict = _conflict_at(facts, earliest)
        ended = _conflict_end_after(facts, earliest) if conflict else None
        if conflict is not None and ended is None:
            raise Problem(422, f"On {earliest}, six months after the notification, {iso3} is engaged in an armed "
                               f"conflict (since {conflict}): the withdrawal cannot take effect before the end of "
                               "that conflict (Article 20.3); record armed_conflict_ended first.")
        effective = ended or earliest
        if new.decided_on != effective:
            rule = "the end of the armed conflict (Article 20.3)" if ended else "six months later (Article 20.2)"
            raise Problem(422, f"A withdrawal notified on {notified} takes effect on {effective}, {rule}, not on "
                               f"{new.decided_on}.")


def treaty_facts(session: Session, iso3: str, as_of: date) -> list[TreatyFact]:
    """The State's Article 20 facts counting by `as_of`, in date order."""
    rows = session.execute(text(TREATY_FACTS_SQL), {"as_of": as_of, "states": [iso3], "recording": None})
    return [TreatyFact(r.kind, r.effective_on) for r in rows]


def record_decision(session: Session, iso3: str, new: NewDecision, actor: audit.Actor,
                    today: date | None = None) -> RecordedDecision:
    """Validate and record one Article 5 decision; returns it with where the State stands now."""
    today = today or date.today()
    if session.execute(text("SELECT iso3 FROM states WHERE iso3 = :iso3 FOR UPDATE"), {"iso3": iso3}).scalar() is None:
        require_state(session, iso3)  # the 404 that names the unknown State
    _check_decision(session, iso3, new, today)
    decision_id = session.execute(
        text(
            "INSERT INTO article5_decisions (state_iso3, kind, decided_on, meeting, deadline, extensions_count, "
            "source, confidence, note) VALUES (:iso3, :kind, :decided_on, :meeting, :deadline, :extensions_count, "
            ":source, :confidence, :note) RETURNING id"
        ),
        {"iso3": iso3, "kind": new.kind, "decided_on": new.decided_on, "meeting": new.meeting,
         "deadline": new.deadline, "extensions_count": 1 if new.kind == "extension" else None,
         "source": new.source, "confidence": new.confidence, "note": new.note},
    ).scalar_one()
    audit.record(session, actor, state_iso3=iso3, table="article5_decisions", row_id=decision_id, action="create",
                 detail={"kind": new.kind, "decided_on": new.decided_on.isoformat(), "deadline": _iso(new.deadline)})
    now = standing(session, iso3, today)
    session.commit()
    decision = next(d for d in decision_history(session, iso3) if d.id == decision_id)
    return RecordedDecision(decision=decision, article5=now.status_result())


# --- corrections by the Committee ------------------------------------------------------------------
CORRECTABLE_FIELDS = ("decided_on", "decided_by", "meeting", "deadline", "extensions_count", "source", "confidence",
                      "note")


def correct_decision(session: Session, iso3: str, decision_id: uuid.UUID, changes: dict[str, Any], reason: str,
                     actor: audit.Actor, today: date | None = None) -> RecordedDecision:
    """Correct one fact: a new row with the changed fields replaces it (the corrected row is kept in the
    history and no longer counts; its work plan moves to the correction). Returns the correction and where
    the State stands now."""
    today = today or date.today()
    if session.execute(text("SELECT iso3 FROM states WHERE iso3 = :iso3 FOR UPDATE"), {"iso3": iso3}).scalar() is None:
        require_state(session, iso3)
    reason = reason.strip()
    if not reason:
        raise Problem(422, "A correction needs `reason`: say why the fact is corrected (e.g. the document read).")
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise Problem(422, f"{', '.join(unknown)} cannot be corrected; correct one of {', '.join(CORRECTABLE_FIELDS)}.")
    old = session.execute(
        text("SELECT d.*, EXISTS (SELECT 1 FROM article5_decisions c WHERE c.replaces = d.id) AS corrected "
             "FROM article5_decisions d WHERE d.id = :id AND d.state_iso3 = :iso3 FOR UPDATE"),
        {"id": decision_id, "iso3": iso3},
    ).mappings().one_or_none()
    if old is None:
        raise Problem(404, f"{iso3} has no Article 5 decision with id {decision_id}.")
    if old["corrected"]:
        newer = session.execute(text("SELECT id FROM article5_decisions WHERE replaces = :id"),
                                {"id": decision_id}).scalar_one()
        raise Problem(409, f"Decision {decision_id} has already been corrected: correct its correction {newer}.",
                      correction_id=str(newer))
    if not changes or all(old[k] == v for k, v in changes.items()):
        raise Problem(422, "The correction changes nothing: give the fields whose values are wrong, with the right "
                           f"values ({', '.join(CORRECTABLE_FIELDS)}).")
    row = {k: old[k] for k in CORRECTABLE_FIELDS} | changes
    for name in ("decided_on", "decided_by"):
        if row[name] is not None and row[name] > today:
            raise Problem(422, f"{name} {row[name]} is in the future: a decision is recorded once it is taken.")
    if old["kind"] not in ("original_deadline", "extension", "reopening") and row["deadline"] is not None:
        raise Problem(422, f"A {old['kind']} carries no deadline: leave `deadline` out.")
    if old["kind"] == "original_deadline" and row["deadline"] is None:
        raise Problem(422, "The original deadline cannot be unknown: give `deadline`.")
    new_id = session.execute(
        text("INSERT INTO article5_decisions (state_iso3, kind, decided_on, decided_by, applies_from, meeting, "
             "deadline, extensions_count, source, confidence, note, replaces, correction_reason) "
             "VALUES (:iso3, :kind, :decided_on, :decided_by, :applies_from, :meeting, :deadline, :extensions_count, "
             ":source, :confidence, :note, :replaces, :reason) RETURNING id"),
        {**row, "iso3": iso3, "kind": old["kind"], "applies_from": old["applies_from"], "replaces": decision_id,
         "reason": reason},
    ).scalar_one()
    session.execute(text("UPDATE work_plan_milestones SET decision_id = :new WHERE decision_id = :old"),
                    {"new": new_id, "old": decision_id})
    audit.record(session, actor, state_iso3=iso3, table="article5_decisions", row_id=new_id, action="correct",
                 detail={"replaces": str(decision_id), "reason": reason,
                         "changes": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in changes.items()}})
    now = standing(session, iso3, today)
    session.commit()
    decision = next(d for d in decision_history(session, iso3) if d.id == new_id)
    return RecordedDecision(decision=decision, article5=now.status_result())


# --- work plans ----------------------------------------------------------------------------------
@dataclass
class Milestone:
    year: int
    area_m2: float
    areas: int | None = None


def replace_milestones(session: Session, iso3: str, milestones: list[Milestone], decision_id: uuid.UUID | None,
                       actor: audit.Actor, today: date | None = None) -> WorkPlan:
    """Set the work-plan milestones of one granted extension (by default the one in force today)."""
    today = today or date.today()
    require_state(session, iso3)
    if decision_id is None:
        decision_id = session.execute(
            text(f"WITH d AS ({_DECISIONS_SQL}) SELECT id FROM d WHERE kind IN ('extension', 'reopening') "
                 "AND effective_on <= :as_of ORDER BY effective_on DESC, recorded_at DESC LIMIT 1"),
            {"states": [iso3], "as_of": today, "recording": None},
        ).scalar()
        if decision_id is None:
            raise Problem(422, f"{iso3} has no granted extension to attach a work plan to: record the extension "
                               "first (POST .../article5/decisions), or name the decision with ?decision_id=.")
    decision = session.execute(
        text(f"WITH d AS ({_DECISIONS_SQL}) SELECT id, kind, COALESCE(decided_on, decided_by) AS decided_on, "
             "deadline FROM d WHERE id = :id"),
        {"states": [iso3], "id": decision_id, "recording": None},
    ).one_or_none()
    if decision is None:
        raise Problem(404, f"{iso3} has no Article 5 decision with id {decision_id}.")
    # One writer of a work plan at a time.
    session.execute(text("SELECT id FROM article5_decisions WHERE id = :id FOR UPDATE"), {"id": decision_id})
    if decision.kind not in ("extension", "reopening"):
        raise Problem(422, f"Milestones belong to a granted extension (or a reopening), not to a {decision.kind}.")
    years = [m.year for m in milestones]
    duplicates = sorted({y for y in years if years.count(y) > 1})
    if duplicates:
        raise Problem(422, f"Each year appears once in a work plan; repeated: {', '.join(map(str, duplicates))}.")
    first = decision.decided_on.year if decision.decided_on else None
    last = decision.deadline.year if decision.deadline else None
    outside = [y for y in years if (first is not None and y < first) or (last is not None and y > last)]
    if outside:
        raise Problem(422, f"Milestone years {', '.join(map(str, outside))} fall outside the extension's period "
                           f"({first or '?'} to {last or '?'}).")
    session.execute(text("DELETE FROM work_plan_milestones WHERE decision_id = :id"), {"id": decision_id})
    for m in milestones:
        session.execute(
            text("INSERT INTO work_plan_milestones (state_iso3, decision_id, year, area_m2, areas) "
                 "VALUES (:iso3, :decision_id, :year, :area_m2, :areas)"),
            {"iso3": iso3, "decision_id": decision_id, "year": m.year, "area_m2": m.area_m2, "areas": m.areas},
        )
    audit.record(session, actor, state_iso3=iso3, table="work_plan_milestones", row_id=decision_id,
                 action="replace", detail={"years": years})
    session.commit()
    return WorkPlan(state=iso3, decision_id=decision_id,
                    milestones=[PlannedYear(year=m.year, area_m2=m.area_m2, areas=m.areas)
                                for m in sorted(milestones, key=lambda m: m.year)])


def milestones_sql() -> str:
    """Per State and year, the milestone of the latest decision in effect at `:as_of` that plans that year."""
    return f"""
        WITH d AS ({_DECISIONS_SQL})
        SELECT DISTINCT ON (m.state_iso3, m.year) m.state_iso3, m.year, m.area_m2, m.areas, m.decision_id
        FROM work_plan_milestones m JOIN d ON d.id = m.decision_id
        WHERE d.effective_on <= :as_of
        ORDER BY m.state_iso3, m.year, d.effective_on DESC, d.recorded_at DESC
    """
