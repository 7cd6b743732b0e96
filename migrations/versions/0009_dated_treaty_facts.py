"""Article 5 and Article 20 facts as dated decisions (geodata/article5_decisions.csv) and the Committee's corrections.

- `decided_by`: the latest day an undated decision can have been taken (the closing day of the meeting
  that took it) when its own day is not known; `applies_from`: for a fact known without any date, the
  day it is taken to count from (the deadline it extended). Neither is a decision date.
- `origin`: the reference file a row was loaded from (NULL: recorded through the API).
- `replaces` and `correction_reason`: a correction by the Committee is a new row that replaces the
  corrected one, with the reason; the corrected row is kept in the history.
- New kinds: `armed_conflict_began`, `armed_conflict_ended` (Article 20.3) and `suspension_notified`
  (a notified act the Convention does not provide for, without legal effect).
- The undated "last known deadline" rows of the earlier reference file (migration 0002) are removed,
  except those a work plan hangs on, and the dated decisions loaded.

Revision ID: 0009_dated_treaty_facts
Revises: 0008_places
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009_dated_treaty_facts"
down_revision = "0008_places"
branch_labels = None
depends_on = None

OLD_KINDS = ("original_deadline", "extension", "completion", "reopening", "withdrawal_notified",
             "withdrawal_effective")


def upgrade() -> None:
    from app.committee.article5 import seed_reference_data
    from app.models import DECISION_KINDS

    kinds = ", ".join(f"'{k}'" for k in DECISION_KINDS)
    op.execute(f"""
        ALTER TABLE article5_decisions
            ADD COLUMN decided_by date,
            ADD COLUMN applies_from date,
            ADD COLUMN origin text,
            ADD COLUMN replaces uuid REFERENCES article5_decisions(id),
            ADD COLUMN correction_reason text,
            ADD CONSTRAINT ck_decision_correction CHECK ((replaces IS NULL) = (correction_reason IS NULL));
        ALTER TABLE article5_decisions DROP CONSTRAINT ck_decision_kind;
        ALTER TABLE article5_decisions ADD CONSTRAINT ck_decision_kind CHECK (kind IN ({kinds}));
        CREATE UNIQUE INDEX ux_article5_decisions_replaces ON article5_decisions (replaces);
        DELETE FROM article5_decisions d
        WHERE d.source = 'geodata/article5_states.csv' AND d.kind IN ('extension', 'completion')
          AND d.decided_on IS NULL
          AND NOT EXISTS (SELECT 1 FROM work_plan_milestones m WHERE m.decision_id = d.id);
        UPDATE article5_decisions SET origin = 'geodata/article5_states.csv'
        WHERE source = 'geodata/article5_states.csv';
    """)
    seed_reference_data(op.get_bind())


def downgrade() -> None:
    kinds = ", ".join(f"'{k}'" for k in OLD_KINDS)
    op.execute(f"""
        DELETE FROM work_plan_milestones WHERE decision_id IN
            (SELECT id FROM article5_decisions WHERE origin = 'geodata/article5_decisions.csv' OR replaces IS NOT NULL
             OR kind NOT IN ({kinds}));
        DELETE FROM article5_decisions WHERE replaces IS NOT NULL;
        DELETE FROM article5_decisions WHERE origin = 'geodata/article5_decisions.csv' OR kind NOT IN ({kinds});
        DROP INDEX ux_article5_decisions_replaces;
        ALTER TABLE article5_decisions DROP CONSTRAINT ck_decision_kind;
        ALTER TABLE article5_decisions ADD CONSTRAINT ck_decision_kind CHECK (kind IN ({kinds}));
        ALTER TABLE article5_decisions DROP CONSTRAINT ck_decision_correction,
            DROP COLUMN correction_reason, DROP COLUMN replaces, DROP COLUMN origin, DROP COLUMN applies_from,
            DROP COLUMN decided_by;
    """)
