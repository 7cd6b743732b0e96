"""The `operator` role: a key bound to one organisation of a State's register (and so to that State).

Revision ID: 0011_operator_keys
Revises: 0010_organisations
Create Date: 2026-12-01
"""

from alembic import op

revision = "0011_operator_keys"
down_revision = "0010_organisations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_keys ADD COLUMN organisation_id uuid REFERENCES organisations(id);
        ALTER TABLE api_keys DROP CONSTRAINT ck_api_key_role, DROP CONSTRAINT ck_api_key_state;
        ALTER TABLE api_keys
            ADD CONSTRAINT ck_api_key_role CHECK (role IN ('editor', 'viewer', 'committee', 'admin', 'operator')),
            ADD CONSTRAINT ck_api_key_state
                CHECK ((role IN ('editor', 'viewer', 'operator')) = (state_iso3 IS NOT NULL)),
            ADD CONSTRAINT ck_api_key_organisation CHECK ((role = 'operator') = (organisation_id IS NOT NULL));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM api_keys WHERE role = 'operator';
        ALTER TABLE api_keys DROP CONSTRAINT ck_api_key_organisation, DROP CONSTRAINT ck_api_key_role,
            DROP CONSTRAINT ck_api_key_state;
        ALTER TABLE api_keys DROP COLUMN organisation_id;
        ALTER TABLE api_keys
            ADD CONSTRAINT ck_api_key_role CHECK (role IN ('editor', 'viewer', 'committee', 'admin')),
            ADD CONSTRAINT ck_api_key_state CHECK ((role IN ('editor', 'viewer')) = (state_iso3 IS NOT NULL));
        """
    )
