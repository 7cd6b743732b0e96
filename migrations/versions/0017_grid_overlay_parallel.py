"""The grid overlays of 0015 are PARALLEL UNSAFE: their exception block (the fallback where GEOS raises)
is a subtransaction, which PostgreSQL cannot start in a parallel query ("cannot start subtransactions
during a parallel operation", in a worker and in the leader alike). Declared PARALLEL SAFE, any SELECT the
planner gave a parallel plan (a large State's overlaps, a whole-table read of released pieces) failed
instead of running; unsafe, such a query runs in one process.

Revision ID: 0017_grid_overlay_parallel
Revises: 0016_hazard_corrections
Create Date: 2026-12-02
"""

from alembic import op

revision = "0017_grid_overlay_parallel"
down_revision = "0016_hazard_corrections"
branch_labels = None
depends_on = None

_FUNCTIONS = ("grid_intersection", "grid_difference")


def upgrade() -> None:
    for name in _FUNCTIONS:
        op.execute(f"ALTER FUNCTION {name}(geometry, geometry, double precision) PARALLEL UNSAFE")


def downgrade() -> None:
    for name in _FUNCTIONS:
        op.execute(f"ALTER FUNCTION {name}(geometry, geometry, double precision) PARALLEL SAFE")
