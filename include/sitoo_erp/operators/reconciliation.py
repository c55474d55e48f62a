"""Operators of the monthly reconciliation: sweep the period, compare and classify, gate + report + e-mail.

The period comes from the trigger-form params (``date_from``, ``date_to``, ``stores``: finance's
weekly check) or else from the run's data interval (the closed month). Tasks hand each other only
the small summary (``recon_run_id``) through XCom; everything else is in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.notify.addressing import recipients, run_url
from include.sitoo_erp.operators.base import ErpAdapterMixin, SitooErpOperator, SitooHookMixin
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID


def period_for(context: Context, timezone: str = DEFAULT_TIMEZONE):
    from include.sitoo_erp.reconciliation.period import resolve_period

    return resolve_period(context.get("params"), context.get("data_interval_start"), timezone)


class SitooPeriodSweepOperator(SitooHookMixin, SitooErpOperator):
    """Stage every Sitoo order of the period again (late and offline receipts too) and its Z-reports."""

    ui_color = "#fff4e5"

    def __init__(
        self,
        *,
        sitoo_conn_id: str = "sitoo_default",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        timezone: str = DEFAULT_TIMEZONE,
        page_size: int = 500,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sitoo_conn_id, self.postgres_conn_id = sitoo_conn_id, postgres_conn_id
        self.timezone, self.page_size = timezone, page_size

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.reconciliation.sweep import sweep_period
        from include.sitoo_erp.staging.db import connect_airflow

        period = period_for(context, self.timezone)
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                summary = sweep_period(self.hook, conn, period)
        finally:
            self.hook.close()
        self.log.info("swept %s: %s", period.label, summary)
        return summary


class ReconcileOperator(ErpAdapterMixin, SitooErpOperator):
    """Compare Sitoo, the ERP's ledger, Z-reports and the posting log; classify every difference.

    :param erp_conn_id: the ERP's Airflow connection; ``erp_adapter`` names the adapter behind it
        (the ERP's ledger reads: totals, the per-receipt rows, the drill-down documents).
    :param days_per_query: days per ledger-totals query; None lets the adapter fit its page size.
    """

    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        timezone: str = DEFAULT_TIMEZONE,
        stall_after_hours: float = 24,
        days_per_query: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.erp_conn_id, self.erp_adapter, self.postgres_conn_id = erp_conn_id, erp_adapter, postgres_conn_id
        self.timezone, self.stall_after_hours, self.days_per_query = (
            timezone,
            stall_after_hours,
            days_per_query,
        )

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.reconciliation.compare import reconcile
        from include.sitoo_erp.staging.db import connect_airflow

        period = period_for(context, self.timezone)
        ti = context["ti"]
        erp = self.erp
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                result = reconcile(
                    conn,
                    erp,
                    period,
                    dag_id=ti.dag_id,
                    run_id=ti.run_id,
                    stall_after=timedelta(hours=self.stall_after_hours),
                    now=context.get("data_interval_end"),  # business time, not the database's clock
                    days_per_query=self.days_per_query,
                )
        finally:
            erp.close()
        summary = result.as_dict()
        self.log.info("reconciliation %s: %s", period.label, summary)
        return summary


class ReconciliationGateOperator(SitooErpOperator):
    """GX suite ``reconciliation`` (zero unexplained difference), the report (DB + directory), the e-mail.

    Finance always gets the e-mail (summary in the body, HTML report and CSV attached); when the gate
    fails the task fails too, without retry (same data, same answer).

    :param reconcile_task_id: the task whose XCom holds the reconciliation run id.
    :param postgres_conn_id: the staging database.
    :param finance_to: report recipients, a list or comma-separated (templated).
    :param smtp_conn_id: the Airflow SMTP connection.
    :param report_dir: where the HTML and CSV report are written; relative = under ``$SITOO_ERP_HOME``,
        else ``$AIRFLOW_HOME`` (templated).
    :param ui_base_url: Airflow UI address for the link in the mail (templated).
    """

    template_fields: Sequence[str] = ("finance_to", "ui_base_url", "report_dir")
    ui_color = "#fef7e0"

    def __init__(
        self,
        *,
        reconcile_task_id: str = "reconcile",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        finance_to: str | Sequence[str] = (
            "{{ var.value.get('sitoo_erp_finance_recipients', var.value.get('sitoo_erp_alert_recipients', '')) }}"
        ),
        smtp_conn_id: str = "smtp_default",
        report_dir: str = "{{ var.value.get('sitoo_erp_report_dir', 'reports') }}",
        ui_base_url: str = "{{ var.value.get('sitoo_erp_ui_base_url', 'http://localhost:8080') }}",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.reconcile_task_id, self.postgres_conn_id = reconcile_task_id, postgres_conn_id
        self.finance_to, self.smtp_conn_id = finance_to, smtp_conn_id
        self.report_dir, self.ui_base_url = report_dir, ui_base_url

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.notify.reconciliation_report import build_report, save_report, send_report
        from include.sitoo_erp.reconciliation.gate import run_reconciliation_gate
        from include.sitoo_erp.staging.db import connect_airflow, sqlalchemy_url_for

        ti = context["ti"]
        summary = ti.xcom_pull(task_ids=self.reconcile_task_id) or {}
        run_id = summary.get("recon_run_id")
        if run_id is None:
            raise AirflowFailException(f"no reconciliation run id from task {self.reconcile_task_id!r}")
        with connect_airflow(self.postgres_conn_id) as conn:
            gate = run_reconciliation_gate(sqlalchemy_url_for(self.postgres_conn_id), conn, int(run_id))
            report = build_report(conn, int(run_id))
            paths = save_report(conn, report, self.report_dir or None)
        self.log.info("%s\nreport: %s", report.text, [str(p) for p in paths])
        to = recipients(self.finance_to)
        link = run_url(self.ui_base_url, ti.dag_id, ti.run_id)
        if to:
            send_report(report, to, self.smtp_conn_id, link)
            self.log.info("report e-mailed to %s: %s", to, report.subject)
        else:
            self.log.warning(
                "no finance recipients configured (finance_to=%r): report not e-mailed", self.finance_to
            )
        out = {**gate.as_dict(), "report_path": str(paths[0]) if paths else None, "subject": report.subject}
        if not gate.success:
            raise AirflowFailException(
                f"reconciliation {summary.get('period')}: {sum(gate.unexplained_by_class.values())} unexplained "
                f"differences {gate.unexplained_by_class}; report {out['report_path'] or '(in the database)'}"
            )
        return out
