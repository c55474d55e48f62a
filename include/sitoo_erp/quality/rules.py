"""Versioned gate rules: one SQL definition per expectation, run by GX and re-run by the gate.

Every rule is an *unexpected rows* query over ``{batch}`` (the ready batch, GX substitutes the
asset's table) joined to the staging tables. Each query returns the same columns:

``orderid, store_externalid, cause_key, field, sku, detail``

``cause_key`` identifies the cause inside the receipt (``sku=ABC-1``, ``tender=Foreign Currency``),
``detail`` names the exact failing key/field in words. The same text is handed to GX (which only
counts and samples) and re-run by the gate to fetch *all* failing rows, so there is one definition.

GX binds ``{batch}`` as ``(select * from <view> where true)`` and, when the query has no JOIN, adds
its own alias ``AS subselect``; so every rule that reads the batch has a JOIN and aliases ``{batch} b``
itself (checked by :meth:`Rule.check`). Rules: no ``%`` (psycopg/SQLAlchemy paramstyle), no ``:word`` (SQLAlchemy bind syntax) and no
literal braces other than ``{batch}`` (GX formats the text with ``str.format``). Options are
substituted as ``__NAME__`` tokens before anything else sees the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from include.sitoo_erp.domain import GIFT_CARD_ROW_SQL
from include.sitoo_erp.staging.exceptions import ExceptionKind

RESULT_COLUMNS = ("orderid", "store_externalid", "cause_key", "field", "sku", "detail")
BATCH_TABLE = "sitoo_erp.ready_receipt"
_TOKEN = re.compile(r"__[A-Z][A-Z0-9_]*__")
RULE_PREFIX = "gx:"  # exception.rule of every gate exception starts with this


@dataclass(frozen=True)
class Rule:
    name: str
    kind: ExceptionKind
    sql: str
    description: str

    def render(self, options: dict[str, object] | None = None) -> str:
        """The query with option tokens filled in (``{batch}`` is left for GX / :meth:`for_batch`)."""
        text = self.sql
        for key, value in (options or {}).items():
            text = text.replace(f"__{key.upper()}__", str(value))
        missing = _TOKEN.findall(text)
        if missing:
            raise ValueError(f"rule {self.name}: no value for option(s) {sorted(set(missing))}")
        return text.strip()

    def check(self) -> None:
        """Fail early on a query GX would bind differently from :meth:`for_batch`."""
        code = re.sub(r"/\*.*?\*/", " ", re.sub(r"'(?:[^']|'')*'", "''", self.sql), flags=re.S)
        if "{batch}" in code and not re.search(r"\bjoin\b", code, re.I):
            raise ValueError(f"rule {self.name}: a query over {{batch}} must have a JOIN (see module doc)")
        if "%" in code:
            raise ValueError(f"rule {self.name}: no '%' in rule SQL")
        # SQLAlchemy's text() takes ``:word`` as a bind parameter even inside string literals.
        bind = re.search(r"(?<![:\w\\]):[A-Za-z_]\w*", re.sub(r"/\*.*?\*/", " ", self.sql, flags=re.S))
        if bind:
            raise ValueError(f"rule {self.name}: {bind.group(0)!r} would be a SQLAlchemy bind parameter")

    def for_batch(self, options: dict[str, object] | None = None, batch: str = BATCH_TABLE) -> str:
        """The same query as GX runs it, with ``{batch}`` bound to the ready batch."""
        return self.render(options).format(batch=batch)


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    rules: tuple[Rule, ...]
    description: str = ""

    def check(self) -> None:
        for r in self.rules:
            r.check()

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


# A row that sells (or refunds) a gift card: it posts to the gift-card document item, not to a SKU item.
GIFT_CARD_ROW = GIFT_CARD_ROW_SQL
