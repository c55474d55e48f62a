"""Operations: who owns each exception kind, an audit trail of every change ops make, fast paging.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
-- Owning team per exception kind, editable without a deployment.
create table sitoo_erp.exception_owner (
    kind       text primary key,
    owner      text not null,
    updated_by text not null default 'seed',
    updated_at timestamptz not null default now()
);
insert into sitoo_erp.exception_owner (kind, owner) values
    ('malformed_payload', 'data_engineering'), ('unknown_sku', 'retail_ops'), ('inactive_item', 'retail_ops'),
    ('missing_mapping', 'retail_ops'), ('orphaned_return', 'retail_ops'), ('tender_mismatch', 'finance'),
    ('tax_beyond_tolerance', 'finance'), ('erp_rejected', 'finance'), ('stalled', 'retail_ops'),
    ('stock_drift', 'retail_ops')
on conflict (kind) do nothing;

-- Every change a person makes (mappings, exception decisions): who, when, before -> after.
create table sitoo_erp.audit_log (
    audit_id   bigserial primary key,
    entity     text not null,          -- e.g. map_sku_item, exception
    entity_key text not null,
    action     text not null,          -- insert, update, delete, ignore, resolve
    before     jsonb,
    after      jsonb,
    actor      text not null,
    source     text not null,          -- ui, replay_dag, api
    note       text,
    changed_at timestamptz not null default now()
);
create index audit_log_entity_idx on sitoo_erp.audit_log (entity, entity_key, changed_at desc);
create index audit_log_changed_idx on sitoo_erp.audit_log (changed_at desc);

alter table sitoo_erp.exception add column updated_by text;

-- Operational alerts already sent (rate jumps), so one jump is one e-mail, not one per run.
create table sitoo_erp.ops_alert (
    alert_key  text primary key,
    detail     jsonb not null,
    sent_at    timestamptz not null default now()
);

-- The exception queue pages by status and any of kind / store / owner, oldest first.
create index exception_open_kind_idx on sitoo_erp.exception (kind, first_seen_at, exception_id)
    where status = 'open';
create index exception_open_store_idx on sitoo_erp.exception (store_externalid, first_seen_at, exception_id)
    where status = 'open';
create index exception_open_owner_idx on sitoo_erp.exception (owner, first_seen_at, exception_id)
    where status = 'open';
create index exception_open_age_idx on sitoo_erp.exception (first_seen_at, exception_id) where status = 'open';
create index exception_sku_idx on sitoo_erp.exception (sku) where sku is not null;
-- This month's tax variance on the page.
create index receipt_tax_variance_recorded_idx on sitoo_erp.receipt_tax_variance (recorded_at);
"""

DOWNGRADE = """
drop index if exists sitoo_erp.receipt_tax_variance_recorded_idx, sitoo_erp.exception_sku_idx, sitoo_erp.exception_open_age_idx,
    sitoo_erp.exception_open_owner_idx, sitoo_erp.exception_open_store_idx, sitoo_erp.exception_open_kind_idx;
alter table sitoo_erp.exception drop column if exists updated_by;
drop table if exists sitoo_erp.ops_alert, sitoo_erp.audit_log, sitoo_erp.exception_owner;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
