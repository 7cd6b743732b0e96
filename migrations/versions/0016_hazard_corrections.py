"""Corrections of a hazard (app/ledger/corrections.py): each correction of a hazard's declared attributes or
of its polygon, with who made it, when and why, and the values before and after (the polygons as they were
recorded before and after it). The hazard's row holds the corrected values; this table keeps what they replaced.

Revision ID: 0016_hazard_corrections
Revises: 0015_robust_grid_overlay
Create Date: 2026-12-02
"""

from alembic import op

revision = "0016_hazard_corrections"
down_revision = "0015_robust_grid_overlay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE hazard_corrections (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            hazard_id uuid NOT NULL REFERENCES hazardous_areas(id),
            state_iso3 varchar(3) NOT NULL REFERENCES states(iso3),
            at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL,
            key_id uuid,
            reason text NOT NULL,
            before jsonb NOT NULL,
            after jsonb NOT NULL,
            before_geom geometry(MultiPolygon, 4326),
            after_geom geometry(MultiPolygon, 4326),
            submission_id uuid REFERENCES submissions(id)
        );
        CREATE INDEX ix_hazard_corrections_hazard ON hazard_corrections (hazard_id, at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE hazard_corrections")
