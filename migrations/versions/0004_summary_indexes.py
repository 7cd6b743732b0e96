"""Indexes that let the summaries read only index pages (index-only scans), not the wide ledger rows.

A hazard row carries two geometries and an event row one or two, so a scan of either table reads
megabytes per thousand rows. The summaries need a few narrow columns:
- the valid events of a State by date, with what is summed (remaining at a date, release by year,
  the last year's release);
- the valid hazards of a State by recording date, with their class, dates, areas, region and
  contamination (remaining at a date, area added per year);
- the voided hazards (few), whose events the release totals leave out.
An index-only scan still reads the row of every page changed since the last vacuum, and every event
recorded changes a hazard row: both tables are vacuumed after 2% of their rows changed or were
inserted (instead of 20%), which keeps the visibility map, and so the scans, index-only.

Revision ID: 0004_summary_indexes
Revises: 0003_api_keys
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004_summary_indexes"
down_revision = "0003_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE INDEX ix_land_release_events_valid_state_date ON land_release_events (state_iso3, date)
            INCLUDE (hazard_id, kind, released_area_m2, ap_mines, improvised_ap_mines, av_mines, other_eo)
            WHERE voided_at IS NULL;
        CREATE INDEX ix_hazardous_areas_valid_state_recorded_on ON hazardous_areas (state_iso3, recorded_on)
            INCLUDE (id, released_on, reclassified_on, classification, parent_id, baseline_area_m2, remaining_area_m2,
                     region, contamination)
            WHERE voided_at IS NULL;
        CREATE INDEX ix_hazardous_areas_voided ON hazardous_areas (id) WHERE voided_at IS NOT NULL;
        ALTER TABLE hazardous_areas SET (autovacuum_vacuum_scale_factor = 0.02,
                                         autovacuum_vacuum_insert_scale_factor = 0.02);
        ALTER TABLE land_release_events SET (autovacuum_vacuum_scale_factor = 0.02,
                                             autovacuum_vacuum_insert_scale_factor = 0.02);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE land_release_events RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
        ALTER TABLE hazardous_areas RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
        DROP INDEX ix_hazardous_areas_voided;
        DROP INDEX ix_hazardous_areas_valid_state_recorded_on;
        DROP INDEX ix_land_release_events_valid_state_date;
        """
    )
