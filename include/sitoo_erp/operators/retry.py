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

# Airflow 3.3 reads ``retry_exponential_backoff`` as a *multiplier*: ``True`` is 1.0, i.e. no backoff
# at all. 2.0 doubles the wait per try (2 → 4 min for the hourly DAG) so a restarting database or an
# ERP outage gets room to come back before the last try is spent.
BACKOFF_MULTIPLIER = 2.0


def scheduled_default_args(retry_delay: timedelta, owner: str = "data-platform") -> dict:
    """``default_args`` of the scheduled ledger DAGs: two retries on transient errors, doubling waits."""
    return {
        "owner": owner,
        "retries": 2,
        "retry_policy": TRANSIENT_ONLY,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": BACKOFF_MULTIPLIER,
    }


# The three on-demand operations DAGs (replay, fix mappings, decide): run by people, so one retry
# after a minute for an outage and nothing else.
OPERATIONS_DEFAULT_ARGS = {
    "owner": "retail-ops",
    "retries": 1,
    "retry_policy": TRANSIENT_ONLY,
    "retry_delay": timedelta(minutes=1),
}
