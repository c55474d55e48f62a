"""Retries on transient errors only (Airflow 3.3 retry policies).

An ERP or Sitoo outage, a dropped connection or a database restart is worth another try; refused
credentials, a payload that breaks the contract or an invalid form is not — retrying only delays
the alert. The HTTP hooks already retry each call (429/5xx/timeouts); this decides what a task
failure means.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

TRANSIENT_ONLY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=["include.sitoo_erp.http_retry.TransientApiError", "psycopg.OperationalError"],
            action=RetryAction.RETRY,
            reason="API, network or database outage: retry",
        ),
        RetryRule(
            exception="include.sitoo_erp.http_retry.AuthError",
            action=RetryAction.FAIL,
            reason="credentials refused: fix the Airflow connection, then clear the task",
        ),
        RetryRule(
            exception=[
                "include.sitoo_erp.http_retry.ApiError",
                "include.sitoo_erp.sitoo.models.SitooPayloadError",
                "include.sitoo_erp.operations.actions.ActionError",
            ],
            action=RetryAction.FAIL,
            reason="permanent error: a retry cannot change the answer",
        ),
    ],
    default=RetryAction.DEFAULT,
)

# The three on-demand operations DAGs (replay, fix mappings, decide): run by people, so one retry
# after a minute for an outage and nothing else.
OPERATIONS_DEFAULT_ARGS = {
    "owner": "retail-ops",
    "retries": 1,
    "retry_policy": TRANSIENT_ONLY,
    "retry_delay": timedelta(minutes=1),
}
