"""Every tender on its own account (invariant 11): tender accounts and the tender journal's key.

- ``map_tender_payment.account_id``: the ledger account a tender lands on (the tender journal's
  line); ``via_journal``: the tender never goes as a cash sale's payment method (a gift card is a
  liability, exchange clearing is not a bank account). Gift-card tenders are journal tenders.
- ``map_document_item`` purposes ``pos_settlement_method`` / ``pos_settlement_account``: the
  payment method a split-tender cash sale goes on, and the bank-type clearing account it deposits to.
- ``posting_log.tender_journal_external_id`` / ``tender_journal_erp_id``: the journal entry posted
  with a split-tender receipt, logged in the same step as its cash sale (exactly once).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table sitoo_erp.map_tender_payment
            add column account_id text,
            add column via_journal boolean not null default false;
        update sitoo_erp.map_tender_payment set via_journal = true where is_gift_card;
        alter table sitoo_erp.posting_log
            add column tender_journal_external_id text,
            add column tender_journal_erp_id text;
        alter table sitoo_erp.map_document_item drop constraint if exists map_document_item_purpose_check;
        alter table sitoo_erp.map_document_item add constraint map_document_item_purpose_check
            check (purpose in ('loyalty_discount', 'cash_rounding', 'gift_card', 'stock_adjustment_account',
                               'pos_settlement_method', 'pos_settlement_account'));
        create unique index posting_log_tender_journal_uq on sitoo_erp.posting_log (tender_journal_external_id)
            where tender_journal_external_id is not null;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists sitoo_erp.posting_log_tender_journal_uq;
        delete from sitoo_erp.map_document_item
         where purpose in ('pos_settlement_method', 'pos_settlement_account');
        alter table sitoo_erp.map_document_item drop constraint if exists map_document_item_purpose_check;
        alter table sitoo_erp.map_document_item add constraint map_document_item_purpose_check
            check (purpose in ('loyalty_discount', 'cash_rounding', 'gift_card', 'stock_adjustment_account'));
        alter table sitoo_erp.posting_log
            drop column if exists tender_journal_erp_id,
            drop column if exists tender_journal_external_id;
        alter table sitoo_erp.map_tender_payment
            drop column if exists via_journal,
            drop column if exists account_id;
        """
    )
