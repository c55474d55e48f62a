"""Monthly reconciliation: Sitoo vs ERP vs Z-reports, every difference explained (wiring only)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronTriggerTimetable, Param
from dateutil.relativedelta import relativedelta

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.operators.reconciliation import (
    ReconcileOperator,
    ReconciliationGateOperator,
    SitooPeriodSweepOperator,
)
from include.sitoo_erp.operators.retry import scheduled_default_args
from include.sitoo_erp.operators.staging import MigrateStagingSchemaOperator
from include.sitoo_erp.operators.window import CheckWindowOperator
from include.sitoo_erp.schedule import configured_start_date

RUN_DAY_OF_MONTH = 3  # days after month end the close is reconciled (late uploads and the hourly sync settle)
TIMEZONE = DEFAULT_TIMEZONE

DOC_MD = f"""
### Monthly reconciliation: Sitoo vs ERP vs Z-reports

Proves that the month's store sales in the ERP equal what the tills took, or names every difference
with its cause and owner. Finance receives an e-mail with the summary, the HTML report and a CSV.

**When it runs.** At 06:00 London time on day {RUN_DAY_OF_MONTH} of every month
(`CronTriggerTimetable("0 6 {RUN_DAY_OF_MONTH} * *", interval=relativedelta(months=1))`). Its data
interval is the month-long window ending at the run (e.g. 3 Nov 06:00 → 3 Dec 06:00); the period
reconciled is **the calendar month in which that interval starts — the month that has just closed**
(1 to 30 November for the run of 3 December), by **store business date** in each store's timezone (a
sale at 23:50 on the 30th belongs to November even if it reached Sitoo after midnight).

**Your own range (finance's weekly check).** *Trigger DAG w/ config*: set `date_from` and `date_to`
(inclusive, YYYY-MM-DD; at most 93 days) and optionally `stores` (store external ids such as ST001;
empty = all). Only that range and those stores are reconciled. Leave the dates empty for the closed month.

| task | what it does |
|---|---|
| `check_window` | fails a run dated before the DAG's start date (env `SITOO_ERP_START_DATE`), which Airflow would otherwise "succeed" with no task run |
| `migrate_staging` | staging schema to the latest migration |
| `sweep_sitoo` | every Sitoo order of the period again (late/offline receipts too) + the tills' Z-reports |
| `reconcile` | per store x business day x tax code: Sitoo receipts vs ERP documents (SuiteQL, aggregated in the ERP) vs Z-reports vs the posting log; every difference classified |
| `gate` | Great Expectations suite `reconciliation`: zero unexplained difference; writes the report (database + `sitoo_erp_report_dir`, default `reports/`; relative = under `$SITOO_ERP_HOME`, else `$AIRFLOW_HOME`) and e-mails finance; **fails when anything is unexplained** (not retried) |

**Reading the result.** *Missing in ERP*: a till receipt with no ERP document — explained when it is
quarantined (an open exception names the rule and owner) or held in flight (the next hourly run posts
it); stalled or unknown ones are not. *Blocked: systemic stop*: a receipt ready to post while the
quality gate's systemic stop holds all posting — unexplained until the named cause is fixed and it
posts. *Extra / duplicate in ERP*: a document with our externalId and no
receipt behind it, or a second one for a receipt. *Amount mismatch*: the ERP document differs from what
was posted. *Tax variance*: ERP VAT differs by exactly the recorded tax variance (explained).
*Z-report mismatch*: a till's end-of-day report disagrees with its receipts. History is in
`sitoo_erp.reconciliation_run` / `reconciliation_line` (comparable month to month).
Re-running is safe: each run adds a new reconciliation run; nothing is written to the ERP.

**Connections:** `sitoo_default`, `netsuite_default`, `sitoo_erp_db`, `smtp_default`. **Pools:**
`sitoo_api`, `erp_api`. **Variables:** `sitoo_erp_finance_recipients` (else `sitoo_erp_alert_recipients`),
`sitoo_erp_report_dir`, `sitoo_erp_ui_base_url`.
"""

with DAG(
    dag_id="sitoo_reconciliation_monthly",
    description="Sitoo vs ERP vs Z-reports for the closed month (or a chosen range): every difference explained",
    schedule=CronTriggerTimetable(
        f"0 6 {RUN_DAY_OF_MONTH} * *", timezone=TIMEZONE, interval=relativedelta(months=1)
    ),
    start_date=None,  # go-live is check_window's: env SITOO_ERP_START_DATE (include/sitoo_erp/schedule.py)
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=scheduled_default_args(retry_delay=timedelta(minutes=5), owner="finance-systems"),
    params={
        "date_from": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First business day (empty = closed month)",
        ),
        "date_to": Param(
            None, type=["null", "string"], format="date", description="Last business day, inclusive"
        ),
        # Optional like the dates: the trigger form marks a field required unless its type allows null.
        "stores": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            description="Store external ids, one per line (empty = all stores)",
        ),
    },
    tags=["sitoo", "erp", "reconciliation", "finance"],
    doc_md=DOC_MD,
) as dag:
    check = CheckWindowOperator(task_id="check_window", go_live=configured_start_date(TIMEZONE))
    migrate = MigrateStagingSchemaOperator(task_id="migrate_staging")
    sweep = SitooPeriodSweepOperator(task_id="sweep_sitoo", pool="sitoo_api", timezone=TIMEZONE)
    compare = ReconcileOperator(task_id="reconcile", pool="erp_api", timezone=TIMEZONE)
    gate = ReconciliationGateOperator(task_id="gate", reconcile_task_id="reconcile")
    check >> migrate >> sweep >> compare >> gate
