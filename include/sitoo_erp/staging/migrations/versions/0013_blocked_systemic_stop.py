"""Reconciliation: receipts blocked by the quality gate's systemic stop are their own class.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CLASSES = (
    "'missing_in_erp', 'extra_in_erp', 'duplicate_in_erp', 'amount_mismatch', 'tax_variance', "
    "'zreport_mismatch', 'unexplained_residual', 'receipt_mismatch'"
)


def upgrade() -> None:
    op.execute(
        f"""
        alter table sitoo_erp.reconciliation_line drop constraint if exists reconciliation_line_class_check;
        alter table sitoo_erp.reconciliation_line add constraint reconciliation_line_class_check
            check (class in ({CLASSES}, 'blocked_systemic_stop'));
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        alter table sitoo_erp.reconciliation_line drop constraint if exists reconciliation_line_class_check;
        update sitoo_erp.reconciliation_line set class = 'missing_in_erp' where class = 'blocked_systemic_stop';
        alter table sitoo_erp.reconciliation_line add constraint reconciliation_line_class_check
            check (class in ({CLASSES}));
        """
    )
