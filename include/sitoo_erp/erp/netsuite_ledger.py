"""NetSuite's side of the reconciliation: ledger totals through SuiteQL, pushed to the ERP,
aggregated, split by day, paged (``NetSuiteHook.ledger_*``; another ERP brings its own).

Only documents this integration owns (``externalid LIKE 'SITOO-%'``) of the sales types. Amounts
are stored in *document sign* (NetSuite: a cash refund carries positive amounts); the aggregates turn
them into *POS sign* in the ERP (sales positive, returns negative, like the Sitoo side), and a row
that still names its record type (``trantype``) is signed here. Every value arrives as a
string (or is missing when null), so everything goes through :func:`dec`.

Per day, one aggregate per location x tax code (reference erp-api §9 Q2, plus the day, types summed
in POS sign) and one document count per location (Q1); several days per query as long as the rows fit
one page (:func:`days_per_page`), far below the 100,000-row cap. The per-document drill-down (Q4) runs only for store-days whose totals disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from include.sitoo_erp.erp.adapter import ErpCell, ErpDocument, ErpReceiptRow

SALES_TYPES = ("CashSale", "CashRfnd", "CustCred")
SIGN = {"CashSale": 1, "CashRfnd": -1, "CustCred": -1}
ZERO = Decimal("0.00")

Query = Callable[[str], Iterable[dict]]


def dec(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01")) if value not in (None, "") else ZERO


def _range(day_from: date, day_to_excl: date) -> str:
    return (
        f"t.trandate >= TO_DATE('{day_from.isoformat()}', 'YYYY-MM-DD') "
        f"AND t.trandate < TO_DATE('{day_to_excl.isoformat()}', 'YYYY-MM-DD')"
    )


def _locations(location_ids: Sequence[str] | None, column: str = "tl.location") -> str:
    if not location_ids:
        return ""
    ids = sorted({str(x) for x in location_ids})
    bad = [x for x in ids if not x.isdigit()]
    if bad:
        raise ValueError(f"ERP location ids must be numeric, got {bad[:3]}")
    return f" AND {column} IN ({', '.join(ids)})"


_TYPES = "t.type IN (" + ", ".join(f"'{t}'" for t in SALES_TYPES) + ")"
_OURS = "t.externalid LIKE 'SITOO-%'"


def _pos_sign(column: str) -> str:
    """POS sign in the ERP: sales as they are, returns (refunds, credit memos) negated."""
    return f"CASE WHEN t.type = 'CashSale' THEN {column} ELSE -{column} END"


def tax_totals_sql(day_from: date, day_to_excl: date, location_ids: Sequence[str] | None = None) -> str:
    """Q2 by day: net (tax basis) and tax per location x day x tax code, already in POS sign (the
    record types are summed in the ERP: a third of the rows, so a page holds more days)."""
    return (
        "SELECT tl.location AS location_id, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate, "
        f"td.taxcode AS tax_code_id, SUM({_pos_sign('td.taxbasis')}) AS tax_basis, "
        f"SUM({_pos_sign('td.taxamount')}) AS tax_amount "
        "FROM transactiontaxdetail td "
        "JOIN transaction t ON t.id = td.transaction "
        "JOIN transactionline tl ON tl.transaction = td.transaction AND tl.id = td.line "
        f"WHERE {_TYPES} AND {_range(day_from, day_to_excl)} AND {_OURS}{_locations(location_ids)} "
        "GROUP BY tl.location, t.trandate, td.taxcode "
        "ORDER BY tl.location, t.trandate, td.taxcode"
    )


def doc_counts_sql(day_from: date, day_to_excl: date, location_ids: Sequence[str] | None = None) -> str:
    """Q1 by day: documents per location x day, all sales types (the main line carries the location)."""
    return (
        "SELECT tl.location AS location_id, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate, "
        "COUNT(DISTINCT t.id) AS docs "
        "FROM transaction t JOIN transactionline tl ON tl.transaction = t.id AND tl.mainline = 'T' "
        f"WHERE {_TYPES} AND {_range(day_from, day_to_excl)} AND {_OURS}{_locations(location_ids)} "
        "GROUP BY tl.location, t.trandate ORDER BY tl.location, t.trandate"
    )


def days_per_page(locations: int, tax_codes: int, page: int = 1000) -> int:
    """Days per aggregate query so that its rows (location x day x tax code) fit one SuiteQL page:
    every further page re-runs the whole aggregate (NetSuite, and the sandbox, page by re-query)."""
    return max(1, page // max(1, locations * max(1, tax_codes)))


def documents_sql(day: date, location_id: str) -> str:
    """Q4: one store-day's documents, per document x tax code (compared per receipt key)."""
    return (
        "SELECT t.id AS erp_id, t.externalid AS external_id, t.type AS trantype, td.taxcode AS tax_code_id, "
        "SUM(td.taxbasis) AS tax_basis, SUM(td.taxamount) AS tax_amount "
        "FROM transactiontaxdetail td "
        "JOIN transaction t ON t.id = td.transaction "
        "JOIN transactionline tl ON tl.transaction = td.transaction AND tl.id = td.line "
        f"WHERE {_TYPES} AND {_range(day, day + timedelta(days=1))} AND {_OURS}"
        f"{_locations([location_id])} "
        "GROUP BY t.id, t.externalid, t.type, td.taxcode ORDER BY t.id, td.taxcode"
    )


