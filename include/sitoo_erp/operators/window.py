"""The first task of every scheduled DAG: refuse a window before the sync's go-live date, loudly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from include.sitoo_erp.operators.base import SitooErpOperator
from include.sitoo_erp.schedule import window_refusal


class CheckWindowOperator(SitooErpOperator):
    """Fails a run whose logical date is before ``go_live`` (``SITOO_ERP_START_DATE``).

    The DAGs carry no Airflow ``start_date``: with one, Airflow creates no task of an earlier run
    and marks it successful, and a backfill quietly starts at that date. Without it every run has
    its tasks, and this one turns "before go-live" into a failed run that names the date and how
    to change it; downstream tasks are then ``upstream_failed``, nothing is extracted or posted.

    :param go_live: the first instant the sync owns (``configured_start_date()``).
    """

    ui_color = "#fdecea"

    def __init__(self, *, go_live: datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.go_live = go_live

    def execute(self, context: Context) -> dict[str, str]:
        logical = context.get("logical_date")
        dag_id = context["dag"].dag_id
        reason = window_refusal(dag_id, logical, context.get("data_interval_start"), self.go_live)
        if reason:
            raise AirflowFailException(reason)
        return {"logical_date": logical.isoformat() if logical else "", "go_live": self.go_live.isoformat()}
