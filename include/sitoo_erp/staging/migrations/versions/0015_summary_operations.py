"""Daily summaries on the operations page: the latest documents by business day.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "create index if not exists summary_document_day_idx "
        "on sitoo_erp.summary_document (business_date desc, store_externalid)"
    )


def downgrade() -> None:
    op.execute("drop index if exists sitoo_erp.summary_document_day_idx")
