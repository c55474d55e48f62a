"""Operators for ops work: apply a fix from a trigger form, digest and drift alerts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from include.sitoo_erp.notify.addressing import owner_recipients, recipients, run_url
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID

MAPPING_ACTIONS = ("map_sku_item", "map_store_location", "map_tender_payment", "map_vat_tax_code")
ACTIONS = (*MAPPING_ACTIONS, "ignore_exception", "resolve_exception", "replay_only")


def actor_of(context: Context, named: str | None) -> str:
    """Who made the change: the Airflow user who triggered the run (authenticated), and the person
    the form names if that is someone else (``"alice for bob"``)."""
    dag_run = context.get("dag_run")
    user = getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
    if user and named and named != user:
        return f"{user} for {named}"
    return str(user or named or "airflow")


class ApplyOpsFixOperator(BaseOperator):
    """Apply one fix from the replay DAG's trigger form (audited), before the batch is re-posted.

    ``action`` is one of: ``map_sku_item``, ``map_store_location``, ``map_tender_payment``,
    ``map_vat_tax_code`` (key + values), ``ignore_exception`` / ``resolve_exception``
    (exception_id + reason), or ``replay_only``.
    """

    template_fields: Sequence[str] = ("action", "key", "values", "exception_id", "reason", "changed_by")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        action: str = "{{ params.action }}",
        key: str = "{{ params.key }}",
        values: Any = "{{ params['values'] | tojson }}",
        exception_id: Any = "{{ params.exception_id }}",
        reason: str = "{{ params.reason }}",
        changed_by: str = "{{ params.changed_by }}",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.action, self.key, self.values = action, key, values
        self.exception_id, self.reason, self.changed_by = exception_id, reason, changed_by
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Context) -> dict:
        import json

        from include.sitoo_erp.operations.actions import (
            ActionError,
            ignore_exception,
            resolve_exception,
            upsert_mapping,
        )
        from include.sitoo_erp.staging.db import connect_airflow

        action = str(self.action or "").strip()
        if action not in ACTIONS:
            raise AirflowFailException(f"action must be one of {list(ACTIONS)}, got {action!r}")
        actor = actor_of(context, None if self.changed_by in (None, "", "None") else str(self.changed_by))
        values = self.values
        if isinstance(values, str):
            values = json.loads(values or "{}") if values not in ("None", "") else {}
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                if action in MAPPING_ACTIONS:
                    audit_id = upsert_mapping(
                        conn,
                        action,
                        str(self.key),
                        values or {},
                        actor,
                        "replay_dag",
                        note=str(self.reason or "") or None,
                    )
                elif action in ("ignore_exception", "resolve_exception"):
                    if self.exception_id in (None, "", "None"):
                        raise ActionError(f"{action}: exception_id is required")
                    fn = ignore_exception if action == "ignore_exception" else resolve_exception
                    audit_id = fn(conn, int(self.exception_id), str(self.reason or ""), actor, "replay_dag")
                else:
                    audit_id = None
        except ActionError as err:
            raise AirflowFailException(str(err)) from None
        self.log.info("applied %s by %s (audit %s)", action, actor, audit_id)
        return {"action": action, "actor": actor, "audit_id": audit_id}


class _OpsMailOperator(BaseOperator):
    template_fields: Sequence[str] = ("alert_to", "owner_recipients", "ui_base_url")

    def __init__(
        self,
        *,
        postgres_conn_id: str = DEFAULT_CONN_ID,
        alert_to: Any = "{{ var.value.get('sitoo_erp_alert_recipients', '') }}",
        owner_recipients: Any = "{{ var.value.get('sitoo_erp_owner_recipients', '{}') }}",
        ui_base_url: str = "{{ var.value.get('sitoo_erp_ui_base_url', 'http://localhost:8080') }}",
        smtp_conn_id: str = "smtp_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.alert_to = alert_to
        self.owner_recipients = owner_recipients
        self.ui_base_url = ui_base_url
        self.smtp_conn_id = smtp_conn_id

    def recipients_for(self, owner: str) -> list[str]:
        """The owner's own list (variable ``sitoo_erp_owner_recipients``), else the general one."""
        return owner_recipients(self.owner_recipients).get(owner) or recipients(self.alert_to)


class ExceptionDigestOperator(_OpsMailOperator):
    """One e-mail per owning team listing its open exceptions; nothing when nothing is open."""

    def execute(self, context: Context) -> dict:
        from datetime import UTC, datetime

        from include.sitoo_erp.operations.alerts import digest, render_digest, send_mail
        from include.sitoo_erp.staging.db import connect_airflow

        with connect_airflow(self.postgres_conn_id) as conn:
            digests = digest(conn)
        now = datetime.now(UTC)
        sent = {}
        for d in digests:
            to = self.recipients_for(d.owner)
            if not to:
                self.log.warning("no recipients for owner %s (%d open)", d.owner, d.total)
                continue
            subject, html = render_digest(d, str(self.ui_base_url), now)
            send_mail(self.smtp_conn_id, to, subject, html)
            sent[d.owner] = d.total
        self.log.info("digest sent: %s", sent or "nothing open")
        return {"sent": sent}


class ExceptionRateWatchOperator(_OpsMailOperator):
    """Raise a jump in new exceptions per store or kind against its own trailing baseline."""

    def __init__(
        self,
        *,
        factor: float = 3.0,
        min_count: int = 5,
        baseline_days: int = 7,
        quiet_hours: float = 6.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.factor, self.min_count, self.baseline_days, self.quiet_hours = (
            factor,
            min_count,
            baseline_days,
            quiet_hours,
        )

    def execute(self, context: Context) -> dict:
        from dataclasses import asdict
        from datetime import timedelta

        from include.sitoo_erp.operations.alerts import claim_alert, rate_jumps, render_rate_jumps, send_mail
        from include.sitoo_erp.staging.db import connect_airflow

        ti = context["ti"]
        with connect_airflow(self.postgres_conn_id) as conn:
            now = conn.execute("select now()").fetchone()[0]
            jumps = rate_jumps(conn, now, self.baseline_days, self.factor, self.min_count)
            fresh = [
                j for j in jumps if claim_alert(conn, j.key, asdict(j), timedelta(hours=self.quiet_hours))
            ]
        if fresh:
            link = run_url(self.ui_base_url, ti.dag_id, ti.run_id)
            subject, html = render_rate_jumps(fresh, str(self.ui_base_url), link)
            to = sorted({r for j in fresh for r in self.recipients_for(j.owner)})
            if to:
                send_mail(self.smtp_conn_id, to, subject, html)
            self.log.warning("%s", subject)
        return {"jumps": [asdict(j) for j in jumps], "alerted": [j.key for j in fresh]}