ID_BUCKET = 1000  # internal ids per bucket of the id histogram
WINDOW_DOCS = 700  # documents per per-receipt query: ~1.3 rows each, so most answer in one page


def receipt_buckets_sql(day_from: date, day_to_excl: date, location_ids: Sequence[str] | None = None) -> str:
    """How the range's documents spread over internal ids (documents per 1,000 ids): the per-receipt
    read is then cut into id windows of ~700 documents, each one page, so no query is paged deep (every
    further page of a SuiteQL query re-runs it, in NetSuite as in the sandbox)."""
    return (
        f"SELECT FLOOR(t.id / {ID_BUCKET}) AS bucket, COUNT(DISTINCT t.id) AS docs "
        "FROM transaction t JOIN transactionline tl ON tl.transaction = t.id AND tl.mainline = 'T' "
        f"WHERE {_TYPES} AND {_range(day_from, day_to_excl)} AND {_OURS}{_locations(location_ids)} "
        f"GROUP BY FLOOR(t.id / {ID_BUCKET}) ORDER BY 1"
    )


def receipts_sql(
    day_from: date,
    day_to_excl: date,
    location_ids: Sequence[str] | None = None,
    id_range: tuple[int, int] | None = None,
) -> str:
    """Every document of the range (within an internal id window), one row per document x tax code,
    for the per-receipt proof: record type, tranDate, tax basis and tax per code, and the item lines
    as (count, sum of quantity, sum of item id x quantity) — each item line carries exactly one tax
    detail line (override on), so grouping the lines by their tax code loses nothing. Amounts and
    quantities as the ERP stores them (a cash sale's item lines negative); unique ORDER BY."""
    ids = f" AND t.id BETWEEN {int(id_range[0])} AND {int(id_range[1])}" if id_range else ""
    return (
        "SELECT t.id AS erp_id, t.externalid AS external_id, t.type AS trantype, "
        "TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate, td.taxcode AS tax_code_id, "
        "COUNT(tl.quantity) AS lines, SUM(tl.quantity) AS qty, SUM(tl.item * tl.quantity) AS item_qty, "
        "SUM(td.taxbasis) AS tax_basis, SUM(td.taxamount) AS tax_amount "
        "FROM transaction t "
        "JOIN transactionline tl ON tl.transaction = t.id AND tl.mainline = 'F' AND tl.taxline = 'F' "
        "JOIN transactiontaxdetail td ON td.transaction = tl.transaction AND td.line = tl.id "
        f"WHERE {_TYPES} AND {_range(day_from, day_to_excl)} AND {_OURS}{_locations(location_ids)}{ids} "
        "GROUP BY t.id, t.externalid, t.type, t.trandate, td.taxcode ORDER BY t.id, td.taxcode"
    )


