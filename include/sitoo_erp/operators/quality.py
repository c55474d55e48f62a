"""The quality gate as an operator: Great Expectations suites before any posting task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from include.sitoo_erp.notify.addressing import page_url, recipients, run_url
from include.sitoo_erp.operators.base import ErpAdapterMixin, SitooErpOperator
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID


class QualityGateOperator(ErpAdapterMixin, SitooErpOperator):
    """Validate the ready batch; quarantine failing receipts by rule; e-mail when a suite failed.

    Clean receipts stay ready and the run goes on. The mail goes out once per new cause: the gate
    claims the causes no mail has announced yet in its own transaction, so a receipt failing again
    next hour, or in a concurrent run of a backfill, is not news. If more than ``systemic_share`` of
    the new receipts fails (a broken mapping, an ERP outage), nothing is quarantined, the task fails
    without retry, the posting task never runs, and the mail (once per systemic cause) says which
    rule, keys and owner to fix. Data-quality failures are not retried: re-running the same
    batch gives the same answer.

    The mail is sent through the smtp provider's ``SmtpHook`` — the transport ``SmtpNotifier``
    uses — with the body already rendered and escaped: ``SmtpNotifier`` would render the body
    again as a Jinja template, evaluating any ``{{ … }}`` that came from POS data.

    :param postgres_conn_id: the staging database.
    :param suites: the GX suites to run (default: all receipt suites).
    :param systemic_share: share of new receipts failing above which the gate stops posting instead
        of quarantining (a systemic cause).
    :param alert_to: alert recipients, a list or comma-separated (templated).
    :param smtp_conn_id: the Airflow SMTP connection.
    :param ui_base_url: Airflow UI address for the links in the mail (templated).
    :param erp_conn_id: ERP connection to look up SKUs first seen after the item refresh; None to
        trust the refresh task alone.
    :param erp_adapter: which ERP adapter (``netsuite``).
    """

    template_fields: Sequence[str] = ("alert_to", "ui_base_url")
    ui_color = "#fef7e0"

    def __init__(
        self,
        *,
        postgres_conn_id: str = DEFAULT_CONN_ID,
        suites: Sequence[str] | None = None,
        systemic_share: float = 0.2,
        alert_to: str | Sequence[str] = "{{ var.value.get('sitoo_erp_alert_recipients', '') }}",
        smtp_conn_id: str = "smtp_default",
        ui_base_url: str = "{{ var.value.get('sitoo_erp_ui_base_url', 'http://localhost:8080') }}",
        erp_conn_id: str | None = "netsuite_default",
        erp_adapter: str = "netsuite",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        if not 0 < systemic_share <= 1:
            raise ValueError(f"systemic_share must be in (0, 1], got {systemic_share}")
        self.postgres_conn_id = postgres_conn_id
        self.suites = list(suites) if suites else None
        self.systemic_share = systemic_share
        self.alert_to = alert_to
        self.smtp_conn_id = smtp_conn_id
        self.ui_base_url = ui_base_url
        self.erp_conn_id = erp_conn_id  # None: trust the refresh task alone (one run at a time)
        self.erp_adapter = erp_adapter

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.notify.gate_alert import GateAlertNotifier
        from include.sitoo_erp.quality.gate import GateResult, run_gate
        from include.sitoo_erp.staging.db import connect_airflow, sqlalchemy_url_for

        ti = context["ti"]
        to = recipients(self.alert_to)

        def alert(result: GateResult) -> None:
            # Called inside the gate's transaction, which claimed the causes no e-mail announced yet
            # (a receipt failing again next hour, or in a concurrent run, is not news). If sending
            # fails, the claim rolls back with the rest and the next run announces them.
            if not to:
                self.log.warning(
                    "a suite failed but no alert recipients are configured (alert_to=%r)", self.alert_to
                )
                return
            notifier = GateAlertNotifier(to, smtp_conn_id=self.smtp_conn_id, owner_by_kind=owners)
            subject, _ = notifier.send(
                result,
                run_url(self.ui_base_url, ti.dag_id, ti.run_id, ti.task_id),
                page_url(str(self.ui_base_url or "")),
            )
            self.log.info("alert e-mail sent to %s: %s", to, subject)

        prepare = None
        if self.erp_conn_id:
            from datetime import timedelta

            from include.sitoo_erp.posting.mapping import refresh_item_cache

            erp = self.erp

            def prepare(conn):  # SKUs of receipts another run made ready since our refresh task
                return refresh_item_cache(conn, erp, max_age=timedelta(hours=6))

        with connect_airflow(self.postgres_conn_id) as conn:
            owners: dict[str, str] = dict(
                conn.execute("select kind, owner from sitoo_erp.exception_owner").fetchall()
            )
            result = run_gate(
                sqlalchemy_url_for(self.postgres_conn_id),
                conn,
                suites=self.suites,
                systemic_share=self.systemic_share,
                run_label=f"{ti.dag_id} {ti.run_id}",
                dag_id=ti.dag_id,
                alert=alert,
                prepare=prepare,
            )
        summary = result.summary()
        self.log.info(
            "gate: batch %s, failed %s, systemic %s, per rule %s, new causes %s",
            result.batch_size,
            result.failed_receipts,
            result.systemic,
            result.rule_counts,
            result.new_causes,
        )
        summary["new_exceptions"] = result.new_causes
        if result.systemic:
            from include.sitoo_erp.notify.gate_alert import systemic_message

            raise AirflowFailException(systemic_message(result, owners))
        return summary
