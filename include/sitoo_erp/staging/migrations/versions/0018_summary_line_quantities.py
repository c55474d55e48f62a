"""Daily summaries record their line quantities, so the reconciliation proves them as in receipt mode.

``summary_document.line_qty`` / ``line_item_qty``: the posted document's lines as (sum of quantities,
sum of item id x quantity), document sign, as ``posting_log`` has them per receipt. The monthly
reconciliation compares them with the ERP document's lines: a quantity edited in the ERP, or a line
dropped while the line count stayed, shows though every amount still agrees.

Summaries posted before this revision keep NULL: "not recorded", their quantities are not compared
(what they were built from is not kept, and rebuilding them from today's staged receipts would prove
nothing about the document as it was posted).

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "alter table sitoo_erp.summary_document add column if not exists line_qty numeric(18, 3), "
        "add column if not exists line_item_qty numeric(24, 3)"
    )


def downgrade() -> None:
    op.execute(
        "alter table sitoo_erp.summary_document drop column if exists line_qty, drop column if exists line_item_qty"
    )
