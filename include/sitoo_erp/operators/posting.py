"""Operators of the hourly job after extraction: classify, resolve ERP items, post, summarise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from include.sitoo_erp.operators.base import ErpAdapterMixin, SitooErpOperator
from include.sitoo_erp.staging.db import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from include.sitoo_erp.http_retry import RetryPolicy
    from include.sitoo_erp.posting.documents import ReturnDocument

_RETURN_DOCUMENTS: dict[str, ReturnDocument] = {"cash_refund": "cash_refund", "credit_memo": "credit_memo"}


def check_return_document(return_document: str) -> ReturnDocument:
    """Fail at parse time (not at the first posting run) on a return document NetSuite lacks."""
    if return_document not in _RETURN_DOCUMENTS:
        raise ValueError(f"return_document must be 'cash_refund' or 'credit_memo', got {return_document!r}")
    return _RETURN_DOCUMENTS[return_document]


class _TaskRetryErp(ErpAdapterMixin):
    """The posting operators' ERP adapter: every call with the task's own retry policy."""

    retry_attempts: int
    retry_max_wait: float

    def erp_retry(self) -> RetryPolicy:
        from include.sitoo_erp.http_retry import RetryPolicy

        return RetryPolicy(attempts=self.retry_attempts, max_wait=self.retry_max_wait)


def closed_through_and_now(
    closed_through: str | None, business_now: Any
) -> tuple[date | None, datetime | None]:
    """The rendered ``closed_through`` Variable and ``business_now`` as values (None: not given;
    a manual run of an unscheduled DAG has no data interval and falls back to the Sitoo clock)."""
    from include.sitoo_erp.operators.staging import as_datetime

    closed = (closed_through or "").strip()
    try:
        closed_date = date.fromisoformat(closed) if closed else None
    except ValueError as err:
        raise AirflowFailException(
            f"closed_through (Variable sitoo_erp_closed_through) must be an ISO date such as 2026-10-31, "
            f"got {closed!r}"
        ) from err
    value = business_now if business_now not in (None, "", "None") else None
    return closed_date, (as_datetime(value, "business_now") if value is not None else None)


class ResolvePostingIntentsOperator(ErpAdapterMixin, SitooErpOperator):
    """Settle the posting intents a lost ERP answer left behind, by reading the ERP by externalId.

    Runs before ``classify``: a receipt the ERP already holds is recorded as posted (and raised for
    finance if it was cancelled or changed in Sitoo meanwhile) before it could be excluded.
    """

    ui_color = "#fce8e6"

    def __init__(
        self,
        *,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.erp_conn_id = erp_conn_id
        self.erp_adapter = erp_adapter
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.posting.intents import resolve_intents
        from include.sitoo_erp.staging.db import connect_airflow

        erp = self.erp
        with connect_airflow(self.postgres_conn_id) as conn:
            result = resolve_intents(conn, erp)
        self.log.info("posting intents: %s", result)
        return result


class ClassifyOrdersOperator(SitooErpOperator):
    """Finalised POS orders -> ready; open/parked/pending -> held; the rest excluded; stalls reported.

    Stall ages are in business time: ``business_now`` defaults to the run's data interval end, so a
    backfill or a replayed period is judged by its own clock, not the database's.

    :param postgres_conn_id: the staging database.
    :param stall_after_hours: business hours a held receipt may wait before it is a ``stalled`` exception.
    :param closed_through: ISO date; ERP periods up to and including it are closed, so a posted receipt
        of such a day that changes in Sitoo is raised for finance (Variable ``sitoo_erp_closed_through``)
        (templated).
    :param business_now: the business clock, default the run's data interval end; None for the Sitoo
        clock (templated).
    """

    template_fields: Sequence[str] = ("business_now", "closed_through")
    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        postgres_conn_id: str = DEFAULT_CONN_ID,
        stall_after_hours: float = 4.0,
        closed_through: str | None = "{{ var.value.get('sitoo_erp_closed_through', '') }}",
        business_now: str | datetime | None = "{{ data_interval_end }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.stall_after_hours = stall_after_hours
        # ISO date: ERP periods up to and including it are closed; a posted receipt of such a day that
        # changes in Sitoo is raised for finance instead of corrected in place.
        self.closed_through = closed_through
        self.business_now = business_now

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.posting.classify import classify
        from include.sitoo_erp.staging.db import connect_airflow

        closed_through, business_now = closed_through_and_now(self.closed_through, self.business_now)
        run = context.get("run_id") if hasattr(context, "get") else None
        with connect_airflow(self.postgres_conn_id) as conn:
            result = classify(
                conn,
                stall_after=timedelta(hours=self.stall_after_hours),
                closed_through=closed_through,
                run_id=run,
                business_now=business_now,
            )
        self.log.info("classified: %s", result)
        return result


class RefreshErpItemsOperator(ErpAdapterMixin, SitooErpOperator):
    """Look up the batch's SKUs in the ERP item master (cached), before the gate checks mappings."""

    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        max_age_hours: float = 6.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.erp_conn_id = erp_conn_id
        self.erp_adapter = erp_adapter
        self.postgres_conn_id = postgres_conn_id
        self.max_age_hours = max_age_hours

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.posting.mapping import refresh_item_cache
        from include.sitoo_erp.staging.db import connect_airflow

        erp = self.erp
        with connect_airflow(self.postgres_conn_id) as conn:
            result = refresh_item_cache(conn, erp, max_age=timedelta(hours=self.max_age_hours))
        self.log.info("ERP item master: %s", result)
        return result


