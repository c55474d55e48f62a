"""The state ledger's only writer (invariant 1): every move of a receipt between states is here.

``order_state`` says, for every order ever staged, where it is — posted, held, quarantined or
excluded — with a reason for people and a ``reason_code`` for code (``posting/states.py``). Each
function is one transition with its guard (what it may move from), so a state cannot change in a
way this module does not name. Callers own the transaction and the stage lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from include.sitoo_erp.domain import classification_case
from include.sitoo_erp.posting import states as S

Conn = psycopg.Connection | psycopg.Cursor[Any]

# The classification rules are ``domain``'s; the first that matches decides state, reason and code.
_STATE_CASE, _REASON_CASE, _CODE_CASE = classification_case()

_RECLASSIFY_SQL = f"""
with c as (
    select o.orderid, o.orderdate,
           {_STATE_CASE} as state,
           {_REASON_CASE} as reason,
           {_CODE_CASE} as reason_code
    from sitoo_erp.sitoo_order o
    join sitoo_erp.order_state s using (orderid)
    where s.state <> '{S.POSTED}'
      and not (s.state = '{S.QUARANTINED}' and s.reason_code = '{S.ReasonCode.MALFORMED_PAYLOAD}')
      and not (s.state = '{S.EXCLUDED}' and s.reason_code = '{S.ReasonCode.IGNORED_BY_OPS}')
)
update sitoo_erp.order_state s
   set state = c.state,
       reason = c.reason,
       reason_code = c.reason_code,
       state_changed_at = case when s.state is distinct from c.state then now() else s.state_changed_at end,
       held_since = case when c.state = '{S.HELD}'
                         then coalesce(s.held_since, greatest(c.orderdate, %(business_now)s)) else null end,
       updated_at = now()
  from c
 where s.orderid = c.orderid
