"""Duplicate receipts: look receipts up by store and receipt id; owner of the new exception kind.

Revision ID: 0007
Revises: 0005
"""

from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create index sitoo_order_receipt_idx on sitoo_erp.sitoo_order (store_externalid, receipt_id)
            where receipt_id is not null;
        insert into sitoo_erp.exception_owner (kind, owner) values ('duplicate_receipt', 'retail_ops')
            on conflict (kind) do nothing;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists sitoo_erp.sitoo_order_receipt_idx;
        delete from sitoo_erp.exception_owner where kind = 'duplicate_receipt';
        """
    )
