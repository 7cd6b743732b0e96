"""The hazard's priority (GICHD Minimum Data Requirements): high, medium or low, as the national centre
ranks the hazard for release. Optional; the hazards already stored have none.

Revision ID: 0007_hazard_priority
Revises: 0006_date_of_information
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_hazard_priority"
down_revision = "0006_date_of_information"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("hazardous_areas", sa.Column("priority", sa.Text(), nullable=True))
    op.create_check_constraint("ck_hazard_priority", "hazardous_areas", "priority IN ('high', 'medium', 'low')")


def downgrade() -> None:
    op.drop_constraint("ck_hazard_priority", "hazardous_areas", type_="check")
    op.drop_column("hazardous_areas", "priority")
