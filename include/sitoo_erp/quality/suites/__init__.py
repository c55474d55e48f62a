"""The gate's suites, versioned with the code (one module per suite, each with ``VERSION``)."""

from __future__ import annotations

from collections.abc import Iterable

from include.sitoo_erp.quality.rules import Suite
from include.sitoo_erp.quality.suites import orphaned_transactions, sku_mismatches, tax_rounding

ALL_SUITES: tuple[Suite, ...] = (orphaned_transactions.SUITE, sku_mismatches.SUITE, tax_rounding.SUITE)
SUITES_BY_NAME: dict[str, Suite] = {s.name: s for s in ALL_SUITES}


def resolve_suites(suites: Iterable[Suite | str] | None = None) -> tuple[Suite, ...]:
    """``None`` -> all; names or :class:`Suite` objects -> those, in the given order."""
    if suites is None:
        return ALL_SUITES
    out = []
    for s in suites:
        out.append(s if isinstance(s, Suite) else SUITES_BY_NAME[str(s)])
    return tuple(out)
