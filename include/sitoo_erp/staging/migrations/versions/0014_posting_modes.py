"""Posting modes: one document per receipt, or one summary per store and business day.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = """
-- Which posting mode a store uses from a business date on. store_externalid '*' is the
-- deployment's default; a store's own row wins from its date. No row at all: 'receipt'.
-- A switch changes what posts from that date; what already posted stays as posted.
create table sitoo_erp.store_posting_mode (
    store_externalid text not null,
    effective_from   date not null,
    posting_mode     text not null check (posting_mode in ('receipt', 'daily_summary')),
    changed_by       text,
    changed_at       timestamptz not null default now(),
    primary key (store_externalid, effective_from)
);

create function sitoo_erp.posting_mode(store text, business_date date) returns text
language sql stable as $$
    select coalesce(
        (select m.posting_mode from sitoo_erp.store_posting_mode m
          where m.store_externalid = store and m.effective_from <= business_date
          order by m.effective_from desc limit 1),
        (select m.posting_mode from sitoo_erp.store_posting_mode m
          where m.store_externalid = '*' and m.effective_from <= business_date
          order by m.effective_from desc limit 1),
        'receipt')
$$;

-- One ERP document summarising a store's business day: the summary (supplement 0) or a numbered
-- supplement for receipts that came in after it, each split into parts under the ERP's line limit.
-- 'pending' = receipts assigned and the call not answered yet: the next run re-sends exactly it.
create table sitoo_erp.summary_document (
    external_id                text primary key,
    store_externalid           text not null,
    business_date              date not null,
    document_type              text not null,
    direction                  text not null check (direction in ('sale', 'return')),
    supplement                 integer not null,
    part                       integer not null,
    status                     text not null check (status in ('pending', 'posted')),
    erp_id                     text,
    tender_journal_external_id text,
    tender_journal_erp_id      text,
    receipt_count              integer not null,
    line_count                 integer not null,
    net_amount                 numeric(14, 2),
    tax_amount                 numeric(14, 2),
    gross_amount               numeric(14, 2),
    tax_variance               numeric(14, 2),
    attempts                   integer not null default 0,
    created_at                 timestamptz not null default now(),
    posted_at                  timestamptz,
    unique (store_externalid, business_date, direction, supplement, part)
);

-- The posting log of summary mode: each receipt in exactly one summary document, with the
-- document lines its rows went into (orderid is the key: a receipt cannot be summarised twice).
create table sitoo_erp.summary_receipt (
    orderid      bigint primary key,
    external_id  text not null references sitoo_erp.summary_document (external_id) on delete cascade,
    line_numbers integer[] not null,
    net_amount   numeric(14, 2) not null,
    tax_amount   numeric(14, 2) not null,
    gross_amount numeric(14, 2) not null,
    content_hash text,
    assigned_at  timestamptz not null default now()
);
create index summary_receipt_document_idx on sitoo_erp.summary_receipt (external_id);
"""

DOWNGRADE = """
drop table if exists sitoo_erp.summary_receipt;
drop table if exists sitoo_erp.summary_document;
drop function if exists sitoo_erp.posting_mode(text, date);
drop table if exists sitoo_erp.store_posting_mode;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
