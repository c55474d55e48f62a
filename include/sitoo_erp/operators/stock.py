"""Operators of the daily stock job: movements → staging → ERP adjustments, snapshot + drift, stock gate.

Each covers one business day: the local date (``store_timezone``) on which the run's data interval
starts (templated ``interval_start``, default ``{{ data_interval_start }}``), so backfills and clears
redo exactly their own day. Logic lives in ``include.sitoo_erp.stock``; these only wire hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from airflow.sdk import Context

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.notify.addressing import page_url, recipients, run_url
from include.sitoo_erp.operators.base import ErpAdapterMixin, SitooErpOperator, SitooHookMixin
from include.sitoo_erp.operators.staging import as_datetime
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID


class _StockDayOperator(SitooErpOperator):
    """One store business day of stock work.

    :param postgres_conn_id: the staging database.
    :param interval_start: the run's data interval start; its local date is the business day (templated).
    :param store_timezone: the stores' timezone, where the business day is cut.
    """

    template_fields: Sequence[str] = ("interval_start",)

    def __init__(
        self,
        *,
        postgres_conn_id: str = DEFAULT_CONN_ID,
        interval_start: str = "{{ data_interval_start }}",
        store_timezone: str = DEFAULT_TIMEZONE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.interval_start = interval_start
        self.store_timezone = store_timezone

    def business_date(self) -> date:
        from include.sitoo_erp.domain import business_date

        return business_date(as_datetime(self.interval_start, "interval_start"), self.store_timezone)


class SitooStockMovementsOperator(SitooHookMixin, _StockDayOperator):
    """Stage the business day's non-sale Sitoo warehouse movements of every store warehouse."""

    ui_color = "#fff4e5"

    def __init__(self, *, sitoo_conn_id: str = "sitoo_default", page_size: int = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sitoo_conn_id = sitoo_conn_id
        self.page_size = page_size

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.staging.db import connect_airflow
        from include.sitoo_erp.stock.jobs import extract_movements

        day = self.business_date()
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                summary = extract_movements(self.hook, conn, day)
        finally:
            self.hook.close()
        summary["business_date"] = day.isoformat()
        self.log.info("staged stock movements: %s", summary)
        return summary


class StockAdjustmentsOperator(ErpAdapterMixin, _StockDayOperator):
    """One ERP inventory adjustment per store for the day (upsert by externalId: re-runs are harmless)."""

    ui_color = "#fce8e6"

    def __init__(
        self,
        *,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        retry_quarantined: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.erp_conn_id = erp_conn_id
        self.erp_adapter = erp_adapter
        self.retry_quarantined = retry_quarantined

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.staging.db import connect_airflow
        from include.sitoo_erp.stock.movements import post_adjustments

        erp = self.erp
        with connect_airflow(self.postgres_conn_id) as conn:
            summary = post_adjustments(
                conn, erp, self.business_date(), retry_quarantined=self.retry_quarantined
            ).as_dict()
        self.log.info("inventory adjustments: %s", summary)
        return summary


class StockSnapshotOperator(ErpAdapterMixin, SitooHookMixin, _StockDayOperator):
    """Stream Sitoo warehouse items and ERP on-hand into PostgreSQL and compute drift per location/SKU."""

    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        sitoo_conn_id: str = "sitoo_default",
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        page_size: int = 1000,
        retention_days: int = 7,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sitoo_conn_id = sitoo_conn_id
        self.erp_conn_id = erp_conn_id
        self.erp_adapter = erp_adapter
        self.page_size = page_size
        self.retention_days = retention_days

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.staging.db import connect_airflow
        from include.sitoo_erp.stock.jobs import snapshot_and_compare

        erp = self.erp
        ti = context["ti"]
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                result = snapshot_and_compare(
                    self.hook,
                    erp,
                    conn,
                    self.business_date(),
                    run_id=getattr(ti, "run_id", None),
                    retention_days=self.retention_days,
                )
        finally:
            self.hook.close()
        self.log.info("stock snapshot: %s", result)
        return result


class StockGateOperator(_StockDayOperator):
    """GX suite ``stock_drift`` on the day's snapshot; a new or changed failing cause e-mails the drift report.

    Drift is *reported* (exceptions + e-mail), never corrected: this task writes no stock anywhere and
    does not fail the run on drift (the data is the finding). A failing set unchanged since the last
    run is not mailed again (its exceptions stay open, in the daily digest). Tolerances are templated,
    so they can come from Airflow Variables. Not retried: the same snapshot gives the same answer.

    :param unit_tolerance: drift in units per location and SKU still accepted (templated).
    :param value_tolerance: drift in value per location and SKU still accepted (templated).
    :param alert_to: drift report recipients, a list or comma-separated (templated).
    :param smtp_conn_id: the Airflow SMTP connection.
    :param ui_base_url: Airflow UI address for the links in the mail (templated).
    :param top_n: the largest drifts listed in the mail.
    """

    template_fields: Sequence[str] = (
        "interval_start",
        "alert_to",
        "ui_base_url",
        "unit_tolerance",
        "value_tolerance",
    )
    ui_color = "#fef7e0"

    def __init__(
        self,
        *,
        unit_tolerance: str = "{{ var.value.get('sitoo_erp_stock_unit_tolerance', '0') }}",
        value_tolerance: str = "{{ var.value.get('sitoo_erp_stock_value_tolerance', '0.00') }}",
        alert_to: str | Sequence[str] = "{{ var.value.get('sitoo_erp_alert_recipients', '') }}",
        smtp_conn_id: str = "smtp_default",
        ui_base_url: str = "{{ var.value.get('sitoo_erp_ui_base_url', 'http://localhost:8080') }}",
        top_n: int = 10,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.unit_tolerance = unit_tolerance
        self.value_tolerance = value_tolerance
        self.alert_to = alert_to
        self.smtp_conn_id = smtp_conn_id
        self.ui_base_url = ui_base_url
        self.top_n = top_n

    def execute(self, context: Context) -> dict:
        from decimal import Decimal

        from include.sitoo_erp.notify.drift_report import DriftReportNotifier
        from include.sitoo_erp.staging.db import connect_airflow, sqlalchemy_url_for
        from include.sitoo_erp.stock.gate import StockGateOptions, StockGateResult, run_stock_gate
        from include.sitoo_erp.stock.jobs import snapshot_for

        day = self.business_date()
        unit_tol, value_tol = Decimal(str(self.unit_tolerance)), Decimal(str(self.value_tolerance))
        if unit_tol < 0 or value_tol < 0:
            raise ValueError(f"tolerances must be >= 0, got {unit_tol} units / {value_tol} value")
        ti = context["ti"]
        to = recipients(self.alert_to)
        mailed: list[str] = []

        def alert(result: StockGateResult) -> None:
            # Inside the gate's transaction: if sending fails, the new causes stay unannounced.
            if not to:
                self.log.warning("stock gate failed but no alert recipients are configured")
                return
            url = run_url(self.ui_base_url, ti.dag_id, ti.run_id)
            page = page_url(str(self.ui_base_url or ""), kind="stock_drift")
            subject, _ = DriftReportNotifier(to, smtp_conn_id=self.smtp_conn_id).send(result, url, page)
            mailed.append(subject)

        with connect_airflow(self.postgres_conn_id) as conn:
            snapshot_id = snapshot_for(conn, day)
            if snapshot_id is None:
                self.log.info(
                    "no compared snapshot for %s (skipped: a later day exists); nothing to gate", day
                )
                return {"business_date": day.isoformat(), "skipped": True}
            result = run_stock_gate(
                sqlalchemy_url_for(self.postgres_conn_id),
                conn,
                StockGateOptions(snapshot_id, day, str(unit_tol), str(value_tol)),
                run_label=f"{ti.dag_id} {ti.run_id}",
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                top_n=self.top_n,
                alert=alert,
            )
        summary = result.summary()
        failing = "; ".join(c["label"] for c in result.checks) or "nothing"
        self.log.info("stock gate %s: %s failing", day, failing)
        if mailed:
            summary["mailed"] = mailed[0]
            self.log.info("drift report sent to %s: %s", to, mailed[0])
        elif not result.success:
            self.log.info(
                "not mailed again: the %d failing causes are unchanged since the last run "
                "(open exceptions, in the daily digest)",
                result.unchanged_causes,
            )
        return summary
