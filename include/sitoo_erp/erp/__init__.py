"""ERP adapters. ``get_erp_adapter`` picks one by name, so operators stay ERP-neutral."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.sitoo_erp.erp.adapter import ErpAdapter


def get_erp_adapter(conn_id: str, adapter: str = "netsuite", **kwargs: Any) -> ErpAdapter:
    """The adapter for ``adapter`` on Airflow connection ``conn_id`` (another ERP = one more branch).

    Typed as the protocol, so the type checker proves every adapter offers all the DAGs ask of an ERP.
    """
    if adapter == "netsuite":
        from include.sitoo_erp.erp.netsuite import NetSuiteHook

        return NetSuiteHook(netsuite_conn_id=conn_id, **kwargs)
    raise ValueError(f"unknown ERP adapter {adapter!r}; known: 'netsuite'")
