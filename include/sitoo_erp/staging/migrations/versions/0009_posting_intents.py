"""Posting intents: what is being sent to the ERP, committed before the call, so a lost answer can
always be settled by reading the ERP by externalId; owners of the two post-posting exception kinds.

Revision ID: 0009
Revises: 0010
"""

from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
-- One row per document being sent: written and committed before the PUT, deleted in the same
-- transaction that records the ERP's answer. A row left behind = the answer was lost.
create table sitoo_erp.posting_intent (
    external_id      text primary key,
    orderid          bigint not null,
    document_type    text not null,
    content_hash     text not null,          -- the staged receipt's content when it was sent
    tran_date        date,
    store_externalid text,
    net_amount       numeric(14, 2),
    tax_amount       numeric(14, 2),
    gross_amount     numeric(14, 2),
    tax_variance     numeric(14, 2) not null default 0,
    tax_by_rate      jsonb not null default '[]'::jsonb,  -- [[rate, pos_tax, erp_line_tax, variance], ...]
    tender_journal_external_id text,         -- the receipt's second document (split tenders), if any
    backend_pid      integer,                -- the posting session: alive = the answer may still come
    backend_start    timestamptz,
    created_at       timestamptz not null default now()
);
create index posting_intent_orderid_idx on sitoo_erp.posting_intent (orderid);
insert into sitoo_erp.exception_owner (kind, owner) values
    ('cancelled_after_posting', 'finance'), ('changed_after_posting', 'finance')
on conflict (kind) do nothing;
"""

DOWNGRADE = """
drop table if exists sitoo_erp.posting_intent;
delete from sitoo_erp.exception_owner where kind in ('cancelled_after_posting', 'changed_after_posting');
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
