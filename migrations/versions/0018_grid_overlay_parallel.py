"""The grid overlays of 0015 are PARALLEL UNSAFE: their exception block (the fallback where GEOS raises)
is a subtransaction, which PostgreSQL cannot start in a parallel query ("cannot start subtransactions
during a parallel operation", in a worker and in the leader alike). Declared PARALLEL SAFE, any SELECT the
planner gave a parallel plan (a large State's overlaps, a whole-table read of released pieces) failed
instead of running; unsafe, such a query runs in one process.

Revision ID: 0018_grid_overlay_parallel
Revises: 0015_robust_grid_overlay
Create Date: 2026-12-02
"""

from alembic import op

revision = "0018_grid_overlay_parallel"
down_revision = "0015_robust_grid_overlay"
branch_labels = None
depends_on = None

_FUNCTIONS = ("grid_intersection", "grid_difference")


def upgrade() -> None:
    for name in _FUNCTIONS:
        op.execute(f"ALTER FUNCTION {name}(geometry, geometry, double precision) PARALLEL UNSAFE")


def downgrade() -> None:
    for name in _FUNCTIONS:
        op.execute(f"ALTER FUNCTION {name}(geometry, geometry, double precision) PARALLEL SAFE")
