"""SuiteQL over SQLite: parse Oracle-flavoured SQL with sqlglot, allow one SELECT, page it.

Value encoding (as NetSuite's REST SuiteQL does): every non-null value is a JSON **string** —
integers as ``"1001"``, decimals without exponent and without trailing zeros (``"-199.8"``,
``"25"``), dates as ISO ``"YYYY-MM-DD"`` (real NetSuite uses the user's date format: use
``TO_CHAR(d, 'YYYY-MM-DD')`` to be safe). Null columns are omitted from the row object, as
NetSuite does. Column keys are the lower-cased aliases.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ParseError, SqlglotError

from include.sandbox.netsuite import errors as E
from include.sandbox.netsuite.errors import NetSuiteError

MAX_LIMIT = 1000
MAX_TOTAL_ROWS = 100_000

_ORACLE_TOKENS = [
    ("YYYY", "%Y"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("MONTH", "%B"),
    ("MON", "%b"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("HH", "%I"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("AM", "%p"),
    ("PM", "%p"),
    ("DY", "%a"),
    ("DAY", "%A"),
]
_TOKEN_RE = re.compile("|".join(t for t, _ in sorted(_ORACLE_TOKENS, key=lambda x: -len(x[0]))), re.I)
_TOKEN_MAP = dict(_ORACLE_TOKENS)


def oracle_to_strftime(fmt: str) -> str:
    return _TOKEN_RE.sub(lambda m: _TOKEN_MAP[m.group(0).upper()], fmt)


def _parse_datetime(value: str) -> datetime:
    value = value.strip()
    for candidate in (value, value.replace("T", " ")):
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    raise ValueError(f"not a date: {value!r}")


def ns_to_date(value: Any, fmt: Any = None) -> str | None:
    """TO_DATE(text, fmt) -> ISO text ('YYYY-MM-DD', or with time when it has one)."""
    if value is None:
        return None
    text = str(value)
    if fmt is None:
        dt = _parse_datetime(text)
    else:
        fmt = str(fmt)
        py_fmt = fmt if "%" in fmt else oracle_to_strftime(fmt)
        dt = datetime.strptime(text, py_fmt)
    if dt.hour or dt.minute or dt.second:
        return dt.strftime("%Y-%m-%d %H:%M:%S")
    return dt.strftime("%Y-%m-%d")


def ns_to_char(value: Any, fmt: Any = None) -> str | None:
    if value is None:
        return None
    if fmt is None:
        return format_value(value)
    return _parse_datetime(str(value)).strftime(oracle_to_strftime(str(fmt)))


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        dec = Decimal(repr(round(value, 8))).normalize()
        return format(dec, "f")
    return str(value)


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("NS_TO_DATE", -1, ns_to_date, deterministic=True)
    conn.create_function("NS_TO_CHAR", -1, ns_to_char, deterministic=True)


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.StrToDate | exp.StrToTime):
        args = [node.this]
        if node.args.get("format") is not None:
            args.append(node.args["format"])
        return exp.Anonymous(this="NS_TO_DATE", expressions=args)
    if isinstance(node, exp.ToChar):
        args = [node.this]
        if node.args.get("format") is not None:
            args.append(node.args["format"])
        return exp.Anonymous(this="NS_TO_CHAR", expressions=args)
    return node


class _BacktickSQLite(SQLite):
    """SQLite output quoting identifiers with backticks: SQLite would read an unknown
    double-quoted identifier as a string literal, hiding typos like ``SELECT nope``."""

    class Tokenizer(SQLite.Tokenizer):
        IDENTIFIERS = ["`"]


_FORBIDDEN = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Merge, exp.Command, exp.Alter)


def translate(q: object) -> str:
    """SuiteQL text -> SQLite text. Raises NetSuiteError(400) unless it is one SELECT."""
    if not isinstance(q, str) or not q.strip():
        raise NetSuiteError(400, E.INVALID_PARAMETER, "Invalid search query: the q parameter is empty.", "q")
    try:
        statements = [s for s in sqlglot.parse(q, read="oracle") if s is not None]
    except (ParseError, SqlglotError) as exc:
        raise NetSuiteError(
            400, E.INVALID_PARAMETER, f"Invalid search query. Syntax error: {exc}", "q"
        ) from exc
    if len(statements) != 1:
        raise NetSuiteError(
            400, E.INVALID_PARAMETER, "Invalid search query: exactly one statement allowed.", "q"
        )
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.Union) or any(tree.find_all(*_FORBIDDEN)):
        raise NetSuiteError(400, E.INVALID_PARAMETER, "Invalid search query: only SELECT is allowed.", "q")
    if any(c.name.upper() == "ROWNUM" for c in tree.find_all(exp.Column)):
        raise NetSuiteError(
            400, E.INVALID_PARAMETER, "ROWNUM is not supported by the sandbox: use limit/offset paging.", "q"
        )
    tree = tree.transform(_rewrite)
    return tree.sql(dialect=_BacktickSQLite, identify=True)


def run(conn: sqlite3.Connection, q: object, limit: int, offset: int) -> dict[str, Any]:
    """Execute a paged SuiteQL query and build the REST response (without links)."""
    sql = translate(q)
    try:
        total = conn.execute(f"SELECT COUNT(*) FROM ({sql})").fetchone()[0]
        if total > MAX_TOTAL_ROWS:
            raise NetSuiteError(
                400,
                E.INVALID_PARAMETER,
                f"The query returns {total} rows; SuiteQL returns at most {MAX_TOTAL_ROWS}. "
                "Aggregate or split the query.",
                "q",
            )
        cur = conn.execute(f"SELECT * FROM ({sql}) LIMIT ? OFFSET ?", (limit, offset))
        names = [d[0].lower() for d in cur.description]
        rows = cur.fetchall()
    except sqlite3.Error as exc:
        raise NetSuiteError(
            400, E.INVALID_PARAMETER, f"Invalid search query. Search error: {exc}", "q"
        ) from exc
    items = []
    for row in rows:
        obj: dict[str, Any] = {"links": []}
        for name, value in zip(names, row, strict=True):
            if value is not None:
                obj[name] = format_value(value)
        items.append(obj)
    return {
        "count": len(items),
        "hasMore": offset + len(items) < total,
        "offset": offset,
        "totalResults": total,
        "items": items,
    }
