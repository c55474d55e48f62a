"""The state ledger's vocabulary (invariant 1): four states, and the reasons a receipt is held.

``held`` means "not in the ERP yet, and nobody needs to act": either the order is not finalised
in Sitoo, or it is finalised and waiting for this run's gate and posting. A held order older
than the stall threshold is reported as *stalled*.
"""

from __future__ import annotations

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
