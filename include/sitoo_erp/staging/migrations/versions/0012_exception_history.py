"""Exception history: the operations page browses resolved and ignored exceptions, newest first.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Closed exceptions, newest decision first (keyset-paged); open rows have their own indexes.
        create index exception_closed_idx on sitoo_erp.exception (resolved_at desc, exception_id desc)
            where status <> 'open';
        """
    )


def downgrade() -> None:
    op.execute("drop index if exists sitoo_erp.exception_closed_idx")
