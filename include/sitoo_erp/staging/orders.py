"""Stage Sitoo orders: raw JSON first (nothing lost), then typed rows, then the state ledger.

Every order fetched lands in ``sitoo_order_raw`` before anything can fail on it. A payload that
does not parse is kept there, its state set to ``quarantined`` and an exception row names the
order, the field and the rule; the batch goes on. Batches are written with ``COPY`` into temp
tables and merged, so a 20,000-receipt hour stages in seconds, and re-staging the same payload
is a no-op (the SHA-256 of the canonical JSON decides whether anything changed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg

from include.sitoo_erp import loyalty
from include.sitoo_erp.domain import DEFAULT_TIMEZONE, business_date, receipt_key
from include.sitoo_erp.sitoo.models import SitooOrder, SitooPayloadError, parse_order
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.db import one_row
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception
from include.sitoo_erp.staging.locks import lock_stage


@dataclass
class StageSummary:
    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    malformed: int = 0
    min_orderid: int | None = None
    max_orderid: int | None = None
    malformed_ids: list[str] = field(default_factory=list)

    def add(self, other: StageSummary) -> None:
        self.fetched += other.fetched
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.malformed += other.malformed
        self.malformed_ids.extend(other.malformed_ids[: max(0, 20 - len(self.malformed_ids))])
        if other.max_orderid is not None:
            self.max_orderid = max(self.max_orderid or 0, other.max_orderid)
        if other.min_orderid is not None:
            self.min_orderid = min(x for x in (self.min_orderid, other.min_orderid) if x is not None)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def canonical_json(payload: dict) -> str:
    """Sorted, compact JSON of the payload as PostgreSQL can store it (``jsonb``, UTF-8 ``text``).

    Neither can hold NUL (``\\u0000``) nor a lone UTF-16 surrogate (``"\\ud800"`` decodes to one); such
    characters become U+FFFD, visibly, in the raw row and in every typed value parsed from it.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if "\\u0000" in text or not _encodable(text):
        text = json.dumps(_storable(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _storable(value: object) -> object:
    if isinstance(value, str):
        value = value.replace("\x00", "\ufffd")
        return (
            value if _encodable(value) else value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        )
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _copy_text(value: object) -> object:
    """COPY in text format cannot carry NUL; everything else psycopg escapes for us."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _header_row(order: SitooOrder, store_timezones: dict[str, str]) -> tuple:
    ad = order.additionaldata
    store = order.store_externalid
    tz = order.pos_timezone or store_timezones.get(store or "", DEFAULT_TIMEZONE)
    refund_of = order.creditorderid or _int_or_none(ad.get("pos-originalsales-orderid"))
    exchange = _int_or_none(ad.get("pos-refundsales-orderid")) or _int_or_none(ad.get("pos-refund-orderid"))
    return (
        order.orderid,
        order.eshopid,
        order.receipt_id,
        store,
        tz,
        order.registerid,
        order.warehouseid,
        order.orderdate,
        business_date(order.orderdate, tz),
        int(order.orderstateid),
        int(order.paymentstateid),
        int(order.ordertypeid),
        order.creditorderid,
        refund_of,
        exchange,
        order.currencycode,
        order.moneyfinal_net,
        order.moneyfinal_vat,
        order.moneytotal_gross_roundoff,
        order.moneytotal_gross_all,
        loyalty_discount(order),
        json.dumps(ad, ensure_ascii=False),
        receipt_key(order.receipt_id, order.orderid),
    )


def loyalty_discount(order: SitooOrder) -> object:
    """The receipt's bonus cheques incl. VAT, POS sign (``sitoo_erp/loyalty.py``: Sitoo's row keys).

    Sum over rows with ``crm-bonuscheckid`` / ``customcrm-bonuscheckid`` of ``moneydiscount x quantity``
    plus its VAT: what the document's loyalty discount takes back. For reports and the gate's mapping
    check; posting reads the rows. A row whose discount is malformed stages as 0 here; the gate
    (``loyalty_row_discount``) and the document builder name it.
    """
    total = loyalty.ZERO
    for item in order.orderitems:
        try:
            net, vat = loyalty.row_loyalty(
                item.additionaldata,
                Decimal(item.quantity),
                item.moneydiscount,
                item.moneyoriginalprice,
                item.vatvalue,
            )
        except loyalty.LoyaltyError:
            continue
        total += net + vat
    return total


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _row_rows(order: SitooOrder) -> Iterator[tuple]:
    for item in order.orderitems:
        ad = item.additionaldata
        yield (
            order.orderid,
            item.orderitemid,
            item.orderitemtype,
            item.productid,
            item.sku,
            item.productname,
            item.quantity,
            item.vatvalue,
            item.moneynetpriceperunit,
            item.moneyoriginalprice,
            item.moneydiscount,
            item.moneyitemtotal_net,
            item.moneyitemtotal_vat,
            item.vouchercode,
            ad.get("giftcard-cardnumber"),
            _int_or_none(ad.get("pos-originalsales-orderitemid")),
            json.dumps(ad, ensure_ascii=False),
        )


def _payment_rows(order: SitooOrder) -> Iterator[tuple]:
    for index, pay in enumerate(order.payments):
        ad = pay.additionaldata
        yield (
            order.orderid,
            index,
            pay.name,
            pay.moneyamount,
            ad.get("payment-method"),
            ad.get("giftcard-cardnumber"),
            ad.get("virtual-payment", "").lower() == "true",
            json.dumps(ad, ensure_ascii=False),
        )


HEADER_COLS = (
    "orderid, eshopid, receipt_id, store_externalid, store_timezone, registerid, warehouseid, orderdate, "
    "business_date, orderstateid, paymentstateid, ordertypeid, creditorderid, refund_of_orderid, "
    "exchange_orderid, currencycode, money_net, money_vat, money_roundoff, money_gross, loyalty_discount, "
    "additionaldata, receipt_key"
)
ROW_COLS = (
    "orderid, orderitemid, orderitemtype, productid, sku, productname, quantity, vat_rate, net_unit_price, "
    "original_unit_price, discount_unit, money_net, money_vat, vouchercode, giftcard_number, "
    "original_orderitemid, additionaldata"
)
PAYMENT_COLS = (
    "orderid, payment_index, name, amount, payment_method, giftcard_number, is_virtual, additionaldata"
)


# The receipt's ledger-relevant content (what its ERP document is built from), hashed in PostgreSQL
# from the typed rows of ``sitoo_order o``: header amounts, store, receipt id, business date, order
# type, links, loyalty, every row and every payment. The order and payment *state* is not in it: a
# state change (cancelled after posting) is detected on its own. A posted receipt whose hash differs
# from the one in ``posting_log`` changed in Sitoo after posting (``posting.after_posting``).
CONTENT_HASH_SQL = """
encode(sha256(convert_to(jsonb_build_array(
    o.store_externalid, o.receipt_id, o.business_date, o.ordertypeid, o.refund_of_orderid, o.creditorderid,
    o.currencycode, o.money_net, o.money_vat, o.money_roundoff, o.money_gross, o.loyalty_discount,
    (select jsonb_object_agg(a.key, a.value order by a.key) from jsonb_each(o.additionaldata) a
      where a.key like 'loyalty-%%' or a.key like 'crm-bonuscheck%%'),
    (select jsonb_agg(jsonb_build_array(r.orderitemid, r.sku, r.quantity, r.vat_rate, r.net_unit_price,
                                        r.money_net, r.money_vat, r.vouchercode, r.giftcard_number,
                                        r.original_orderitemid, r.additionaldata -> 'product-group-type')
                      order by r.orderitemid)
       from sitoo_erp.sitoo_order_row r where r.orderid = o.orderid),
    (select jsonb_agg(jsonb_build_array(p.payment_index, p.name, p.amount, p.payment_method, p.giftcard_number,
                                        p.is_virtual) order by p.payment_index)
       from sitoo_erp.sitoo_payment p where p.orderid = o.orderid)
)::text, 'UTF8')), 'hex')
"""


def _store_timezones(conn: psycopg.Connection) -> dict[str, str]:
    return dict(
        conn.execute("select store_externalid, timezone from sitoo_erp.map_store_location").fetchall()
    )


def stage_orders(conn: psycopg.Connection, payloads: Iterable[dict], batch_size: int = 1000) -> StageSummary:
    """Stage payloads in batches, each batch its own transaction. Returns what happened."""
    summary = StageSummary()
    timezones = _store_timezones(conn)
    batch: list[dict] = []
    for payload in payloads:
        batch.append(payload)
        if len(batch) >= batch_size:
            summary.add(_stage_batch(conn, batch, timezones))
            batch = []
    if batch:
        summary.add(_stage_batch(conn, batch, timezones))
    return summary


def _stage_batch(conn: psycopg.Connection, payloads: list[dict], timezones: dict[str, str]) -> StageSummary:
    summary = StageSummary(fetched=len(payloads))
    raw: dict[int, tuple[str, str]] = {}
    unidentifiable: list[tuple[str, str]] = []
    for payload in payloads:
        text = canonical_json(payload)
        orderid = payload.get("orderid") if isinstance(payload, dict) else None
        if isinstance(orderid, bool) or not isinstance(orderid, int) or not 0 < orderid < 2**63:
            unidentifiable.append((text, f"orderid must be a positive integer, got {str(orderid)[:40]!r}"))
            continue
        raw[orderid] = (text, hashlib.sha256(text.encode()).hexdigest())  # a later duplicate wins
    with conn.transaction():
        lock_stage(conn)  # one writer of the receipt ledger at a time (staging.locks)
        cur = conn.cursor()
        cur.execute(
            "create temp table if not exists _raw_in (orderid bigint, payload text, sha text) on commit drop"
        )
        with cur.copy("copy _raw_in (orderid, payload, sha) from stdin") as copy:
            for orderid, (text, sha) in raw.items():
                copy.write_row((orderid, _copy_text(text), sha))
        # Which are new, changed or unchanged (compare hashes), then upsert the raw rows.
        cur.execute(
            """
            select i.orderid, r.payload_sha256 is null as is_new, r.payload_sha256 is distinct from i.sha
            from _raw_in i left join sitoo_erp.sitoo_order_raw r using (orderid)
            """
        )
        status = {oid: (is_new, changed) for oid, is_new, changed in cur.fetchall()}
        cur.execute(
            """
            insert into sitoo_erp.sitoo_order_raw (orderid, payload, payload_sha256)
            select orderid, payload::jsonb, sha from _raw_in
            on conflict (orderid) do update
               set payload = excluded.payload, payload_sha256 = excluded.payload_sha256, fetched_at = now()
             where sitoo_order_raw.payload_sha256 is distinct from excluded.payload_sha256
            """
        )
        todo = [oid for oid, (_, changed) in status.items() if changed]
        summary.new = sum(1 for is_new, _ in status.values() if is_new)
        summary.changed = len(todo) - summary.new
        summary.unchanged = len(status) - len(todo)
        summary.max_orderid = max(raw) if raw else None
        summary.min_orderid = min(raw) if raw else None

        parsed: list[SitooOrder] = []
        for orderid in todo:
            try:
                parsed.append(parse_order(json.loads(raw[orderid][0])))
            except SitooPayloadError as err:
                summary.malformed += 1
                summary.malformed_ids.append(str(orderid))
                _quarantine_malformed(conn, orderid, err)
        if parsed:
            _write_typed(cur, parsed, timezones)
        for text, rule_text in unidentifiable:
            summary.malformed += 1
            record_exception(
                conn,
                ExceptionKind.MALFORMED_PAYLOAD,
                subject_key=hashlib.sha256(text.encode()).hexdigest()[:16],
                field="orderid",
                rule="orderid.positive_int",
                message=f"order ?: {rule_text}",
            )
    return summary


def _quarantine_malformed(conn: psycopg.Connection, orderid: int, err: SitooPayloadError) -> None:
    conn.execute("delete from sitoo_erp.sitoo_order where orderid = %s", (orderid,))
    ledger.quarantine_malformed(conn, orderid, f"malformed payload: {err}")
    record_exception(
        conn,
        ExceptionKind.MALFORMED_PAYLOAD,
        subject_key=f"order:{orderid}",
        orderid=orderid,
        field=err.field,
        rule=err.rule,
        message=str(err),
    )


def _write_typed(cur: psycopg.Cursor, orders: list[SitooOrder], timezones: dict[str, str]) -> None:
    ids = [o.orderid for o in orders]
    cur.execute("delete from sitoo_erp.sitoo_order where orderid = any(%s)", (ids,))
    with cur.copy(f"copy sitoo_erp.sitoo_order ({HEADER_COLS}) from stdin") as copy:
        for order in orders:
            copy.write_row(tuple(_copy_text(v) for v in _header_row(order, timezones)))
    with cur.copy(f"copy sitoo_erp.sitoo_order_row ({ROW_COLS}) from stdin") as copy:
        for order in orders:
            for row in _row_rows(order):
                copy.write_row(tuple(_copy_text(v) for v in row))
    with cur.copy(f"copy sitoo_erp.sitoo_payment ({PAYMENT_COLS}) from stdin") as copy:
        for order in orders:
            for row in _payment_rows(order):
                copy.write_row(tuple(_copy_text(v) for v in row))
    cur.execute(
        f"update sitoo_erp.sitoo_order o set content_hash = ({CONTENT_HASH_SQL}) where o.orderid = any(%s)",
        (ids,),
    )
    ledger.enter_staged(cur, ids)


def get_watermark(conn: psycopg.Connection, stream: str) -> int | None:
    row = conn.execute(
        "select value from sitoo_erp.extract_watermark where stream = %s", (stream,)
    ).fetchone()
    return row[0] if row else None


def advance_watermark(conn: psycopg.Connection, stream: str, value: int) -> None:
    """Move the high-water mark forward only (a backfill of an old window never moves it back)."""
    conn.execute(
        """
        insert into sitoo_erp.extract_watermark (stream, value) values (%s, %s)
        on conflict (stream) do update set value = greatest(extract_watermark.value, excluded.value),
                                           updated_at = now()
        """,
        (stream, value),
    )


def state_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Invariant 1 as numbers: ``seen`` and the count in each state (they must add up)."""
    counts: dict[str, int] = dict(
        conn.execute("select state, count(*) from sitoo_erp.order_state group by state").fetchall()
    )
    seen = one_row(conn.execute("select count(*) from sitoo_erp.sitoo_order_raw"))[0]
    return {"seen": seen, **{s: counts.get(s, 0) for s in ("posted", "held", "quarantined", "excluded")}}
