"""Operators in the providers' shape: every templated field is documented as ``(templated)``, so a
DAG author reading ``help()`` or the API docs knows which arguments take Jinja."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import include.sitoo_erp.operators as operators_pkg
from include.sitoo_erp.operators.base import SitooErpOperator


def _operators() -> list[type]:
    found = set()
    for info in pkgutil.iter_modules(operators_pkg.__path__):
        module = importlib.import_module(f"{operators_pkg.__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, SitooErpOperator) and obj is not SitooErpOperator:
                found.add(obj)
    return sorted(found, key=lambda c: c.__name__)


def _param_text(cls: type, field: str) -> str | None:
    """The ``:param field:`` paragraph in the class's docstring or an ancestor's."""
    for klass in cls.__mro__:
        doc = inspect.cleandoc(klass.__doc__ or "")
        match = re.search(rf":param {re.escape(field)}:(.*?)(?=\n:param |\n\n|\Z)", doc, re.S)
        if match:
            return " ".join(match.group(1).split())
    return None


def test_every_templated_field_is_documented_as_templated():
    operators = _operators()
    assert len(operators) >= 15  # the scan found the package's operators
    missing = [
        f"{cls.__name__}.{field}"
        for cls in operators
        for field in cls.template_fields
        if "(templated)" not in (_param_text(cls, field) or "")
    ]
    assert not missing, missing


def test_every_operator_with_an_erp_connection_gets_its_adapter_from_the_cached_erp_property():
    """One way to the ERP (the providers' cached ``hook`` shape): an operator taking ``erp_conn_id``
    uses ``ErpAdapterMixin.erp``, never builds an adapter inside ``execute``."""
    from include.sitoo_erp.operators.base import ErpAdapterMixin

    takes_erp = [c for c in _operators() if "erp_conn_id" in inspect.signature(c.__init__).parameters]
    assert len(takes_erp) >= 8  # the scan found the ERP operators
    assert [c.__name__ for c in takes_erp if not issubclass(c, ErpAdapterMixin)] == []
    for cls in takes_erp:
        assert "get_erp_adapter" not in inspect.getsource(cls), cls.__name__


def test_posting_operators_give_every_erp_call_the_tasks_retry_policy():
    from include.sitoo_erp.operators.posting import DailySummaryPostingOperator, ErpPostingOperator

    for cls in (ErpPostingOperator, DailySummaryPostingOperator):
        op = cls(task_id="post", retry_attempts=3, retry_max_wait=0.5)
        erp = op.erp
        assert (erp.retry.attempts, erp.retry.max_wait) == (3, 0.5)  # type: ignore[attr-defined]
        assert op.erp is erp  # cached: one adapter (and its token and session) per task try
