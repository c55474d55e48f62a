"""Daily summaries keep the document as assigned, so a lost answer re-sends exactly it.

``summary_document.document``: the summary document (JSON of ``LedgerDocument``) as it was committed
``pending`` with its receipts, before the first ERP call. A run whose answer was lost re-sends this,
not a rebuild from the receipts' current content: if the first call did store the document, a rebuild
after a receipt changed (or a mapping moved) would overwrite it in the ERP with content the ledger
never recorded, and the after-posting review would then ask finance to book that change a second time.

Kept while it is needed: the whole document while ``pending``; only its tender part (no item lines)
while its tender journal is owed; nothing once the journal posted or none is owed. Documents
assigned before this revision have NULL and are rebuilt as before.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table sitoo_erp.summary_document add column if not exists document jsonb")


def downgrade() -> None:
    op.execute("alter table sitoo_erp.summary_document drop column if exists document")
