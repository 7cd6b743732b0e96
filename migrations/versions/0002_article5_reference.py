"""Article 5 reference data: the decisions behind each State's deadline, from geodata/article5_states.csv.

Adds `article5_decisions.extensions_count` (how many extensions a decision stands for: 1 for an
extension recorded with its date and meeting, N for the reference file's summary row, NULL when
unknown) and seeds the original deadlines (the dated decisions follow in migration 0009).

Revision ID: 0002_article5_reference
Revises: 0001_core
Create Date: 2026-11-23
"""
from alembic import op

revision = "0002_article5_reference"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from app.committee.article5 import seed_original_deadlines

    op.execute(
        """
        ALTER TABLE article5_decisions ADD COLUMN extensions_count integer
            CONSTRAINT ck_decision_extensions_count CHECK (extensions_count IS NULL OR extensions_count >= 0);
        CREATE INDEX ix_work_plan_milestones_decision_id ON work_plan_milestones (decision_id);
        """
    )
    seed_original_deadlines(op.get_bind())


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM work_plan_milestones WHERE decision_id IN
            (SELECT id FROM article5_decisions WHERE source = 'geodata/article5_states.csv');
        DELETE FROM article5_decisions WHERE source = 'geodata/article5_states.csv';
        DROP INDEX ix_work_plan_milestones_decision_id;
        ALTER TABLE article5_decisions DROP COLUMN extensions_count;
        """
    )