returning c.state, c.reason
"""


def enter_staged(conn: Conn, orderids: Sequence[int]) -> None:
    """Newly staged orders enter as *held: staged*; known ones keep their state, but changed content
    is not validated any more (``gate_run_id``): the gate must see it again. ``held_since`` is left
    to classification, which keeps it in business time."""
    conn.execute(
        """
        insert into sitoo_erp.order_state (orderid, state, reason, reason_code, store_externalid, receipt_id,
                                           orderdate, held_since)
        select o.orderid, %s, %s, %s, o.store_externalid, o.receipt_id, o.orderdate, null
        from sitoo_erp.sitoo_order o where o.orderid = any(%s)
        on conflict (orderid) do update
           set store_externalid = excluded.store_externalid, receipt_id = excluded.receipt_id,
               orderdate = excluded.orderdate, gate_run_id = null, updated_at = now()
        """,
        (S.HELD, S.STAGED, S.ReasonCode.STAGED, list(orderids)),
    )


def quarantine_malformed(conn: Conn, orderid: int, reason: str) -> None:
    """A payload that cannot be read: quarantined until Sitoo sends a good one (never if posted)."""
    conn.execute(
        """
        insert into sitoo_erp.order_state (orderid, state, reason, reason_code)
        values (%s, %s, %s, %s)
        on conflict (orderid) do update
           set state = excluded.state, reason = excluded.reason, reason_code = excluded.reason_code,
               state_changed_at = now(), updated_at = now()
         where order_state.state <> %s
        """,
        (orderid, S.QUARANTINED, reason, S.ReasonCode.MALFORMED_PAYLOAD, S.POSTED),
    )


def reclassify(conn: Conn, business_now: datetime) -> list[tuple[str, str]]:
    """Every unposted order by the classification rules (not malformed payloads, not receipts a
    person excluded); ``held_since`` in business time. Returns (state, reason) per order."""
    return conn.execute(_RECLASSIFY_SQL, {"business_now": business_now}).fetchall()


def mark_validated(conn: Conn, gate_run_id: int, orderids: Sequence[int]) -> None:
    """The ready receipts this gate run passed: posting may post them (until their content changes)."""
    conn.execute(
        """
        update sitoo_erp.order_state set gate_run_id = %s
         where orderid = any(%s::bigint[]) and state = %s and reason_code = %s
        """,
        (gate_run_id, list(orderids), S.HELD, S.ReasonCode.READY),
    )


def quarantine_ready(conn: Conn, orderids: Sequence[int], reasons: Sequence[str], code: str) -> int:
    """Ready receipts the gate stopped: quarantined with their reasons (only if still ready)."""
    return conn.execute(
        """
        update sitoo_erp.order_state s
           set state = %s, reason = q.reason, reason_code = %s, state_changed_at = now(), held_since = null,
               gate_run_id = null, updated_at = now()
          from unnest(%s::bigint[], %s::text[]) as q(orderid, reason)
         where s.orderid = q.orderid and s.state = %s and s.reason_code = %s
        """,
        (S.QUARANTINED, code, list(orderids), list(reasons), S.HELD, S.ReasonCode.READY),
    ).rowcount


def quarantine(conn: Conn, orderid: int, reason: str, code: str) -> None:
    """A receipt posting could not post (unknown item, ERP refusal, ...): quarantined, unless posted."""
    conn.execute(
        """
        update sitoo_erp.order_state set state = %s, reason = %s, reason_code = %s,
               state_changed_at = now(), updated_at = now()
         where orderid = %s and state <> %s
        """,
        (S.QUARANTINED, reason[:1000], code, orderid, S.POSTED),
    )


def mark_posted(conn: Conn, orderids: Sequence[int], reasons: Sequence[str], code: str) -> None:
    """Receipts the ERP holds: posted, each with the document it went into."""
    conn.execute(
        """
        update sitoo_erp.order_state s set state = %s, reason = v.reason, reason_code = %s,
               held_since = null, state_changed_at = now(), updated_at = now()
          from unnest(%s::bigint[], %s::text[]) as v(orderid, reason)
         where s.orderid = v.orderid
        """,
        (S.POSTED, code, list(orderids), list(reasons)),
    )


def await_original(conn: Conn, orderid: int, original_orderid: int) -> None:
    """A return whose sale is not in the ERP yet waits — unless a concurrent run's gate has just
    passed that sale: then that run posts the sale and this return too (it stays ready)."""
    conn.execute(
        """
        update sitoo_erp.order_state set reason = %s, reason_code = %s, updated_at = now()
         where orderid = %s
           and not exists (select 1 from sitoo_erp.order_state o where o.orderid = %s
                  and o.state = %s and o.reason_code = %s and o.gate_run_id is not null)
        """,
        (
            S.AWAITING_ORIGINAL,
            S.ReasonCode.AWAITING_ORIGINAL,
            orderid,
            original_orderid,
            S.HELD,
            S.ReasonCode.READY,
        ),
    )


def back_to_staged(conn: Conn, orderid: int) -> None:
    """A posted receipt that changed in Sitoo and will be corrected: held again, through the gate."""
    conn.execute(
        """
        update sitoo_erp.order_state set state = %s, reason = %s, reason_code = %s,
               state_changed_at = now(), updated_at = now()
         where orderid = %s
        """,
        (S.HELD, S.STAGED, S.ReasonCode.STAGED, orderid),
    )


def exclude_ignored(conn: Conn, orderid: int, actor: str, reason: str) -> None:
    """A person ignored the last open exception of a quarantined receipt: excluded, with who and why."""
    conn.execute(
        """
        update sitoo_erp.order_state set state = %s, reason = %s, reason_code = %s,
               state_changed_at = now(), updated_at = now(), held_since = null
         where orderid = %s and state = %s
        """,
        (
            S.EXCLUDED,
            f"{S.IGNORED_BY_OPS} {actor}: {reason}"[:1000],
            S.ReasonCode.IGNORED_BY_OPS,
            orderid,
            S.QUARANTINED,
        ),
    )
