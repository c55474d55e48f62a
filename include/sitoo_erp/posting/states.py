"""The state ledger's vocabulary (invariant 1): four states, and the reasons a receipt is held.

``held`` means "not in the ERP yet, and nobody needs to act": either the order is not finalised
in Sitoo, or it is finalised and waiting for this run's gate and posting. A held order older
than the stall threshold is reported as *stalled*.
"""

from __future__ import annotations

from enum import StrEnum

POSTED = "posted"
HELD = "held"
QUARANTINED = "quarantined"
EXCLUDED = "excluded"
STATES = (POSTED, HELD, QUARANTINED, EXCLUDED)

# Reasons for ``held``.
STAGED = "staged: awaiting classification"
READY = "ready to post"
NOT_FINALISED_OPEN = "not finalised: open"
NOT_FINALISED_PARKED = "not finalised: parked"
NOT_FINALISED_PAYMENT = "not finalised: payment not successful"
AWAITING_ORIGINAL = "awaiting original sale"

# Reasons for ``excluded``.
EXCLUDED_CANCELLED = "cancelled in Sitoo"
EXCLUDED_ABANDONED = "abandoned in Sitoo"
EXCLUDED_BOOKING = "booking (not a POS sale)"
EXCLUDED_NOT_POS = "not a POS order (no register)"
IGNORED_BY_OPS = "exception ignored by"  # + "<actor>: <reason>", set by operations.actions


class ReasonCode(StrEnum):
    """``order_state.reason_code``: what code tests. ``reason`` is the sentence for people and may
    carry details (which rule, which document); no query recognises a state by its text."""

    STAGED = "staged"
    READY = "ready"
    NOT_FINALISED_OPEN = "not_finalised_open"
    NOT_FINALISED_PARKED = "not_finalised_parked"
    NOT_FINALISED_PAYMENT = "not_finalised_payment"
    AWAITING_ORIGINAL = "awaiting_original"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    BOOKING = "booking"
    NOT_POS = "not_pos"
    MALFORMED_PAYLOAD = "malformed_payload"
    QUALITY_GATE = "quality_gate"
    IGNORED_BY_OPS = "ignored_by_ops"
    POSTED = "posted"
    POSTED_IN_SUMMARY = "posted_in_summary"
    # A receipt the posting step quarantined carries its exception kind as code (``unknown_sku``,
    # ``erp_rejected``, ...): ``staging.exceptions.ExceptionKind`` is that vocabulary.


# Held because Sitoo has not finalised the order: what ages into *stalled*.
NOT_FINALISED_CODES = (
    ReasonCode.NOT_FINALISED_OPEN,
    ReasonCode.NOT_FINALISED_PARKED,
    ReasonCode.NOT_FINALISED_PAYMENT,
)


def sql_codes(codes: tuple[str, ...]) -> str:
    """``('a', 'b')`` for an SQL ``in`` over fixed codes (constants, never user input)."""
    return "(" + ", ".join(f"'{c}'" for c in codes) + ")"


NOT_FINALISED_SQL = sql_codes(NOT_FINALISED_CODES)  # reason_code in {NOT_FINALISED_SQL}