def id_windows(buckets: Iterable[tuple[int, int]], per_window: int = WINDOW_DOCS) -> list[tuple[int, int]]:
    """Consecutive id buckets ``(bucket, documents)`` merged into windows of at most ~``per_window``
    documents (a bucket is never split: it holds at most 1,000)."""
    out: list[tuple[int, int]] = []
    lo: int | None = None
    hi = n = 0  # hi: the window's last bucket, read only while lo is set
    for bucket, docs in sorted(buckets):
        if lo is not None and n + docs > per_window:
            out.append((lo * ID_BUCKET, (hi + 1) * ID_BUCKET - 1))
            lo, n = None, 0
        if lo is None:
            lo = bucket
        hi, n = bucket, n + docs
    if lo is not None:
        out.append((lo * ID_BUCKET, (hi + 1) * ID_BUCKET - 1))
    return out


def fetch_receipt_rows(
    query: Query, days: Sequence[date], location_ids: Sequence[str] | None = None
) -> tuple[list[ErpReceiptRow], int]:
    """The period's documents per tax code, as tuples for COPY: (erp_id, external_id, trantype,
    trandate, tax_code_id, lines, qty, item_qty, tax_basis, tax_amount), quantities in document sign
    (a sale's lines positive). One histogram query, then one query per id window."""
    lo, hi = min(days), max(days) + timedelta(days=1)
    buckets = [
        (int(dec(r["bucket"])), int(r.get("docs") or 0))
        for r in query(receipt_buckets_sql(lo, hi, location_ids))
    ]
    windows = id_windows(buckets)
    out: list[ErpReceiptRow] = []
    for window in windows:
        for row in query(receipts_sql(lo, hi, location_ids, window)):
            t = row.get("trantype", "")
            flip = -1 if t == "CashSale" else 1
            out.append(
                (
                    str(row["erp_id"]),
                    str(row.get("external_id", "")),
                    t,
                    row["trandate"][:10],
                    str(row.get("tax_code_id", "")),
                    int(row.get("lines") or 0),
                    flip * Decimal(str(row.get("qty") or 0)),
                    flip * Decimal(str(row.get("item_qty") or 0)),
                    dec(row.get("tax_basis")),
                    dec(row.get("tax_amount")),
                )
            )
    return out, 1 + len(windows)


def fetch_totals(
    query: Query, days: Sequence[date], location_ids: Sequence[str] | None = None, days_per_query: int = 1
) -> tuple[list[ErpCell], dict[tuple[str, date], int], int]:
    """ERP cells (POS sign) and document counts per (location, day); returns (cells, docs, queries)."""
    cells: list[ErpCell] = []
    docs: dict[tuple[str, date], int] = {}
    queries = 0
    ordered = sorted(days)
    for i in range(0, len(ordered), max(1, days_per_query)):
        chunk = ordered[i : i + max(1, days_per_query)]
        lo, hi = chunk[0], chunk[-1] + timedelta(days=1)
        for row in query(tax_totals_sql(lo, hi, location_ids)):
            s = SIGN.get(row.get("trantype", ""), 1)
            cells.append(
                ErpCell(
                    str(row.get("location_id", "")),
                    date.fromisoformat(row["trandate"][:10]),
                    str(row.get("tax_code_id", "")),
                    s * dec(row.get("tax_basis")),
                    s * dec(row.get("tax_amount")),
                )
            )
        for row in query(doc_counts_sql(lo, hi, location_ids)):
            key = (str(row.get("location_id", "")), date.fromisoformat(row["trandate"][:10]))
            docs[key] = docs.get(key, 0) + int(row.get("docs", 0))
        queries += 2
    return cells, docs, queries


def fetch_documents(query: Query, day: date, location_id: str) -> list[ErpDocument]:
    """Per-document totals of one store-day (tax codes summed; POS and document sign)."""
    by_id: dict[str, ErpDocument] = {}
    for row in query(documents_sql(day, location_id)):
        erp_id = str(row["erp_id"])
        t = row.get("trantype", "")
        s = SIGN.get(t, 1)
        d = by_id.get(erp_id)
        if d is None:
            d = by_id[erp_id] = ErpDocument(
                erp_id, str(row.get("external_id", "")), t, ZERO, ZERO, ZERO, ZERO
            )
        basis, tax = dec(row.get("tax_basis")), dec(row.get("tax_amount"))
        d.doc_net += basis
        d.doc_tax += tax
        d.net += s * basis
        d.tax += s * tax
    return list(by_id.values())
