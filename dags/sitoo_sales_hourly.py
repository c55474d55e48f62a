"""Hourly sales: finalised Sitoo sales and returns into the ERP ledger (wiring only)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable

from include.sitoo_erp.operators.staging import MigrateStagingSchemaOperator, SitooOrdersToStagingOperator

DOC_MD = """
### Sitoo sales → ERP, hourly

**Window.** Each run covers one UTC hour `[data_interval_start, data_interval_end)` and starts
when that hour has ended. Backfill any range from the UI (DAG → *Backfill*) or
`airflow backfill create --dag-id sitoo_sales_hourly --from-date … --to-date …`; every step is
idempotent, so re-running or clearing a window never duplicates anything.

**Steps.**
1. `migrate_staging` — brings the staging schema (`sitoo_erp.*` in connection `sitoo_erp_db`) to head.
2. `extract_orders` — Sitoo orders by `orderdate` in the window, plus every order above the
   orderid high-water mark (offline tills upload late), plus every order still *held*; raw JSON
   and typed rows land in staging, malformed payloads become exceptions naming order and field.

Classification, mapping, the Great Expectations gate and ERP posting follow in the next steps
of this DAG (see the README's roadmap).

**Connections:** `sitoo_default` (http), `sitoo_erp_db` (postgres). **Pool:** none yet (the ERP
posting tasks will run in pool `erp_api`).
"""

with DAG(
    dag_id="sitoo_sales_hourly",
    description="Finalised Sitoo sales and returns into the ERP, exactly once",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    tags=["sitoo", "erp", "sales"],
    doc_md=DOC_MD,
) as dag:
    migrate = MigrateStagingSchemaOperator(task_id="migrate_staging")
    extract = SitooOrdersToStagingOperator(task_id="extract_orders")
    migrate >> extract
