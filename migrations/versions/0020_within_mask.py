"""`covered_by_or_false(a, b)`: `ST_CoveredBy(a, b)` where GEOS can tell, false where its relate raises (a
TopologyException such as "side location conflict", seen where an event's corner lies exactly on the hazard's
edge). The ledger's sliver rule (app/geometry.py, `sql_without_slivers`) keeps a difference that lies within
its mask as it is and overlays only the others with the mask: a false here only takes the longer way, to the
same result.

Measured on the bench database of `bench.measure_history_import` (8,000 events against their hazards, the
machine shared): the overlay of each difference with its mask took about 0.16-0.7 ms an event, this test
about 0.03-0.08 ms; 7,991 of the 8,000 differences lie within their mask.

Revision ID: 0020_within_mask
Revises: 0019_submission_claims
Create Date: 2026-12-02
"""

from alembic import op

revision = "0020_within_mask"
down_revision = "0019_submission_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PARALLEL UNSAFE as the grid overlays (0017): the exception block is a subtransaction
    op.execute("""
        CREATE FUNCTION covered_by_or_false(a geometry, b geometry) RETURNS boolean
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE AS $$
        BEGIN
            RETURN ST_CoveredBy(a, b);
        EXCEPTION WHEN internal_error THEN  -- a GEOS TopologyException in the relate
            RETURN false;
        END
        $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION covered_by_or_false(geometry, geometry)")
