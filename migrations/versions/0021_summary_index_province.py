"""The covering index of the summaries' hazards (0004) also carries `province_code` (0018).

The per-State summary groups what remains by province since 0018, and the index that lets it read
only index pages lacked that column: every summary of a State read the State's whole hazard rows (two
geometries each). Measured on a bench database with 51,000 hazards and 205,000 events in KHM (the
large size's share of that State), vacuumed: the remaining area by class, contamination, region and
province took 309 ms with a sequential scan of the table, 39 ms with this index (index-only).

Revision ID: 0021_summary_index_province
Revises: 0020_within_mask
Create Date: 2026-12-02
"""

from alembic import op

revision = "0021_summary_index_province"
down_revision = "0020_within_mask"
branch_labels = None
depends_on = None

_COLUMNS = "id, released_on, reclassified_on, classification, parent_id, baseline_area_m2, remaining_area_m2, region"


def _covering_index(columns: str) -> str:
    return f"""
        DROP INDEX ix_hazardous_areas_valid_state_recorded_on;
        CREATE INDEX ix_hazardous_areas_valid_state_recorded_on ON hazardous_areas (state_iso3, recorded_on)
            INCLUDE ({columns}) WHERE voided_at IS NULL;
    """


def upgrade() -> None:
    op.execute(_covering_index(f"{_COLUMNS}, province_code, contamination"))


def downgrade() -> None:
    op.execute(_covering_index(f"{_COLUMNS}, contamination"))
