"""Submissions: the reports operators send (a new hazard, a land-release report for a hazard, a batch of
hazards from a file), held out of the ledger until the national centre approves them, and the
history of each one's review (submitted, returned, resubmitted, approved or rejected).

Revision ID: 0012_submissions
Revises: 0011_operator_keys
Create Date: 2026-12-01
"""

from alembic import op

revision = "0012_submissions"
down_revision = "0011_operator_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE submissions (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            state_iso3 varchar(3) NOT NULL REFERENCES states(iso3),
            organisation_id uuid REFERENCES organisations(id),
            kind varchar(10) NOT NULL CONSTRAINT ck_submission_kind CHECK (kind IN ('hazard', 'release', 'batch')),
            status varchar(10) NOT NULL DEFAULT 'submitted'
                CONSTRAINT ck_submission_status CHECK (status IN ('submitted', 'approved', 'rejected', 'returned')),
            hazard_id uuid REFERENCES hazardous_areas(id),
            content jsonb NOT NULL,
            geom geometry(MultiPolygon, 4326),
            area_m2 double precision NOT NULL DEFAULT 0,
            feature_count integer NOT NULL,
            date_of_information date,
            revision integer NOT NULL DEFAULT 1,
            submitted_by text NOT NULL,
            submitted_key_id uuid,
            submitted_at timestamptz NOT NULL DEFAULT now(),
            reviewed_by text,
            reviewed_key_id uuid,
            reviewed_at timestamptz,
            approved_by text,
            approved_at timestamptz,
            comment text,
            applied jsonb,
            CONSTRAINT ck_submission_hazard CHECK ((kind = 'release') = (hazard_id IS NOT NULL)),
            CONSTRAINT ck_submission_comment CHECK (status NOT IN ('rejected', 'returned') OR comment IS NOT NULL)
        );
        CREATE INDEX ix_submissions_state_status ON submissions (state_iso3, status, submitted_at);
        CREATE INDEX ix_submissions_organisation ON submissions (organisation_id);
        CREATE INDEX ix_submissions_geom ON submissions USING gist (geom);
        CREATE TABLE submission_history (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            submission_id uuid NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
            revision integer NOT NULL,
            action varchar(10) NOT NULL
                CONSTRAINT ck_submission_history_action CHECK (action IN ('submit', 'resubmit', 'approve', 'reject',
                                                                          'return')),
            status varchar(10) NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL,
            key_id uuid,
            comment text,
            content jsonb
        );
        CREATE INDEX ix_submission_history_submission ON submission_history (submission_id, id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE submission_history; DROP TABLE submissions")
