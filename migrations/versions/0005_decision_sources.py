"""Article 5 decisions recorded through the API no longer carry "recorded by <API key name>" as their
source when none was given: the decision history is public and the key's name is not (the audit log
keeps who recorded what). This clears that default from the decisions already stored.

Revision ID: 0005_decision_sources
Revises: 0004_summary_indexes
Create Date: 2026-11-23
"""

from alembic import op

revision = "0005_decision_sources"
down_revision = "0004_summary_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        UPDATE article5_decisions d SET source = NULL
        WHERE d.source LIKE 'recorded by %'
          AND EXISTS (SELECT 1 FROM audit_log a WHERE a.table_name = 'article5_decisions'
                      AND a.row_id = d.id::text AND d.source = 'recorded by ' || a.actor)
    """)


def downgrade() -> None:
    pass  # the key names are in the audit log; they are not put back into the public history
