"""The GICHD Minimum Data Requirements of the records, as declared properties (app/layers.py): a hazard's
evidence (direct or indirect, and of what) and blockages; a land-release report's start date (its date
is the end date), work status, methods and assets, clearance depth, land use after release, handover
(date and to whom), and its direct and indirect beneficiaries by sex and age (Oslo Action Plan Action
22). All optional; the records already stored have none.

Revision ID: 0013_mdr_records
Revises: 0012_submissions
Create Date: 2026-12-01
"""

from alembic import op

revision = "0013_mdr_records"
down_revision = "0012_submissions"
branch_labels = None
depends_on = None

BENEFICIARIES = [f"{reach}_{group}" for reach in ("direct", "indirect") for group in ("women", "girls", "men", "boys")]


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE hazardous_areas
            ADD COLUMN evidence_kind text
                CONSTRAINT ck_hazard_evidence_kind CHECK (evidence_kind IN ('direct', 'indirect')),
            ADD COLUMN evidence text[] CONSTRAINT ck_hazard_evidence
                CHECK (evidence <@ ARRAY['accident', 'visible_device', 'old_records', 'witness', 'other']),
            ADD COLUMN blockages text[] CONSTRAINT ck_hazard_blockages
                CHECK (blockages <@ ARRAY['agriculture', 'roads', 'water', 'housing', 'infrastructure']);
        ALTER TABLE land_release_events
            ADD COLUMN start_date date,
            ADD COLUMN work_status text CONSTRAINT ck_event_work_status
                CHECK (work_status IN ('completed', 'suspended', 'ongoing')),
            ADD COLUMN methods text[] CONSTRAINT ck_event_methods
                CHECK (methods <@ ARRAY['manual', 'mechanical', 'mdd', 'nts', 'ts']),
            ADD COLUMN clearance_depth_cm integer
                CONSTRAINT ck_event_clearance_depth_cm CHECK (clearance_depth_cm >= 0),
            ADD COLUMN land_use text[] CONSTRAINT ck_event_land_use
                CHECK (land_use <@ ARRAY['agriculture', 'housing', 'infrastructure', 'grazing', 'forest', 'other']),
            ADD COLUMN handover_date date,
            ADD COLUMN handover_to text,
            ADD CONSTRAINT ck_event_start_date CHECK (start_date <= date);
        """
    )
    for column in BENEFICIARIES:
        op.execute(f"ALTER TABLE land_release_events ADD COLUMN {column} integer "
                   f"CONSTRAINT ck_event_{column} CHECK ({column} >= 0)")


def downgrade() -> None:
    for column in BENEFICIARIES:
        op.execute(f"ALTER TABLE land_release_events DROP COLUMN {column}")
    op.execute(
        """
        ALTER TABLE land_release_events DROP CONSTRAINT ck_event_start_date, DROP COLUMN start_date,
            DROP COLUMN work_status, DROP COLUMN methods, DROP COLUMN clearance_depth_cm, DROP COLUMN land_use,
            DROP COLUMN handover_date, DROP COLUMN handover_to;
        ALTER TABLE hazardous_areas DROP COLUMN evidence_kind, DROP COLUMN evidence, DROP COLUMN blockages;
        """
    )
