"""The base of every operator of the package: each task try records itself in ``sitoo_erp.task_run``.

The operations page shows the last run of each DAG from that table (``operations/queries.py``), so
it needs nothing from Airflow's metadata database. A subclass writes a plain ``execute``; the class
wraps it (as Airflow's own metaclass wraps ``execute`` with its safeguard) to record the start, then
the outcome: ``success`` with the numbers the task returned, ``failed`` with the exception's class and
message, ``skipped``. A record that cannot be written (database down, schema not migrated yet) is a
warning in the task log, never the task's failure, and the task's own exception always propagates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from include.sitoo_erp.staging.db import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from include.sitoo_erp.erp.adapter import ErpAdapter
    from include.sitoo_erp.http_retry import RetryPolicy
    from include.sitoo_erp.sitoo.hook import SitooHook


class SitooErpOperator(BaseOperator):
    """Records each try of the task in ``sitoo_erp.task_run`` (database: ``postgres_conn_id``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "_records_task_run", False):
            setattr(cls, "execute", _recorded(execute))  # noqa: B010 (mypy: no assignment to a method)

    def _task_run_conn_id(self) -> str:
        return str(getattr(self, "postgres_conn_id", None) or DEFAULT_CONN_ID)

    def _record(self, what: str, write: Callable[..., Any]) -> None:
        """Run one record write on its own short connection; a failure is only logged."""
        from include.sitoo_erp.staging.db import connect_airflow

        try:
            with connect_airflow(self._task_run_conn_id()) as conn:
                write(conn)
        except Exception as err:  # the run history must never decide the task's outcome
            self.log.warning(
                "run history: could not record the %s of this try in sitoo_erp.task_run: %s", what, err
            )


class SitooHookMixin:
    """``hook``: the operator's Sitoo API client on ``sitoo_conn_id``, built on first use (the
    providers' shape: no connection lookup at parse time, one client per task try)."""

    sitoo_conn_id: str
    page_size: int

    @cached_property
    def hook(self) -> SitooHook:
        from include.sitoo_erp.sitoo.hook import SitooHook

        return SitooHook(sitoo_conn_id=self.sitoo_conn_id, page_size=self.page_size)


class ErpAdapterMixin:
    """``erp``: the operator's ERP adapter (``erp_adapter`` on ``erp_conn_id``) from the one factory,
    built on first use, one per task try; ``erp_retry`` lets an operator give every ERP call its own
    retry policy (the posting operators: the task's ``retry_attempts``/``retry_max_wait``)."""

    erp_conn_id: str | None
    erp_adapter: str

    def erp_retry(self) -> RetryPolicy | None:
        return None  # the adapter's default policy

    @cached_property
    def erp(self) -> ErpAdapter:
        from include.sitoo_erp.erp import get_erp_adapter

        if not self.erp_conn_id:
            raise ValueError(f"{type(self).__name__}: no erp_conn_id, so no ERP to talk to")
        return get_erp_adapter(self.erp_conn_id, self.erp_adapter, retry=self.erp_retry())


def _task_try(context: Any) -> Any:
    from include.sitoo_erp.operations.task_runs import TaskTry

    ti = context["ti"]
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    return TaskTry(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=int(getattr(ti, "try_number", None) or 1),
        map_index=int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
        run_type=str(getattr(run_type, "value", run_type)) if run_type is not None else None,
        logical_date=context.get("logical_date"),
        data_interval_start=context.get("data_interval_start"),
        data_interval_end=context.get("data_interval_end"),
    )


def _recorded(execute: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(execute)
    def wrapper(self: SitooErpOperator, *args: Any, **kwargs: Any) -> Any:
        from include.sitoo_erp.operations import task_runs

        context = kwargs.get("context", args[0] if args else None)
        try:
            task = _task_try(context)
        except Exception as err:  # not run by Airflow (a test calling execute directly): nothing to record
            self.log.debug("run history: no task instance in the context (%s); not recorded", err)
            return execute(self, *args, **kwargs)
        started = datetime.now(UTC)
        self._record("start", lambda conn: task_runs.record_start(conn, task, started))
        try:
            result = execute(self, *args, **kwargs)
        except BaseException as error:
            state = task_runs.SKIPPED if isinstance(error, AirflowSkipException) else task_runs.FAILED
            message = None if state == task_runs.SKIPPED else task_runs.error_text(error)
            ended = datetime.now(UTC)
            self._record(
                "failure",
                lambda conn: task_runs.record_end(conn, task, started, ended, state, error=message),
            )
            raise
        ended = datetime.now(UTC)
        counts = task_runs.numeric_counts(result)
        self._record(
            "outcome",
            lambda conn: task_runs.record_end(conn, task, started, ended, task_runs.SUCCESS, counts),
        )
        return result

    wrapper._records_task_run = True  # type: ignore[attr-defined]
    return wrapper
