"""Monthly reconciliation: Z-reports, reconciliation runs, cells (store x day x tax code) and lines.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
-- Z-reports as the tills closed them (one per register per Z period), swept with the period.
create table sitoo_erp.sitoo_z_report (
    registerid        text    not null,
    zreportid         integer not null,
    store_externalid  text,
    business_date     date    not null,
    dateopened        timestamptz,
    datecreated       timestamptz not null,
    sales_gross       numeric(14, 2) not null,
    sales_net         numeric(14, 2) not null,
    num_sales         integer not null,
    refund_gross      numeric(14, 2) not null,
    refund_net        numeric(14, 2) not null,
    num_refunds       integer not null,
    payload           jsonb not null,
    fetched_at        timestamptz not null default now(),
    primary key (registerid, zreportid)
);
create index sitoo_z_report_day_idx on sitoo_erp.sitoo_z_report (business_date, store_externalid);

-- One row per reconciliation (monthly or finance's ad-hoc range): history, comparable month to month.
create table sitoo_erp.reconciliation_run (
    recon_run_id   bigserial primary key,
    dag_id         text,
    run_id         text,
    date_from      date not null,
    date_to        date not null,
    stores         text[],
    status         text not null default 'running'
                   check (status in ('running', 'compared', 'passed', 'failed')),
    started_at     timestamptz not null default now(),
    compared_at    timestamptz,
    gated_at       timestamptz,
    summary        jsonb not null default '{}'::jsonb,
    gate_result    jsonb,
    report_html    text,
    report_csv     text,
    report_path    text
);
create index reconciliation_run_period_idx on sitoo_erp.reconciliation_run (date_from, date_to);

-- Totals per store x business day x tax code, POS sign (sales +, returns -).
create table sitoo_erp.reconciliation_cell (
    recon_run_id     bigint not null references sitoo_erp.reconciliation_run (recon_run_id) on delete cascade,
    store_externalid text   not null,
    business_date    date   not null,
    tax_code_id      text   not null,
    vat_rate         numeric(7, 3),
    sitoo_receipts   integer not null default 0,
    sitoo_net        numeric(16, 2) not null default 0,
    sitoo_tax        numeric(16, 2) not null default 0,
    sitoo_returns    numeric(16, 2) not null default 0,
    erp_docs         integer not null default 0,
    erp_net          numeric(16, 2) not null default 0,
    erp_tax          numeric(16, 2) not null default 0,
    primary key (recon_run_id, store_externalid, business_date, tax_code_id)
);

-- Every difference, classified: class, cause, owner, explained or not, the amounts (Sitoo - ERP).
create table sitoo_erp.reconciliation_line (
    line_id          bigserial primary key,
    recon_run_id     bigint not null references sitoo_erp.reconciliation_run (recon_run_id) on delete cascade,
    class            text   not null check (class in ('missing_in_erp', 'extra_in_erp', 'duplicate_in_erp',
                              'amount_mismatch', 'tax_variance', 'zreport_mismatch', 'unexplained_residual')),
    cause            text   not null,
    explained        boolean not null,
    owner            text   not null,
    store_externalid text,
    business_date    date,
    orderid          bigint,
    receipt_id       text,
    external_id      text,
    erp_id           text,
    registerid       text,
    sitoo_amount     numeric(16, 2),
    erp_amount       numeric(16, 2),
    diff_net         numeric(16, 2) not null default 0,
    diff_tax         numeric(16, 2) not null default 0,
    detail           text   not null
);
create index reconciliation_line_run_idx on sitoo_erp.reconciliation_line (recon_run_id, class, explained);
"""

DOWNGRADE = """
drop table if exists sitoo_erp.reconciliation_line, sitoo_erp.reconciliation_cell,
    sitoo_erp.reconciliation_run, sitoo_erp.sitoo_z_report cascade;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
