"""Who gets an alert, and where its links point: one home for every operator that sends mail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

OPS_PAGE_PATH = "/sitoo-erp-ops/"  # the operations page (plugins/sitoo_erp_ops)


def recipients(value: str | Sequence[str] | None) -> list[str]:
    """A comma-separated string (as a Variable holds it) or a list; blanks and "None" dropped."""
    if not value or value == "None":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [x.strip() for x in items if x and x.strip()]


def owner_recipients(value: Any) -> dict[str, list[str]]:
    """Variable ``sitoo_erp_owner_recipients``: JSON ``{"finance": "a@x,b@x", "retail_ops": [...]}``."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() not in ("", "None") else {}
    return {str(k): recipients(v) for k, v in dict(value or {}).items()}


def run_url(ui_base_url: str | None, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The Airflow UI page of a DAG run (or of one task in it)."""
    url = f"{str(ui_base_url or '').rstrip('/')}/dags/{dag_id}/runs/{run_id}"
    return f"{url}/tasks/{task_id}" if task_id else url


def page_url(ui_base_url: str | None, **filters: str) -> str:
    """The operations page, optionally filtered (kind=, owner=, store=)."""
    query = urlencode({k: v for k, v in filters.items() if v})
    return f"{str(ui_base_url or '').rstrip('/')}{OPS_PAGE_PATH}" + (f"?{query}" if query else "")
