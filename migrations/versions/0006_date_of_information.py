"""The hazard's date of information (GICHD Minimum Data Requirements): the date the information about
the hazard was collected. Optional; the hazards already stored have none.

Revision ID: 0006_date_of_information
Revises: 0005_decision_sources
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_date_of_information"
down_revision = "0005_decision_sources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("hazardous_areas", sa.Column("date_of_information", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("hazardous_areas", "date_of_information")
