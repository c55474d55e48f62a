"""Run history in the package's own table: one row per task try, written by the operators.

The operations page showed the last run of each DAG from Airflow's metadata database (DagRun,
TaskInstance, XCom internals): a schema Airflow does not promise, and one more database the page
had to reach. ``task_run`` holds what the page needs — each try's state, times, the numeric counts
the task returned (posted, quarantined, ...) and, for a failure, the exception's class and message.
Rows older than the retention (``operations.task_runs.RETENTION``) are pruned as runs start; the
latest run of each DAG is always kept.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table if not exists sitoo_erp.task_run (
            dag_id text not null,
            run_id text not null,
            task_id text not null,
            map_index integer not null default -1,
            try_number integer not null,
            run_type text,
            logical_date timestamptz,
            data_interval_start timestamptz,
            data_interval_end timestamptz,
            state text not null check (state in ('running', 'success', 'failed', 'skipped')),
            started_at timestamptz not null,
            ended_at timestamptz,
            counts jsonb not null default '{}'::jsonb,
            error text,
            primary key (dag_id, run_id, task_id, map_index, try_number)
        );
        create index if not exists task_run_latest_idx on sitoo_erp.task_run (dag_id, started_at desc);
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists sitoo_erp.task_run")
