"""Daily digest of open exceptions, one e-mail per owning team (only when something is open)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.operators.operations import ExceptionDigestOperator
from include.sitoo_erp.operators.retry import scheduled_default_args

DOC_MD = """
### Open exceptions, every morning

At 07:00 (Europe/London) each owning team (`sitoo_erp.exception_owner`: retail ops, finance, data
engineering) gets one e-mail listing its **open** exceptions by kind, with the count, the oldest
age and a link to the exception queue page filtered to that team and kind. Nothing is sent to a
team with nothing open, and nothing at all on a clean day.

Recipients: variable `sitoo_erp_owner_recipients` (JSON, e.g. `{"finance": "controller@example.com",
"retail_ops": "ops@example.com"}`), else `sitoo_erp_alert_recipients`. Links use
`sitoo_erp_ui_base_url`. How to clear each kind: `docs/runbook.md`.
"""

with DAG(
    dag_id="sitoo_exceptions_digest",
    description="Daily e-mail of open exceptions per owning team",
    schedule=CronTriggerTimetable("0 7 * * *", timezone=DEFAULT_TIMEZONE, interval=timedelta(days=1)),
    start_date=pendulum.datetime(2026, 11, 1, tz=DEFAULT_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=scheduled_default_args(retry_delay=timedelta(minutes=5)),
    tags=["sitoo", "erp", "operations"],
    doc_md=DOC_MD,
) as dag:
    ExceptionDigestOperator(task_id="send_digest")
