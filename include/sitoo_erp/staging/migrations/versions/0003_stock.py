"""Daily stock: staged store movements, stock snapshots of both systems, drift history.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
-- The account an inventory adjustment posts to is a document-level mapping like the others.
alter table sitoo_erp.map_document_item drop constraint if exists map_document_item_purpose_check;
alter table sitoo_erp.map_document_item add constraint map_document_item_purpose_check
    check (purpose in ('loyalty_discount', 'cash_rounding', 'gift_card', 'stock_adjustment_account'));

-- One row per Sitoo warehouse transaction line that is not a sale or refund (those post hourly).
-- status: pending (not in the ERP yet) | posted (in adjustment external_id) | quarantined (exception open).
create table sitoo_erp.stock_movement (
    warehousetransactionid bigint  not null,
    line_no                integer not null,
    warehouseid            integer not null,
    store_externalid       text,
    business_date          date    not null,
    datecreated            timestamptz not null,
    transactiontype        integer not null,
    reasoncode             text,
    sku                    text    not null,
    quantity               numeric(14, 3) not null,
    money_value            numeric(14, 2),
    status                 text not null default 'pending'
                           check (status in ('pending', 'posted', 'quarantined')),
    status_reason          text,
    external_id            text,
    staged_at              timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    primary key (warehousetransactionid, line_no)
);
create index stock_movement_store_day_idx on sitoo_erp.stock_movement (store_externalid, business_date);
create index stock_movement_open_idx on sitoo_erp.stock_movement (status) where status <> 'posted';

-- One snapshot per business date (a re-run replaces it); the rows below hang off it.
create table sitoo_erp.stock_snapshot (
    snapshot_id    bigserial primary key,
    business_date  date not null unique,
    run_id         text,
    taken_at       timestamptz not null default now(),
    compared_at    timestamptz,
    sitoo_rows     integer not null default 0,
    erp_rows       integer not null default 0,
    drift_rows     integer not null default 0,
    locations      integer not null default 0
);

-- Raw sides (COPY-loaded, streamed): kept for ``snapshot_retention_days``, the drift for ever.
create table sitoo_erp.stock_snapshot_sitoo (
    snapshot_id      bigint  not null references sitoo_erp.stock_snapshot (snapshot_id) on delete cascade,
    warehouseid      integer not null,
    store_externalid text,
    location_id      text,
    sku              text    not null,
    on_hand          numeric(14, 3) not null,
    reserved         numeric(14, 3) not null default 0,
    available        numeric(14, 3),
    money_total      numeric(16, 2)
);
create table sitoo_erp.stock_snapshot_erp (
    snapshot_id bigint not null references sitoo_erp.stock_snapshot (snapshot_id) on delete cascade,
    location_id text   not null,
    item_id     text   not null,
    sku         text   not null,
    on_hand     numeric(14, 3) not null,
    available   numeric(14, 3)
);

-- Drift per (snapshot, location, SKU): only rows that differ, are missing on a side or are negative.
create table sitoo_erp.stock_drift (
    snapshot_id        bigint not null references sitoo_erp.stock_snapshot (snapshot_id) on delete cascade,
    business_date      date   not null,
    store_externalid   text,
    location_id        text   not null,
    sku                text   not null,
    item_id            text,
    sitoo_on_hand      numeric(14, 3),
    erp_on_hand        numeric(14, 3),
    unposted_sales     numeric(14, 3) not null default 0,
    unposted_movements numeric(14, 3) not null default 0,
    expected_erp       numeric(14, 3),
    drift_units        numeric(14, 3) not null,
    unit_cost          numeric(14, 4),
    drift_value        numeric(16, 2),
    status             text not null
                       check (status in ('drift', 'missing_in_erp', 'missing_in_sitoo', 'negative', 'match')),
    primary key (snapshot_id, location_id, sku)
);
create index stock_drift_date_idx on sitoo_erp.stock_drift (business_date);

-- Per-location totals of every snapshot (the trend; small, never purged).
create table sitoo_erp.stock_drift_location (
    snapshot_id       bigint not null references sitoo_erp.stock_snapshot (snapshot_id) on delete cascade,
    business_date     date   not null,
    store_externalid  text,
    location_id       text   not null,
    skus_compared     integer not null,
    skus_drifting     integer not null,
    missing_in_erp    integer not null,
    missing_in_sitoo  integer not null,
    negative          integer not null,
    drift_units_abs   numeric(16, 3) not null,
    drift_value_abs   numeric(18, 2) not null,
    drift_value_net   numeric(18, 2) not null,
    primary key (snapshot_id, location_id)
);
"""

DOWNGRADE = """
drop table if exists sitoo_erp.stock_drift_location, sitoo_erp.stock_drift, sitoo_erp.stock_snapshot_erp,
    sitoo_erp.stock_snapshot_sitoo, sitoo_erp.stock_snapshot, sitoo_erp.stock_movement;
delete from sitoo_erp.map_document_item where purpose = 'stock_adjustment_account';
alter table sitoo_erp.map_document_item drop constraint if exists map_document_item_purpose_check;
alter table sitoo_erp.map_document_item add constraint map_document_item_purpose_check
    check (purpose in ('loyalty_discount', 'cash_rounding', 'gift_card'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
