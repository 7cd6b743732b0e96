"""The boundary tables (0008) are indexed by their feature ids, as the OGC collections make them.

The `countries` and `provinces` collections give each boundary the id `md5('<table>:' || <key>)::uuid`
(app.ogc.collections, a name-based UUID that stays the same across reloads of the boundaries). A vector
tile draws the features it keeps by reading them again by id (app.ogc.tiles): without these indexes each
of the few hundred features a world tile keeps was a scan of every province, the tile 8.7 s instead of
0.26 s. The expression must stay the one app.ogc.collections writes, or the planner will not use it.

Revision ID: 0022_boundary_feature_ids
Revises: 0021_summary_index_province
Create Date: 2026-12-02
"""

from alembic import op

revision = "0022_boundary_feature_ids"
down_revision = "0021_summary_index_province"
branch_labels = None
depends_on = None

_BOUNDARIES = (("countries", "iso3"), ("provinces", "code"))


def upgrade() -> None:
    for table, key in _BOUNDARIES:
        op.execute(f"CREATE UNIQUE INDEX ix_{table}_feature_id ON {table} ((md5('{table}:' || {key})::uuid))")


def downgrade() -> None:
    for table, _ in _BOUNDARIES:
        op.execute(f"DROP INDEX ix_{table}_feature_id")
