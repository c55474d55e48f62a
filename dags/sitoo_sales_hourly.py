"""Hourly sales: finalised Sitoo sales and returns into the ERP ledger (wiring only)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable

from include.sitoo_erp.operators.operations import ExceptionRateWatchOperator
from include.sitoo_erp.operators.posting import (
    ClassifyOrdersOperator,
    DailySummaryPostingOperator,
    ErpPostingOperator,
    RefreshErpItemsOperator,
    ResolvePostingIntentsOperator,
    StateLedgerSummaryOperator,
)
from include.sitoo_erp.operators.quality import QualityGateOperator
from include.sitoo_erp.operators.retry import scheduled_default_args
from include.sitoo_erp.operators.staging import MigrateStagingSchemaOperator, SitooOrdersToStagingOperator
from include.sitoo_erp.operators.window import CheckWindowOperator
from include.sitoo_erp.schedule import configured_start_date

DOC_MD = """
### Sitoo sales → ERP ledger, hourly

Every finalised store sale and return reaches the ERP **exactly once**, with the POS's own VAT;
anything that cannot post is named in `sitoo_erp.exception` and in an alert e-mail.

**Window.** Each run covers one UTC hour `[data_interval_start, data_interval_end)` and starts when
that hour has ended. Scheduled runs go one at a time (`max_active_runs=1`, to keep the load calm);
concurrent runs are safe all the same: they coordinate through PostgreSQL locks (README,
*Concurrency*). **Backfill** from the UI (DAG → *Backfill*) or
`airflow backfill create --dag-id sitoo_sales_hourly --from-date 2026-11-01 --to-date 2026-11-02`
(its default concurrency is fine; `--max-active-runs 1` is optional).
Every task is idempotent: re-running, clearing or backfilling never creates a second ERP document
(NetSuite `PUT …/eid:{externalId}` upserts, and the posting log is written as each call succeeds).

| task | what it does | on failure |
|---|---|---|
| `check_window` | fails a run dated before the DAG's start date (env `SITOO_ERP_START_DATE`), which Airflow would otherwise "succeed" with no task run | not retried: set the date earlier and redeploy |
| `migrate_staging` | staging schema `sitoo_erp` to the latest migration | retried |
| `extract_to_staging` | Sitoo orders by `orderdate` in the window + every order above the orderid high-water mark (offline tills upload late) + every *held* order again; raw JSON and typed rows into staging | retried (429/5xx/timeouts are retried inside first) |
| `resolve_posting_intents` | documents whose ERP answer was lost (a posting intent left behind) are looked up in the ERP by externalId: found → recorded as posted (cancelled/changed in Sitoo meanwhile → exception for finance); not found → cleared | retried |
| `classify` | Closed + payment Successful POS orders → *ready*; open/parked/pending → *held*; cancelled, abandoned, bookings → *excluded*; held longer than 4 h in business time (this run's data interval end) → *stalled* exception | retried |
| `refresh_erp_items` | looks the batch's SKUs up in the ERP item master (SuiteQL, cached) | retried |
| `quality_gate` | Great Expectations suites `orphaned_transactions`, `sku_mismatches`, `tax_rounding` on the batch in PostgreSQL; failing receipts quarantined with the rule's name, alert e-mail to `sitoo_erp_alert_recipients`; **more than 20 % failing for new reasons = systemic: fails, posts nothing** (the known quarantine backlog does not count) | not retried (same data, same answer) |
| `post_to_erp` | one `cashSale` per sale, `cashRefund` per return (linked to its sale), POS tax via `taxDetailsOverride`, loyalty as a document discount; bounded by pool `erp_api` | retried; what posted stays posted |
| `post_daily_summaries` | stores in `daily_summary` mode (`sitoo_erp.store_posting_mode`): once a store's business day has closed (+ 6 h), one `cashSale` (`SITOO-D-{store}-{yyyymmdd}`) and one `cashRefund` (`SITOO-DR-…`) for the day, lines per ERP item and tax code, POS VAT per rate; late receipts in numbered supplements (`…-S1`); nothing into a day on/before `sitoo_erp_closed_through` | retried; a document whose answer was lost is re-sent under the same key |
| `summarise` | invariant 1: seen = posted + held + quarantined + excluded, else fails | — |
| `watch_exception_rates` | new exceptions in the last hour per store and per kind vs their own 7-day hourly average; a jump (at least 5 and over 3 times the average) e-mails once per 6 h | runs even if the gate failed (not in a run refused by `check_window`) |

**Quarantined receipts are retried every run**: fix the cause (add the SKU to the ERP or a row to
`sitoo_erp.map_sku_item`, a store/tender/VAT mapping) and the next run posts them and closes their
exceptions. **Connections:** `sitoo_default`, `netsuite_default`, `sitoo_erp_db`, `smtp_default`.
**Pool:** `erp_api` (slots = the NetSuite account's concurrency limit). **Variables:**
`sitoo_erp_alert_recipients`, `sitoo_erp_ui_base_url`.
"""

ERP_WORKERS = 4

with DAG(
    dag_id="sitoo_sales_hourly",
    description="Finalised Sitoo sales and returns into the ERP, exactly once, behind the GX gate",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=None,  # go-live is check_window's: env SITOO_ERP_START_DATE (include/sitoo_erp/schedule.py)
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),
    default_args=scheduled_default_args(retry_delay=timedelta(minutes=2)),
    tags=["sitoo", "erp", "sales"],
    doc_md=DOC_MD,
) as dag:
    check = CheckWindowOperator(task_id="check_window", go_live=configured_start_date("UTC"))
    migrate = MigrateStagingSchemaOperator(task_id="migrate_staging")
    extract = SitooOrdersToStagingOperator(task_id="extract_to_staging", pool="sitoo_api")
    intents = ResolvePostingIntentsOperator(task_id="resolve_posting_intents", pool="erp_api")
    classify = ClassifyOrdersOperator(task_id="classify")
    items = RefreshErpItemsOperator(task_id="refresh_erp_items", pool="erp_api")
    gate = QualityGateOperator(task_id="quality_gate", pool="erp_api")  # looks up late SKUs (rarely)
    post = ErpPostingOperator(task_id="post_to_erp", pool="erp_api", max_workers=ERP_WORKERS)
    # Stores in daily_summary mode: one document per closed store-day, after the same gate.
    post_summaries = DailySummaryPostingOperator(task_id="post_daily_summaries", pool="erp_api")
    summarise = StateLedgerSummaryOperator(task_id="summarise")
    # Runs whatever the gate decided: a jump in new exceptions is news even when posting stops.
    # Whatever the gate decided, but not in a run refused before go-live (check_window failed).
    watch = ExceptionRateWatchOperator(
        task_id="watch_exception_rates", trigger_rule="all_done_min_one_success"
    )
    # Both posting steps take only what the gate passed; a failing one never holds up the other mode.
    check >> migrate >> extract >> intents >> classify >> items >> gate >> [post, post_summaries] >> summarise
    [check, gate] >> watch
