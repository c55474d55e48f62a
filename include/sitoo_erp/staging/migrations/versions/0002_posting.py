"""Posting: the ready batch view, per-rate tax variance, gate runs, configurable owners.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
-- The batch the quality gate validates and the posting step posts: finalised, classified,
-- not yet in the ERP. Everything the gate reads is scoped through this view.
create view sitoo_erp.ready_receipt as
select o.*
from sitoo_erp.sitoo_order o
join sitoo_erp.order_state s using (orderid)
where s.state = 'held' and s.reason = 'ready to post';

-- Invariant 4: POS tax is the truth; what the ERP would have computed per line is the variance.
create table sitoo_erp.receipt_tax_variance (
    orderid      bigint not null,
    vat_rate     numeric(7, 3) not null,
    pos_tax      numeric(14, 2) not null,
    erp_line_tax numeric(14, 2) not null,
    variance     numeric(14, 2) not null,
    recorded_at  timestamptz not null default now(),
    primary key (orderid, vat_rate)
);

-- One row per gate run: what was checked, what failed, per rule (history for ops and finance).
create table sitoo_erp.gate_run (
    gate_run_id     bigserial primary key,
    suite           text not null,
    dag_id          text,
    run_id          text,
    batch_size      integer not null,
    failed_receipts integer not null,
    success         boolean not null,
    systemic        boolean not null default false,
    result          jsonb not null,
    ran_at          timestamptz not null default now()
);

create index order_state_reason_idx on sitoo_erp.order_state (state, reason);
"""

DOWNGRADE = """
drop table if exists sitoo_erp.gate_run, sitoo_erp.receipt_tax_variance;
drop view if exists sitoo_erp.ready_receipt;
drop index if exists sitoo_erp.order_state_reason_idx;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
