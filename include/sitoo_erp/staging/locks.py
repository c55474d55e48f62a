"""How concurrent runs coordinate: PostgreSQL advisory locks, never process-local state.

Every run of every DAG reads and writes one shared ledger (``order_state``, ``exception``, the
mappings). Airflow may run many of them at once (a backfill runs up to 10 runs by default, manual
triggers overlap, a cleared task re-runs beside the next hour), on any worker. Two rules make the
result the same as running them one at a time:

* **One writer of the receipt ledger at a time.** Each stage that changes which receipts are ready,
  quarantined or under an exception (staging a batch, classify, the quality gate, the ERP item cache,
  mapping edits) does it in one transaction that first takes ``receipts`` exclusively
  (``pg_advisory_xact_lock``), so the gate validates, quarantines and resolves one consistent batch.
  Posting records its results under the same lock in *shared* mode (posting runs do not block each
  other, only the stages above). Released at commit or rollback, also when a worker dies.
* **A receipt is posted by one run at a time.** A posting run claims each receipt with a
  session-level ``pg_try_advisory_lock(orderid)`` and skips receipts another run holds, freeing each
  batch once recorded; the claim dies with the connection, so a killed task never leaves a receipt
  stuck. A return whose sale is in flight in another run waits for that claim (sales never wait, so
  no cycle), then links to it as it would one run at a time.
"""

from __future__ import annotations

import psycopg
from psycopg import pq

from include.sitoo_erp.staging.db import one_row

NAMESPACE = "sitoo_erp"
RECEIPTS = "receipts"  # order_state / exception of sales receipts, the mappings the gate reads


def lock_stage(conn: psycopg.Connection, name: str = RECEIPTS, *, shared: bool = False) -> None:
    """Take the stage lock ``name`` until the current transaction ends (call it first in the
    transaction, before touching rows, so no lock order can deadlock)."""
    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise RuntimeError(f"lock_stage({name!r}) outside a transaction would be released at once")
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.execute(f"select {function}(hashtext(%s), hashtext(%s))", (NAMESPACE, name))


def try_claim_receipt(conn: psycopg.Connection, orderid: int, *, wait: bool = False) -> bool:
    """Claim one receipt for posting on this connection's session; False if another run holds it
    (``wait``: block until it lets go). The single-bigint key space never overlaps the stage locks."""
    if wait:
        conn.execute("select pg_advisory_lock(%s::bigint)", (orderid,))
        return True
    return bool(one_row(conn.execute("select pg_try_advisory_lock(%s::bigint)", (orderid,)))[0])


def release_receipt(conn: psycopg.Connection, orderid: int) -> None:
    conn.execute("select pg_advisory_unlock(%s::bigint)", (orderid,))


def wait_for_receipt(conn: psycopg.Connection, orderid: int) -> None:
    """Wait until no other run is posting ``orderid`` (take its claim and give it back at once)."""
    conn.execute("select pg_advisory_lock(%s::bigint)", (orderid,))
    release_receipt(conn, orderid)
