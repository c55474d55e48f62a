"""The receipt key on the staged order: the externalId's receipt part, computed once at staging.

The reconciliation resolves an ERP document it did not log back to its receipt by this key; before,
it re-derived the key in SQL with a copy of the externalId rule. Staging now writes it
(``domain.receipt_key``); existing rows are filled once here with the same rule.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table sitoo_erp.sitoo_order add column if not exists receipt_key text")
    op.execute(
        """
        update sitoo_erp.sitoo_order
           set receipt_key = regexp_replace(coalesce(nullif(receipt_id, ''), orderid::text), '[^A-Za-z0-9_-]', '-', 'g')
         where receipt_key is null
        """
    )
    op.execute("alter table sitoo_erp.sitoo_order alter column receipt_key set not null")
    op.execute(
        "create index if not exists sitoo_order_store_receipt_key_idx "
        "on sitoo_erp.sitoo_order (store_externalid, receipt_key)"
    )


def downgrade() -> None:
    op.execute("drop index if exists sitoo_erp.sitoo_order_store_receipt_key_idx")
    op.execute("alter table sitoo_erp.sitoo_order drop column if exists receipt_key")
