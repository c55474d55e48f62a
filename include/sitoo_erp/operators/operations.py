"""Operators for ops work: apply a fix from a trigger form, digest and drift alerts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from include.sitoo_erp.notify.addressing import owner_recipients, recipients, run_url
from include.sitoo_erp.operators.base import ErpAdapterMixin, SitooErpOperator
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID
from include.sitoo_erp.staging.mappings import BY_PARAM, MAPPING_TABLES

# The form's lists as one JSON value, rendered at run time (built here, not in the default argument:
# mypy misreads a comprehension there, python/mypy#9346).
MAPPINGS_TEMPLATE = "{{ {" + ", ".join(f"'{p}': params.get('{p}')" for p in BY_PARAM) + "} | tojson }}"
_ID = {"type": "string", "pattern": "^[0-9]+$", "description": "ERP internal id (digits)"}


def mapping_row_schema(param: str) -> dict[str, Any]:
    """JSON schema of one row of a mapping list: Airflow checks it when the run is triggered
    (trigger form or REST API, HTTP 400 on a missing field); the ERP check runs in the task."""
    m = BY_PARAM[param]
    key_field, required, optional = m.form_key, m.required, m.optional
    props: dict[str, Any] = {key_field: {"type": "string", "minLength": 1}}
    if key_field == "vat_rate":
        props[key_field] = {"type": ["string", "number"], "pattern": "^[0-9]+([.][0-9]+)?$"}
    for name in required:
        props[name] = dict(_ID)
    for name in optional:
        props[name] = (
            {"type": "boolean"}
            if name in ("is_gift_card", "via_journal")
            else {"type": ["null", "string"]}
            if name == "timezone"
            else {"type": ["null", "string"], "pattern": "^[0-9]+$"}
        )
    return {
        "type": "object",
        "required": [key_field, *required],
        "properties": props,
        "additionalProperties": False,
    }


def mapping_changes(form: Mapping[str, Any]) -> list:
    """The mapping rows of a trigger form as ``MappingChange`` objects (table, key, values)."""
    from include.sitoo_erp.operations.mapping_check import MappingChange

    changes = []
    for m in MAPPING_TABLES:
        for row in form.get(m.param) or []:
            row = dict(row)
            key = row.pop(m.form_key, "")
            changes.append(MappingChange(m.table, str(key), {k: v for k, v in row.items() if v is not None}))
    return changes


def actor_of(context: Context, named: str | None) -> str:
    """Who made the change: the Airflow user who triggered the run (authenticated), and the person
    the form names if that is someone else (``"alice for bob"``)."""
    dag_run = context.get("dag_run")
    user = getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
    if user and named and named != user:
        return f"{user} for {named}"
    return str(user or named or "airflow")


def _named(value: Any) -> str | None:
    return None if value in (None, "", "None") else str(value)


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value not in ("", "None", "null") else None
    return value


class SaveMappingsOperator(ErpAdapterMixin, SitooErpOperator):
    """Save the trigger form's mappings (checked against the ERP's master data, all or none, audited)
    and close the exceptions they fix, before the batch is re-posted.

    A mapping the ERP refuses (unknown or inactive item, location, payment method or tax code; a tax
    code of another rate) fails this task with the key, field and rule, and nothing is saved.

    :param mappings: the form's mapping lists as JSON, one list per mapping table (templated).
    :param reason: why, kept in the audit log (templated).
    :param changed_by: the person the change is made for, if not the triggering user (templated).
    :param postgres_conn_id: the staging database.
    :param erp_conn_id: the ERP connection the mappings are checked against; ``erp_adapter`` names
        the adapter behind it.
    """

    template_fields: Sequence[str] = ("mappings", "reason", "changed_by")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        mappings: Any = MAPPINGS_TEMPLATE,
        reason: Any = "{{ params.get('reason') }}",
        changed_by: Any = "{{ params.get('changed_by') }}",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.mappings, self.reason, self.changed_by = mappings, reason, changed_by
        self.postgres_conn_id, self.erp_conn_id, self.erp_adapter = postgres_conn_id, erp_conn_id, erp_adapter

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.operations.actions import ActionError, save_mappings
        from include.sitoo_erp.staging.db import connect_airflow

        actor = actor_of(context, _named(self.changed_by))
        changes = mapping_changes(_loads(self.mappings) or {})
        erp = self.erp
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                saved = save_mappings(conn, erp, changes, actor, "replay_dag", note=_named(self.reason))
        except ActionError as err:
            raise AirflowFailException(str(err)) from None
        finally:
            close = getattr(erp, "close", None)
            if close is not None:
                close()
        for s in saved:
            self.log.info(
                "saved %s %s by %s (audit %s), closed %d exception(s)",
                s["table"],
                s["key"],
                actor,
                s["audit_id"],
                len(s["closed"]),
            )
        return {"saved": len(saved), "closed": sum(len(s["closed"]) for s in saved), "actor": actor}


class DecideExceptionsOperator(SitooErpOperator):
    """Ignore or resolve the form's exceptions with one reason (all or none, audited).

    :param decision: ``ignore`` or ``resolve`` (templated).
    :param exception_ids: the exception ids, a JSON list (templated).
    :param reason: why, kept on each exception and in the audit log (templated).
    :param changed_by: the person the decision is made for, if not the triggering user (templated).
    :param postgres_conn_id: the staging database.
    """

    template_fields: Sequence[str] = ("decision", "exception_ids", "reason", "changed_by")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        decision: Any = "{{ params.decision }}",
        exception_ids: Any = "{{ params.exception_ids | tojson }}",
        reason: Any = "{{ params.reason }}",
        changed_by: Any = "{{ params.get('changed_by') }}",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.decision, self.exception_ids, self.reason = decision, exception_ids, reason
        self.changed_by, self.postgres_conn_id = changed_by, postgres_conn_id

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.operations.actions import ActionError, decide_exceptions
        from include.sitoo_erp.staging.db import connect_airflow

        actor = actor_of(context, _named(self.changed_by))
        ids = [int(i) for i in (_loads(self.exception_ids) or [])]
        try:
            with connect_airflow(self.postgres_conn_id) as conn:
                audit_ids = decide_exceptions(
                    conn, str(self.decision), ids, str(_named(self.reason) or ""), actor, "replay_dag"
                )
        except ActionError as err:
            raise AirflowFailException(str(err)) from None
        self.log.info("%s %s by %s (audit %s)", self.decision, ids, actor, audit_ids)
        return {"decided": len(audit_ids), "actor": actor}


def repost_now(upstream: BaseOperator | None = None) -> BaseOperator:
    """Inside a DAG: re-classify, look up new SKUs, gate and post now, as the hourly DAG does
    (same idempotent upserts, so it can run beside it). Returns the last task."""
    from include.sitoo_erp.operators.posting import (
        ClassifyOrdersOperator,
        ErpPostingOperator,
        RefreshErpItemsOperator,
        StateLedgerSummaryOperator,
    )
    from include.sitoo_erp.operators.quality import QualityGateOperator

    classify = ClassifyOrdersOperator(task_id="classify", business_now=None)  # on demand: the Sitoo clock
    items = RefreshErpItemsOperator(task_id="refresh_erp_items", pool="erp_api")
    gate = QualityGateOperator(task_id="quality_gate")
    post = ErpPostingOperator(task_id="post_to_erp", pool="erp_api")
    summarise = StateLedgerSummaryOperator(task_id="summarise")
    if upstream is not None:
        upstream >> classify
    classify >> items >> gate >> post >> summarise
    return summarise


class _OpsMailOperator(SitooErpOperator):
    """An operations e-mail to the owning teams.

    :param postgres_conn_id: the staging database.
    :param alert_to: general recipients, a list or comma-separated (templated).
    :param owner_recipients: JSON object of recipients per owning team (Variable
        ``sitoo_erp_owner_recipients``); a team not in it gets ``alert_to`` (templated).
    :param ui_base_url: Airflow UI address for the links in the mail (templated).
    :param smtp_conn_id: the Airflow SMTP connection.
    """

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

        from include.sitoo_erp.notify.mail import send_mail
        from include.sitoo_erp.operations.alerts import digest, render_digest
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

        from include.sitoo_erp.notify.mail import send_mail
        from include.sitoo_erp.operations.alerts import claim_alert, rate_jumps, render_rate_jumps
        from include.sitoo_erp.staging.db import connect_airflow, one_row

        ti = context["ti"]
        with connect_airflow(self.postgres_conn_id) as conn:
            now = one_row(conn.execute("select now()"))[0]
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
