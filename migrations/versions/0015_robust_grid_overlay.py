"""Overlays on the grid that do not fail: `grid_intersection(a, b, grid)` and `grid_difference(a, b, grid)`
are `ST_Intersection(a, b, grid)` and `ST_Difference(a, b, grid)`, bit for bit, wherever GEOS computes
those. Where GEOS's snap-rounding overlay raises instead (a TopologyException such as "side location
conflict", seen when an event's corner lies exactly on the hazard's edge), the overlay is computed
without the grid, its polygonal part kept and then snapped to the grid (`ST_ReducePrecision`): the
same land within a grid cell, valid, on the grid. app/geometry.py says where they are used.

Revision ID: 0015_robust_grid_overlay
Revises: 0014_event_devices
Create Date: 2026-12-02
"""

from alembic import op

revision = "0015_robust_grid_overlay"
down_revision = "0014_event_devices"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE FUNCTION grid_{name}(a geometry, b geometry, grid double precision) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN ST_{overlay}(a, b, grid);
EXCEPTION WHEN internal_error THEN  -- a GEOS TopologyException in the overlay on the grid
    RETURN ST_ReducePrecision(ST_CollectionExtract(ST_{overlay}(a, b), 3), grid);
END
$$
"""


def upgrade() -> None:
    for name, overlay in (("intersection", "Intersection"), ("difference", "Difference")):
        op.execute(_FUNCTION.format(name=name, overlay=overlay))


def downgrade() -> None:
    op.execute("DROP FUNCTION grid_difference(geometry, geometry, double precision)")
    op.execute("DROP FUNCTION grid_intersection(geometry, geometry, double precision)")
