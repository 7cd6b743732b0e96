"""The explosive ordnance a land-release report found, one by one (GICHD Minimum Data Requirements):
category, model, quantity, disposal, location. The four counters of the events stored before become
devices (one per counted kind: AP_MINE, IMPROVISED_AP_MINE, AV_MINE, and OTHER for other explosive
ordnance); the counters stay on the events as the devices' totals.

Revision ID: 0014_event_devices
Revises: 0013_mdr_records
Create Date: 2026-12-01
"""

from alembic import op

revision = "0014_event_devices"
down_revision = "0013_mdr_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE event_devices (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id uuid NOT NULL REFERENCES land_release_events(id) ON DELETE CASCADE,
            state_iso3 varchar(3) NOT NULL REFERENCES states(iso3),
            category varchar(20) NOT NULL CONSTRAINT ck_device_category CHECK (category IN
                ('AP_MINE', 'IMPROVISED_AP_MINE', 'AV_MINE', 'UXO', 'CLUSTER_SUBMUNITION', 'OTHER')),
            model text,
            quantity integer NOT NULL CONSTRAINT ck_device_quantity CHECK (quantity > 0),
            disposal varchar(20) CONSTRAINT ck_device_disposal CHECK (disposal IN ('destroyed_in_situ', 'removed')),
            location geometry(Point, 4326)
        );
        CREATE INDEX ix_event_devices_event ON event_devices (event_id);
        CREATE INDEX ix_event_devices_state ON event_devices (state_iso3, category);
        INSERT INTO event_devices (event_id, state_iso3, category, quantity)
        SELECT e.id, e.state_iso3, c.category, c.quantity
        FROM land_release_events e
        CROSS JOIN LATERAL (VALUES (1, 'AP_MINE', e.ap_mines), (2, 'IMPROVISED_AP_MINE', e.improvised_ap_mines),
                                   (3, 'AV_MINE', e.av_mines), (4, 'OTHER', e.other_eo)) AS c(ord, category, quantity)
        WHERE c.quantity > 0
        ORDER BY e.arrival, c.ord;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE event_devices")
