"""Concurrent runs: which gate validated a receipt, which causes were alerted (dedupe in the DB).

Revision ID: 0011
Revises: 0007
"""

from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- The gate run that validated this receipt's current content (null: not validated since it
        -- was last staged or quarantined). Posting posts only validated receipts, whichever run's
        -- classify put them back in the ready batch.
        alter table sitoo_erp.order_state add column gate_run_id bigint;

        -- When the alert e-mail announced this cause: one e-mail per new cause, however many runs
        -- see it at once. Causes already open at upgrade time were announced before.
        alter table sitoo_erp.exception add column alerted_at timestamptz;
        update sitoo_erp.exception set alerted_at = first_seen_at
         where status = 'open' and starts_with(rule, 'gx:');

        -- Causes of a systemic stop already e-mailed (rule + key); cleared when a gate run is not
        -- systemic, so a stop that comes back is news again.
        create table sitoo_erp.systemic_alert (
            cause        text primary key,
            gate_run_id  bigint,
            alerted_at   timestamptz not null default now()
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table if exists sitoo_erp.systemic_alert;
        alter table sitoo_erp.exception drop column if exists alerted_at;
        alter table sitoo_erp.order_state drop column if exists gate_run_id;
        """
    )
