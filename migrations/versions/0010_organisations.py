"""The register of organisations of each State (operators accredited by the national authority), and the
organisation of each event and hazard as an id from it. The free-text `organisation` of the events
already stored becomes register entries (kind `other`, one per State and name, names compared without
case and surrounding spaces); the text column stays as the register name, readable in every output.

Revision ID: 0010_organisations
Revises: 0009_dated_treaty_facts
Create Date: 2026-12-01
"""

from alembic import op

revision = "0010_organisations"
down_revision = "0009_dated_treaty_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE organisations (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            state_iso3 varchar(3) NOT NULL REFERENCES states(iso3),
            name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 500),
            short_name text CHECK (length(btrim(short_name)) BETWEEN 1 AND 50),
            kind varchar(20) NOT NULL DEFAULT 'other' CONSTRAINT ck_organisation_kind
                CHECK (kind IN ('ngo', 'commercial', 'military', 'national_authority', 'other')),
            accredited_from date,
            accredited_to date,
            contact text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ck_organisation_accreditation CHECK (accredited_to >= accredited_from)
        );
        CREATE UNIQUE INDEX uq_organisation_name ON organisations (state_iso3, lower(btrim(name)));
        CREATE UNIQUE INDEX uq_organisation_short_name ON organisations (state_iso3, lower(btrim(short_name)));
        ALTER TABLE land_release_events ADD COLUMN organisation_id uuid REFERENCES organisations(id);
        ALTER TABLE hazardous_areas ADD COLUMN organisation_id uuid REFERENCES organisations(id);
        CREATE INDEX ix_land_release_events_organisation_id ON land_release_events (organisation_id);
        CREATE INDEX ix_hazardous_areas_organisation_id ON hazardous_areas (organisation_id);

        INSERT INTO organisations (state_iso3, name, kind)
        SELECT state_iso3, min(btrim(organisation)), 'other' FROM land_release_events
        WHERE btrim(organisation) <> '' GROUP BY state_iso3, lower(btrim(organisation));
        UPDATE land_release_events e SET organisation_id = o.id, organisation = o.name
        FROM organisations o
        WHERE o.state_iso3 = e.state_iso3 AND lower(btrim(o.name)) = lower(btrim(e.organisation));
        UPDATE land_release_events SET organisation = NULL WHERE btrim(organisation) = '';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE hazardous_areas DROP COLUMN organisation_id;
        ALTER TABLE land_release_events DROP COLUMN organisation_id;
        DROP TABLE organisations;
        """
    )
