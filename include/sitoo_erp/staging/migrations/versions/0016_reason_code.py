"""The state ledger's reason code: queries test a code, never the reason's wording.

``reason`` stays the sentence for people (it names rules and documents); ``reason_code`` is the
fixed vocabulary of ``posting.states.ReasonCode`` (and, for receipts the posting step quarantined,
the exception kind). Existing rows are coded once from their wording, here and nowhere else.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_EXACT = {
    "staged: awaiting classification": "staged",
    "ready to post": "ready",
    "not finalised: open": "not_finalised_open",
    "not finalised: parked": "not_finalised_parked",
    "not finalised: payment not successful": "not_finalised_payment",
    "awaiting original sale": "awaiting_original",
    "cancelled in Sitoo": "cancelled",
    "abandoned in Sitoo": "abandoned",
    "booking (not a POS sale)": "booking",
    "not a POS order (no register)": "not_pos",
}
_PREFIX = {
    "exception ignored by": "ignored_by_ops",
    "malformed payload": "malformed_payload",
    "quality gate": "quality_gate",
    "posted in daily summary": "posted_in_summary",
    "posted as": "posted",
}
_POSTING_KINDS = (
    "unknown_sku",
    "inactive_item",
    "missing_mapping",
    "orphaned_return",
    "tender_mismatch",
    "tax_beyond_tolerance",
    "erp_rejected",
    "closed_period",
)


def upgrade() -> None:
    op.execute("alter table sitoo_erp.order_state add column if not exists reason_code text")
    exact = " ".join(f"when reason = '{text}' then '{code}'" for text, code in _EXACT.items())
    prefix = " ".join(f"when starts_with(reason, '{text}') then '{code}'" for text, code in _PREFIX.items())
    kinds = ", ".join(f"'{k}'" for k in _POSTING_KINDS)
    op.execute(
        f"""
        update sitoo_erp.order_state
           set reason_code = case {exact} {prefix}
                                  when split_part(reason, ':', 1) in ({kinds}) then split_part(reason, ':', 1)
                                  else state end
         where reason_code is null
        """
    )
    op.execute("alter table sitoo_erp.order_state alter column reason_code set not null")
    op.execute(
        "create index if not exists order_state_reason_code_idx on sitoo_erp.order_state (state, reason_code)"
    )


def downgrade() -> None:
    op.execute("drop index if exists sitoo_erp.order_state_reason_code_idx")
    op.execute("alter table sitoo_erp.order_state drop column if exists reason_code")
