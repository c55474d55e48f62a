"""Operators that fill the staging database: schema migration and Sitoo orders extraction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pendulum
from airflow.sdk import Context

from include.sitoo_erp.operators.base import SitooErpOperator, SitooHookMixin
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID


def as_datetime(value: Any, field: str) -> datetime:
    """Rendered template values arrive as strings; accept datetimes too."""
    if isinstance(value, datetime):
        return pendulum.instance(value)
    if isinstance(value, str) and value:
        parsed = pendulum.parse(value)
        if isinstance(parsed, datetime):  # not a bare duration ("P1D")
            return parsed
    raise ValueError(f"{field} must be a datetime or ISO-8601 string, got {value!r}")


class MigrateStagingSchemaOperator(SitooErpOperator):
    """Bring the staging schema to the latest migration (a no-op when it is already there)."""

    ui_color = "#e8f0fe"

    def __init__(self, *, postgres_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Context) -> str:
        from include.sitoo_erp.staging.db import sqlalchemy_url_for
        from include.sitoo_erp.staging.schema import migrate

        revision = migrate(sqlalchemy_url_for(self.postgres_conn_id))
        self.log.info("staging schema at revision %s", revision)
        return revision


class SitooOrdersToStagingOperator(SitooHookMixin, SitooErpOperator):
    """Extract Sitoo orders for a window into staging: window + late sweep + held re-check.

    Windows come from the run's data interval by default, so backfills and clears re-extract
    exactly their own hour; staging is idempotent, so re-running is harmless.

    :param sitoo_conn_id: the Sitoo API connection (``SitooHook``).
    :param postgres_conn_id: the staging database.
    :param window_start: start of the window of order changes to read (templated).
    :param window_end: end of the window, exclusive (templated).
    :param sweep_late: also re-read recently changed orders a till uploaded after their hour.
    :param reexamine_held: re-read held (open, unpaid) orders so a parked order that closes moves on.
    :param page_size: orders per Sitoo page.
    """

    template_fields: Sequence[str] = ("window_start", "window_end")
    ui_color = "#fff4e5"

    def __init__(
        self,
        *,
        sitoo_conn_id: str = "sitoo_default",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        window_start: str | datetime = "{{ data_interval_start }}",
        window_end: str | datetime = "{{ data_interval_end }}",
        sweep_late: bool = True,
        reexamine_held: bool = True,
        page_size: int = 500,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sitoo_conn_id = sitoo_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.window_start = window_start
        self.window_end = window_end
        self.sweep_late = sweep_late
        self.reexamine_held = reexamine_held
        self.page_size = page_size

    def execute(self, context: Context) -> dict[str, Any]:
        from include.sitoo_erp.posting.extract import extract_orders
        from include.sitoo_erp.staging.db import connect_airflow

        start = as_datetime(self.window_start, "window_start")
        end = as_datetime(self.window_end, "window_end")
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                summary: dict[str, Any] = extract_orders(
                    self.hook,
                    conn,
                    start,
                    end,
                    sweep_late=self.sweep_late,
                    reexamine_held=self.reexamine_held,
                )
        finally:
            self.hook.close()
        summary["window_utc"] = [start.isoformat(), end.isoformat()]
        self.log.info("staged Sitoo orders: %s", summary)
        return summary
