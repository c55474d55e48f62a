"""Staging baseline: raw payloads, typed receipts, state ledger, mappings, exceptions, posting log.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
-- Every Sitoo order ever fetched, exactly as the API returned it (the audit trail).
create table sitoo_erp.sitoo_order_raw (
    orderid        bigint primary key,
    payload        jsonb       not null,
    payload_sha256 text        not null,
    first_seen_at  timestamptz not null default now(),
    fetched_at     timestamptz not null default now()
);

-- Typed receipt header, parsed from the payload (money in numeric, never float).
create table sitoo_erp.sitoo_order (
    orderid           bigint primary key references sitoo_erp.sitoo_order_raw (orderid),
    eshopid           integer,
    receipt_id        text,
    store_externalid  text,
    store_timezone    text,
    registerid        text,
    warehouseid       integer,
    orderdate         timestamptz not null,
    business_date     date,
    orderstateid      smallint    not null,
    paymentstateid    smallint    not null,
    ordertypeid       smallint    not null,
    creditorderid     bigint,
    refund_of_orderid bigint,
    exchange_orderid  bigint,
    currencycode      text,
    money_net         numeric(14, 2) not null,
    money_vat         numeric(14, 2) not null,
    money_roundoff    numeric(14, 2) not null,
    money_gross       numeric(14, 2) not null,
    loyalty_discount  numeric(14, 2) not null default 0,
    additionaldata    jsonb not null default '{}'::jsonb,
    staged_at         timestamptz not null default now()
);
create index sitoo_order_orderdate_idx on sitoo_erp.sitoo_order (orderdate);
create index sitoo_order_store_day_idx on sitoo_erp.sitoo_order (store_externalid, business_date);
create index sitoo_order_credit_idx on sitoo_erp.sitoo_order (creditorderid) where creditorderid is not null;

create table sitoo_erp.sitoo_order_row (
    orderid             bigint  not null references sitoo_erp.sitoo_order (orderid) on delete cascade,
    orderitemid         integer not null,
    orderitemtype       integer,
    productid           bigint,
    sku                 text,
    productname         text,
    quantity            numeric(14, 3) not null,
    vat_rate            numeric(7, 3)  not null,
    net_unit_price      numeric(14, 2),
    original_unit_price numeric(14, 2),
    discount_unit       numeric(14, 2),
    money_net           numeric(14, 2) not null,
    money_vat           numeric(14, 2) not null,
    vouchercode         text,
    giftcard_number     text,
    original_orderitemid integer,
    additionaldata      jsonb not null default '{}'::jsonb,
    primary key (orderid, orderitemid)
);
create index sitoo_order_row_sku_idx on sitoo_erp.sitoo_order_row (sku);

create table sitoo_erp.sitoo_payment (
    orderid         bigint  not null references sitoo_erp.sitoo_order (orderid) on delete cascade,
    payment_index   integer not null,
    name            text    not null,
    amount          numeric(14, 2) not null,
    payment_method  text,
    giftcard_number text,
    is_virtual      boolean not null default false,
    additionaldata  jsonb not null default '{}'::jsonb,
    primary key (orderid, payment_index)
);

-- Invariant 1: every order seen is in exactly one state. seen = posted + held + quarantined + excluded.
create table sitoo_erp.order_state (
    orderid          bigint primary key references sitoo_erp.sitoo_order_raw (orderid),
    state            text not null check (state in ('posted', 'held', 'quarantined', 'excluded')),
    reason           text not null,
    store_externalid text,
    receipt_id       text,
    orderdate        timestamptz,
    first_seen_at    timestamptz not null default now(),
    held_since       timestamptz,
    state_changed_at timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index order_state_state_idx on sitoo_erp.order_state (state);

-- Extraction bookmarks, e.g. the orderid high-water mark for late (offline) receipts.
create table sitoo_erp.extract_watermark (
    stream     text primary key,
    value      bigint not null,
    updated_at timestamptz not null default now()
);

-- Mappings ops can edit without a deployment.
create table sitoo_erp.map_store_location (
    store_externalid text primary key,
    location_id      text not null,
    customer_id      text not null,
    subsidiary_id    text not null,
    timezone         text not null default 'Europe/London',
    updated_by       text not null default 'seed',
    updated_at       timestamptz not null default now()
);
create table sitoo_erp.map_sku_item (
    sku        text primary key,
    item_id    text not null,
    updated_by text not null default 'seed',
    updated_at timestamptz not null default now()
);
create table sitoo_erp.map_tender_payment (
    tender            text primary key,
    payment_method_id text not null,
    is_gift_card      boolean not null default false,
    updated_by        text not null default 'seed',
    updated_at        timestamptz not null default now()
);
create table sitoo_erp.map_vat_tax_code (
    vat_rate    numeric(7, 3) primary key,
    tax_code_id text not null,
    tax_type_id text not null,
    updated_by  text not null default 'seed',
    updated_at  timestamptz not null default now()
);
-- Document-level items: loyalty discount, cash rounding, gift card liability.
create table sitoo_erp.map_document_item (
    purpose    text primary key check (purpose in ('loyalty_discount', 'cash_rounding', 'gift_card')),
    item_id    text not null,
    updated_by text not null default 'seed',
    updated_at timestamptz not null default now()
);
-- Cached ERP item master (SuiteQL), refreshed by the mapping step.
create table sitoo_erp.erp_item (
    sku        text primary key,
    item_id    text not null,
    is_inactive boolean not null default false,
    fetched_at timestamptz not null default now()
);

-- Exceptions: one open row per cause (kind + subject), never one per run.
create table sitoo_erp.exception (
    exception_id     bigserial primary key,
    kind             text not null,
    subject_key      text not null,
    orderid          bigint,
    store_externalid text,
    sku              text,
    field            text,
    rule             text not null,
    message          text not null,
    owner            text not null default 'retail_ops',
    status           text not null default 'open' check (status in ('open', 'resolved', 'ignored')),
    occurrences      integer not null default 1,
    first_seen_at    timestamptz not null default now(),
    last_seen_at     timestamptz not null default now(),
    resolved_at      timestamptz,
    resolution_note  text
);
create unique index exception_open_cause_uq on sitoo_erp.exception (kind, subject_key) where status = 'open';
create index exception_status_kind_idx on sitoo_erp.exception (status, kind, first_seen_at);
create index exception_orderid_idx on sitoo_erp.exception (orderid);

-- Invariant 2: one row per ERP document this integration owns, written in the step the ERP call succeeds.
create table sitoo_erp.posting_log (
    external_id    text primary key,
    orderid        bigint,
    document_type  text not null,
    erp_id         text not null,
    tran_date      date,
    store_externalid text,
    net_amount     numeric(14, 2),
    tax_amount     numeric(14, 2),
    gross_amount   numeric(14, 2),
    tax_variance   numeric(14, 2) not null default 0,
    request_sha256 text,
    attempts       integer not null default 1,
    posted_at      timestamptz not null default now()
);
create index posting_log_orderid_idx on sitoo_erp.posting_log (orderid);
"""

DOWNGRADE = """
drop table if exists sitoo_erp.posting_log, sitoo_erp.exception, sitoo_erp.erp_item,
    sitoo_erp.map_document_item, sitoo_erp.map_vat_tax_code, sitoo_erp.map_tender_payment,
    sitoo_erp.map_sku_item, sitoo_erp.map_store_location, sitoo_erp.extract_watermark,
    sitoo_erp.order_state, sitoo_erp.sitoo_payment, sitoo_erp.sitoo_order_row, sitoo_erp.sitoo_order,
    sitoo_erp.sitoo_order_raw cascade;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
