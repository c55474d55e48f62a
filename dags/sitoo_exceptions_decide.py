"""Ignore or resolve exceptions from a trigger form, then re-post what that unblocks at once."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from include.sitoo_erp.operators.operations import DecideExceptionsOperator, repost_now
from include.sitoo_erp.operators.retry import OPERATIONS_DEFAULT_ARGS

DOC_MD = """
### Decide on exceptions and re-post now

For retail ops and finance: close exceptions that will not be fixed (*ignore*) or that were fixed by
hand in the ERP (*resolve*), several at once, with one reason. The form asks exactly that:

| field | |
|---|---|
| `decision` | `ignore` (the gap will not be fixed: the receipt is *excluded* with your reason and stays so) or `resolve` (fixed by hand: the receipt goes through the gate again now) |
| `exception_ids` | the ids from the **Sitoo ERP ops** page, e.g. `[1042, 1043]` |
| `reason` | why (at least 5 characters), kept in `sitoo_erp.audit_log` with who and when |

All or none: an unknown or already closed id fails the first task and nothing changes. Then the run
re-classifies, gates and posts as the hourly DAG does (idempotent upserts).
"""

with DAG(
    dag_id="sitoo_exceptions_decide",
    description="Ignore or resolve exceptions (with a reason) and re-post at once",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=OPERATIONS_DEFAULT_ARGS,
    tags=["sitoo", "erp", "operations"],
    doc_md=DOC_MD,
    params={
        "decision": Param("ignore", type="string", enum=["ignore", "resolve"], description="What to do."),
        "exception_ids": Param(
            type="array",
            items={"type": "integer", "minimum": 1},
            minItems=1,
            description="Exception ids from the operations page, e.g. [1042, 1043].",
        ),
        "reason": Param(type="string", minLength=5, description="Why (required; kept in the audit log)."),
        "changed_by": Param(
            None, type=["null", "string"], description="Your name, if the run is not triggered by you."
        ),
    },
) as dag:
    repost_now(DecideExceptionsOperator(task_id="decide"))
