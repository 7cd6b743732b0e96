"""API keys: who may read and write what. Only a SHA-256 hash of each key is stored.

Revision ID: 0003_api_keys
Revises: 0002_article5_reference
Create Date: 2026-11-23
"""

from alembic import op

revision = "0003_api_keys"
down_revision = "0002_article5_reference"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            role varchar(10) NOT NULL
                CONSTRAINT ck_api_key_role CHECK (role IN ('editor', 'viewer', 'committee', 'admin')),
            state_iso3 varchar(3) REFERENCES states(iso3),
            prefix varchar(16) NOT NULL,
            key_hash char(64) NOT NULL CONSTRAINT uq_api_key_hash UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz,
            CONSTRAINT ck_api_key_state CHECK ((role IN ('editor', 'viewer')) = (state_iso3 IS NOT NULL))
        );
        CREATE INDEX ix_api_keys_state_iso3 ON api_keys (state_iso3);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
