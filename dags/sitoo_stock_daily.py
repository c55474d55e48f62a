"""Daily stock: store movements into ERP inventory adjustments, Sitoo vs ERP drift (wiring only)."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, CronTriggerTimetable

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.operators.retry import scheduled_default_args
from include.sitoo_erp.operators.staging import MigrateStagingSchemaOperator
from include.sitoo_erp.operators.stock import (
    SitooStockMovementsOperator,
    StockAdjustmentsOperator,
    StockGateOperator,
    StockSnapshotOperator,
)
from include.sitoo_erp.operators.window import CheckWindowOperator
from include.sitoo_erp.schedule import configured_start_date

# Deployment settings (environment, not Variables: read at parse time without any I/O).
STORE_TIMEZONE = os.environ.get("SITOO_ERP_STORE_TIMEZONE", DEFAULT_TIMEZONE)
RUN_AT = os.environ.get("SITOO_ERP_STOCK_CRON", "30 2 * * *")  # after the stores close, local time

DOC_MD = f"""
### Sitoo stock → ERP, daily

Every store stock movement that is not a sale (stock counts, moves in/out, manual adjustments) reaches
the ERP as **one `inventoryAdjustment` per store per business day**, and every difference between what a
store's Sitoo warehouse holds and what the ERP believes it holds is **reported the next morning**.

**Schedule.** `CronTriggerTimetable("{RUN_AT}", timezone="{STORE_TIMEZONE}", interval=timedelta(days=1))`:
the run fires at {RUN_AT} (cron) in the stores' timezone, after close and after the hourly sales runs of the
night, and its data interval is the **24 hours before** (a real one-day interval, not the zero-width one a
bare cron string gives on Airflow 3). The business day is the local date the interval starts on; each
store's movement window is that date 00:00-24:00 in the store's own timezone
(`map_store_location.timezone`), so DST days (23/25 h) are right. A trigger timetable (not
`CronDataIntervalTimetable`) lets the run hour differ from the day boundary. Set the hour with the
environment variable `SITOO_ERP_STOCK_CRON` and the zone with `SITOO_ERP_STORE_TIMEZONE`.

**Backfill safe.** `airflow backfill create --dag-id sitoo_stock_daily --from-date 2026-11-16 --to-date 2026-11-22`.
Adjustments are upserts under `SITOO-ADJ-{{store}}-{{yyyymmdd}}`: a re-run or backfill of a day updates the
same document, never a second one. One run at a time (`max_active_runs=1`). Stock levels have no
"as of" in either API, so a backfilled day does not overwrite drift history once a later day has a snapshot.

| task | what it does | on failure |
|---|---|---|
| `check_window` | fails a run dated before the DAG's start date (env `SITOO_ERP_START_DATE`), which Airflow would otherwise "succeed" with no task run | not retried: set the date earlier and redeploy |
| `migrate_staging` | staging schema to the latest migration | retried |
| `extract_movements` | Sitoo warehouse transactions of store warehouses from the day's start: types other than sales (30) and refunds (40) staged per line in `stock_movement` | retried |
| `post_adjustments` | per store and day, the signed sum per SKU as `adjustQtyBy`; account from `map_document_item` purpose `stock_adjustment_account`; unknown SKUs / unmapped stores quarantined with the exact key (`stock:ST001:20261116:sku:SKU-1`), the rest post; earlier days with quarantined lines are retried; pool `erp_api` | retried; what posted stays posted |
| `snapshot_and_compare` | streams Sitoo warehouse items and the ERP's on-hand (SuiteQL) into PostgreSQL with COPY; drift per location and SKU = Sitoo - (ERP - unposted finalised sales/returns + movements not yet in the ERP), in units and value (Sitoo `moneytotal/decimaltotal`) | retried |
| `stock_gate` | Great Expectations suite `stock_drift`: SKU in both systems, drift within tolerance (Variables `sitoo_erp_stock_unit_tolerance`, `sitoo_erp_stock_value_tolerance`), no unexplained negative on-hand, the day's movements in the ERP; failures → exceptions + **drift report e-mail** to `sitoo_erp_alert_recipients`, only when a failing cause is new or changed since the last run (an unchanged set is in the 07:00 digest). It **never writes stock**: drift is reported, not "fixed" | not retried |

**Connections:** `sitoo_default`, `netsuite_default`, `sitoo_erp_db`, `smtp_default`. **Pools:** `erp_api`,
`sitoo_api`. History: `stock_drift` (per location/SKU) and `stock_drift_location` (per location, the trend).
"""

with DAG(
    dag_id="sitoo_stock_daily",
    description="Store stock movements into ERP adjustments; Sitoo vs ERP drift per location and SKU",
    schedule=CronTriggerTimetable(RUN_AT, timezone=STORE_TIMEZONE, interval=timedelta(days=1)),
    start_date=None,  # go-live is check_window's: env SITOO_ERP_START_DATE (include/sitoo_erp/schedule.py)
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args=scheduled_default_args(retry_delay=timedelta(minutes=5)),
    tags=["sitoo", "erp", "stock"],
    doc_md=DOC_MD,
) as dag:
    check = CheckWindowOperator(task_id="check_window", go_live=configured_start_date(STORE_TIMEZONE))
    migrate = MigrateStagingSchemaOperator(task_id="migrate_staging")
    movements = SitooStockMovementsOperator(
        task_id="extract_movements", store_timezone=STORE_TIMEZONE, pool="sitoo_api"
    )
    adjust = StockAdjustmentsOperator(
        task_id="post_adjustments", store_timezone=STORE_TIMEZONE, pool="erp_api"
    )
    snapshot = StockSnapshotOperator(
        task_id="snapshot_and_compare", store_timezone=STORE_TIMEZONE, pool="erp_api"
    )
    gate = StockGateOperator(task_id="stock_gate", store_timezone=STORE_TIMEZONE)
    check >> migrate >> movements >> adjust >> snapshot >> gate
