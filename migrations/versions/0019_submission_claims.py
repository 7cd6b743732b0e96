"""What a land-release report claims of its hazard, stored with the report (app.submissions): the land of its
hazard, as it remains, that the report's polygons cover (`claimed_m2`), stamped with a digest of everything the
measure reads (`claimed_digest`: the measure, the report's polygons, the hazard's remaining geometry).

The backlog of the summaries and the `would_release_m2` of the pending submissions measured that intersection
for every pending report on every read (~0.3-0.7 ms each: 112 ms of the overview's 149 ms at 500 pending, on
the small bench database); they now take the stored figure while its stamp is the digest of now and measure
again only where it is not (the hazard changed since). The pending reports are measured here; the others are
never read (a report's claim is measured again when it is resubmitted).

Revision ID: 0019_submission_claims
Revises: 0018_province_lookup
Create Date: 2026-12-02
"""

from alembic import op

revision = "0019_submission_claims"
down_revision = "0018_province_lookup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from app.layers import PENDING_STATUSES
    from app.submissions.book import sql_claim

    op.execute("ALTER TABLE submissions ADD COLUMN claimed_m2 double precision, ADD COLUMN claimed_digest uuid")
    statuses = ", ".join(f"'{s}'" for s in PENDING_STATUSES)
    op.execute(
        f"""
        UPDATE submissions s SET (claimed_m2, claimed_digest) = (
            SELECT {sql_claim('s.geom', 'h.remaining_geom')} FROM hazardous_areas h WHERE h.id = s.hazard_id)
        WHERE s.kind = 'release' AND s.status IN ({statuses})
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE submissions DROP COLUMN claimed_digest, DROP COLUMN claimed_m2")
