"""After posting: content hash of each staged receipt and of what was posted; revision history.

Revision ID: 0010
Revises: 0007

A posted receipt that changes in Sitoo (its ledger-relevant content, or its state) is detected by
comparing ``sitoo_order.content_hash`` (what Sitoo says now) with ``posting_log.content_hash`` (what
the ERP was given). Every detected change is one ``posting_revision`` row: old and new hash and
totals, when, which run, and what was done (corrected in the ERP, or raised for finance).
"""

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
alter table sitoo_erp.sitoo_order add column content_hash text;
alter table sitoo_erp.posting_log add column content_hash text;
-- The posted document's lines as item x quantity fingerprint (count, sum of quantities, sum of
-- item id x quantity, document sign): the reconciliation compares it with the ERP's lines.
alter table sitoo_erp.posting_log add column line_count integer;
alter table sitoo_erp.posting_log add column line_qty numeric(18, 3);
alter table sitoo_erp.posting_log add column line_item_qty numeric(24, 3);

-- Revision history of posted receipts that changed in Sitoo after posting (the audit trail).
create table sitoo_erp.posting_revision (
    revision_id   bigserial primary key,
    orderid       bigint not null,
    external_id   text not null,
    erp_id        text,
    change        text not null check (change in ('content', 'cancelled', 'no_longer_finalised')),
    action        text not null check (action in ('correct', 'exception')),
    status        text not null check (status in ('pending', 'corrected', 'raised')),
    reason        text not null,
    old_hash      text,
    new_hash      text,
    old_gross     numeric(14, 2),
    new_gross     numeric(14, 2),
    old_tax       numeric(14, 2),
    new_tax       numeric(14, 2),
    old_state     text,
    new_state     text,
    detected_run  text,
    detected_at   timestamptz not null default now(),
    corrected_at  timestamptz,
    corrected_erp_id text,
    exception_id  bigint,
    unique (orderid, external_id, change, new_hash)
);
create index posting_revision_order_idx on sitoo_erp.posting_revision (orderid, detected_at desc);

insert into sitoo_erp.exception_owner (kind, owner) values
    ('changed_after_posting', 'finance'), ('cancelled_after_posting', 'finance')
on conflict (kind) do nothing;

alter table sitoo_erp.reconciliation_line drop constraint if exists reconciliation_line_class_check;
alter table sitoo_erp.reconciliation_line add constraint reconciliation_line_class_check
    check (class in ('missing_in_erp', 'extra_in_erp', 'duplicate_in_erp', 'amount_mismatch', 'tax_variance',
                     'zreport_mismatch', 'unexplained_residual', 'receipt_mismatch'));
"""

DOWNGRADE = """
alter table sitoo_erp.reconciliation_line drop constraint if exists reconciliation_line_class_check;
delete from sitoo_erp.reconciliation_line where class = 'receipt_mismatch';
alter table sitoo_erp.reconciliation_line add constraint reconciliation_line_class_check
    check (class in ('missing_in_erp', 'extra_in_erp', 'duplicate_in_erp', 'amount_mismatch', 'tax_variance',
                     'zreport_mismatch', 'unexplained_residual'));
delete from sitoo_erp.exception_owner where kind in ('changed_after_posting', 'cancelled_after_posting');
drop table if exists sitoo_erp.posting_revision;
alter table sitoo_erp.posting_log drop column if exists content_hash, drop column if exists line_count,
    drop column if exists line_qty, drop column if exists line_item_qty;
alter table sitoo_erp.sitoo_order drop column if exists content_hash;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    # Receipts staged before this revision: hash them now, and take what is posted as what was posted.
    from include.sitoo_erp.staging.orders import CONTENT_HASH_SQL

    op.execute(f"update sitoo_erp.sitoo_order o set content_hash = ({CONTENT_HASH_SQL})")
    op.execute(
        "update sitoo_erp.posting_log pl set content_hash = o.content_hash from sitoo_erp.sitoo_order o "
        "where o.orderid = pl.orderid and pl.document_type in ('sale', 'refund', 'credit_memo')"
    )


def downgrade() -> None:
    op.execute(DOWNGRADE)