class ErpPostingOperator(_TaskRetryErp, SitooErpOperator):
    """Post every gated, ready receipt to the ERP exactly once (idempotent upserts by externalId).

    Run it in the ``erp_api`` pool with ``pool_slots`` = ``max_workers`` so the account-wide
    concurrency limit holds across every DAG.
    """

    ui_color = "#fce8e6"

    def __init__(
        self,
        *,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        max_workers: int = 4,
        return_document: str = "cash_refund",
        retry_attempts: int = 6,
        retry_max_wait: float = 30.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("pool_slots", max_workers)
        super().__init__(**kwargs)
        self.return_document = check_return_document(return_document)
        self.erp_conn_id = erp_conn_id
        self.erp_adapter = erp_adapter
        self.postgres_conn_id = postgres_conn_id
        self.max_workers = max_workers
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.posting.post import PostingOptions, post_ready
        from include.sitoo_erp.staging.db import connect_airflow

        erp = self.erp
        options = PostingOptions(max_workers=self.max_workers, return_document=self.return_document)
        with connect_airflow(self.postgres_conn_id) as conn:
            summary = post_ready(conn, erp, options).as_dict()
        self.log.info("posted: %s", summary)
        return summary


class DailySummaryPostingOperator(_TaskRetryErp, SitooErpOperator):
    """Stores in ``daily_summary`` mode: one ERP document per store x closed business day (plus
    numbered supplements for late receipts), after the quality gate (``posting/summary.py``).

    A day is closed at the store's midnight + ``grace_hours`` (default 6: the next morning), judged
    by ``business_now`` (the run's data interval end), so a backfill summarises the days its own
    period has closed. ``closed_through`` (Variable ``sitoo_erp_closed_through``): days on or before
    it take nothing more; their late receipts become ``closed_period`` exceptions for finance.

    :param erp_conn_id: the ERP connection; ``erp_adapter`` names the adapter behind it.
    :param postgres_conn_id: the staging database.
    :param grace_hours: hours after the store's midnight before its business day is summarised.
    :param max_lines: lines per ERP document before a numbered part starts (default: NetSuite's limit).
    :param return_document: ``cash_refund`` or ``credit_memo`` for the day's returns.
    :param closed_through: ISO date; days on or before it take nothing more (Variable
        ``sitoo_erp_closed_through``) (templated).
    :param business_now: the business clock, default the run's data interval end; None for the Sitoo
        clock (templated).
    :param retry_attempts: attempts per ERP call on a transient error.
    :param retry_max_wait: longest wait between two attempts, in seconds.
    """

    template_fields: Sequence[str] = ("business_now", "closed_through")
    ui_color = "#fce8e6"

    def __init__(
        self,
        *,
        erp_conn_id: str = "netsuite_default",
        erp_adapter: str = "netsuite",
        postgres_conn_id: str = DEFAULT_CONN_ID,
        grace_hours: float = 6.0,
        max_lines: int | None = None,
        return_document: str = "cash_refund",
        closed_through: str | None = "{{ var.value.get('sitoo_erp_closed_through', '') }}",
        business_now: str | datetime | None = "{{ data_interval_end }}",
        retry_attempts: int = 6,
        retry_max_wait: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.return_document = check_return_document(return_document)
        self.erp_conn_id = erp_conn_id
        self.erp_adapter = erp_adapter
        self.postgres_conn_id = postgres_conn_id
        self.grace_hours = grace_hours
        self.max_lines = max_lines
        self.closed_through = closed_through
        self.business_now = business_now

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.posting.classify import business_clock
        from include.sitoo_erp.posting.summary import NETSUITE_MAX_LINES, SummaryOptions, post_daily_summaries
        from include.sitoo_erp.staging.db import connect_airflow

        closed_through, business_now = closed_through_and_now(self.closed_through, self.business_now)
        options = SummaryOptions(
            grace=timedelta(hours=self.grace_hours),
            closed_through=closed_through,
            return_document=self.return_document,
            max_lines=self.max_lines or NETSUITE_MAX_LINES,
        )
        erp = self.erp
        with connect_airflow(self.postgres_conn_id) as conn:
            # No data interval (a manual run): the Sitoo clock, never the wall clock (one clock).
            now = business_now or business_clock(conn)
            result = post_daily_summaries(conn, erp, now, options).as_dict()
        self.log.info("daily summaries: %s", result)
        return result


class StateLedgerSummaryOperator(SitooErpOperator):
    """Invariant 1 as the run's last word: seen = posted + held + quarantined + excluded, or fail."""

    ui_color = "#f1f3f4"

    def __init__(self, *, postgres_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Context) -> dict:
        from include.sitoo_erp.posting.summary import summary_ledger
        from include.sitoo_erp.staging.db import connect_airflow
        from include.sitoo_erp.staging.orders import state_counts

        with connect_airflow(self.postgres_conn_id) as conn:
            counts = state_counts(conn)
            summaries = summary_ledger(conn)
            open_exceptions: dict[str, int] = dict(
                conn.execute(
                    "select kind, count(*) from sitoo_erp.exception where status = 'open' group by kind"
                ).fetchall()
            )
        accounted = counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"]
        summary = {**counts, "open_exceptions": open_exceptions, "daily_summaries": summaries}
        self.log.info("state ledger: %s", summary)
        if accounted != counts["seen"]:
            raise AirflowFailException(
                f"invariant 1 broken: seen {counts['seen']} != posted + held + quarantined + excluded {accounted}"
            )
        return summary
