"""What ops and finance change by hand — mappings and exception decisions — always audited.

Every change writes ``sitoo_erp.audit_log`` (who, when, before → after, from where) in the same
transaction as the change itself. The page in the Airflow UI and the ``sitoo_exceptions_replay``
DAG both call these functions, so there is one way to change a mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.db import one_row
from include.sitoo_erp.staging.exceptions import close_by_person, reassign_open, resolve_fixed
from include.sitoo_erp.staging.locks import lock_stage
from include.sitoo_erp.staging.mappings import BY_TABLE


class ActionError(ValueError):
    """A change that cannot be made as asked; the message says which field and why."""


class MappingRefused(ActionError):
    """The ERP's master data refuses one or more mappings; nothing was saved."""

    def __init__(self, refusals: list) -> None:
        self.refusals = refusals
        super().__init__("mapping refused, nothing saved: " + "; ".join(str(r) for r in refusals))


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), default=str, sort_keys=True)


def audit(
    conn: psycopg.Connection,
    entity: str,
    entity_key: str,
    action: str,
    before: Mapping | None,
    after: Mapping | None,
    actor: str,
    source: str,
    note: str | None = None,
) -> int:
    row = conn.execute(
        """
        insert into sitoo_erp.audit_log (entity, entity_key, action, before, after, actor, source, note)
        values (%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s) returning audit_id
        """,
        (entity, entity_key, action, _json(before), _json(after), actor, source, note),
    ).fetchone()
    assert row is not None  # insert … returning: always one row
    return row[0]


def _clean(table: str, key: str, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if table not in BY_TABLE:
        raise ActionError(f"unknown mapping table {table!r}; one of {sorted(BY_TABLE)}")
    key_column, editable, required = BY_TABLE[table].key, BY_TABLE[table].editable, BY_TABLE[table].required
    key = str(key or "").strip()
    if not key:
        raise ActionError(f"{table}: {key_column} is required")
    if table == "map_vat_tax_code":
        try:
            key = str(Decimal(key).quantize(Decimal("0.001")))
        except InvalidOperation:
            raise ActionError(f"{table}: vat_rate must be a number such as 20 or 5.5, got {key!r}") from None
    unknown = set(values) - set(editable)
    if unknown:
        raise ActionError(f"{table}: unknown field(s) {sorted(unknown)}; editable: {list(editable)}")
    cleaned = {k: (str(v).strip() if isinstance(v, str) else v) for k, v in values.items() if v is not None}
    missing = [c for c in required if not cleaned.get(c)]
    if missing:
        raise ActionError(f"{table} {key_column}={key}: {', '.join(missing)} required")
    return key, cleaned


def upsert_mapping(
    conn: psycopg.Connection,
    table: str,
    key: str,
    values: Mapping[str, Any],
    actor: str,
    source: str,
    note: str | None = None,
) -> int:
    """Add or correct one mapping row; returns the audit id. The next run picks it up."""
    key, cleaned = _clean(table, key, values)
    key_column = BY_TABLE[table].key
    columns = list(cleaned)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        lock_stage(conn)  # not while a run's gate or classify works on the ledger
        before = cur.execute(
            f"select * from sitoo_erp.{table} where {key_column} = %s for update", (key,)
        ).fetchone()
        assignments = ", ".join(f"{c} = excluded.{c}" for c in columns)
        cur.execute(
            f"""
            insert into sitoo_erp.{table} ({key_column}, {", ".join(columns)}, updated_by, updated_at)
            values (%s, {", ".join(["%s"] * len(columns))}, %s, now())
            on conflict ({key_column}) do update set {assignments}, updated_by = excluded.updated_by,
                                                     updated_at = now()
            """,
            (key, *cleaned.values(), actor),
        )
        after = cur.execute(f"select * from sitoo_erp.{table} where {key_column} = %s", (key,)).fetchone()
        return audit(
            conn,
            table,
            key,
            "update" if before else "insert",
            _strip(before),
            _strip(after),
            actor,
            source,
            note,
        )


def delete_mapping(
    conn: psycopg.Connection, table: str, key: str, actor: str, source: str, note: str | None = None
) -> int | None:
    key, _ = _clean(table, key, dict.fromkeys(BY_TABLE[table].required if table in BY_TABLE else (), "x"))
    key_column = BY_TABLE[table].key
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        lock_stage(conn)  # not while a run's gate or classify works on the ledger
        before = cur.execute(
            f"delete from sitoo_erp.{table} where {key_column} = %s returning *", (key,)
        ).fetchone()
        if before is None:
            return None
        return audit(conn, table, key, "delete", _strip(before), None, actor, source, note)


def _strip(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Audit what a person decided, not bookkeeping columns."""
    if row is None:
        return None
    return {k: v for k, v in row.items() if k not in ("updated_at",)}


def _exception(cur: psycopg.Cursor[dict[str, Any]], exception_id: int) -> dict[str, Any]:
    row = cur.execute(
        "select * from sitoo_erp.exception where exception_id = %s for update", (exception_id,)
    ).fetchone()
    if row is None:
        raise ActionError(f"exception {exception_id} does not exist")
    return row


def ignore_exception(
    conn: psycopg.Connection, exception_id: int, reason: str, actor: str, source: str
) -> int:
    """A person decides this gap will not be fixed: it leaves the queue and stays ignored.

    The receipt behind it, if it has no other open exception, moves to ``excluded`` with the
    reason, so the ledger still accounts for it and no run tries to post it again.
    """
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ActionError(
            f"exception {exception_id}: a reason (at least 5 characters) is required to ignore it"
        )
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        lock_stage(conn)  # not while a run's gate or classify works on the ledger
        before = _exception(cur, exception_id)
        if before["status"] != "open":
            raise ActionError(f"exception {exception_id} is {before['status']}, not open")
        close_by_person(cur, exception_id, "ignored", reason, actor)
        orderid = before["orderid"]
        if orderid is not None:
            still_open = one_row(
                cur.execute(
                    "select count(*) as n from sitoo_erp.exception where orderid = %s and status = 'open'",
                    (orderid,),
                )
            )["n"]
            if not still_open:
                ledger.exclude_ignored(cur, orderid, actor, reason)
        return audit(
            conn,
            "exception",
            str(exception_id),
            "ignore",
            _pick(before),
            {"status": "ignored", "resolution_note": reason},
            actor,
            source,
            reason,
        )


def resolve_exception(conn: psycopg.Connection, exception_id: int, note: str, actor: str, source: str) -> int:
    """A person says the cause is fixed. The receipt goes through the gate again on the next run;
    if the cause is still there, the gate opens a fresh exception."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        lock_stage(conn)  # not while a run's gate or classify works on the ledger
        before = _exception(cur, exception_id)
        if before["status"] != "open":
            raise ActionError(f"exception {exception_id} is {before['status']}, not open")
        close_by_person(cur, exception_id, "resolved", note or "resolved by hand", actor)
        return audit(
            conn,
            "exception",
            str(exception_id),
            "resolve",
            _pick(before),
            {"status": "resolved", "resolution_note": note},
            actor,
            source,
            note,
        )


def set_owner(conn: psycopg.Connection, kind: str, owner: str, actor: str, source: str) -> int:
    """Change which team owns an exception kind; open exceptions of that kind move with it."""
    owner = (owner or "").strip()
    if not owner:
        raise ActionError(f"owner for {kind!r} must not be empty")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        lock_stage(conn)  # not while a run's gate or classify works on the ledger
        before = cur.execute("select * from sitoo_erp.exception_owner where kind = %s", (kind,)).fetchone()
        cur.execute(
            """
            insert into sitoo_erp.exception_owner (kind, owner, updated_by) values (%s, %s, %s)
            on conflict (kind) do update set owner = excluded.owner, updated_by = excluded.updated_by,
                                             updated_at = now()
            """,
            (kind, owner, actor),
        )
        reassign_open(cur, kind, owner)
        return audit(
            conn,
            "exception_owner",
            kind,
            "update" if before else "insert",
            _strip(before),
            {"kind": kind, "owner": owner},
            actor,
            source,
        )


def _pick(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("kind", "subject_key", "orderid", "sku", "status", "owner") if k in row}


def close_fixed_exceptions(
    conn: psycopg.Connection,
    table: str,
    key: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    actor: str,
    audit_id: int,
) -> list[int]:
    """Close the open exceptions whose cause this mapping removed, at once (not at the next run).

    Those are: the unmapped/unknown key itself (gate or posting, ``…:sku=KEY``, ``stock:store:KEY``),
    and ERP rejections of receipts with this key that named the mapping's old value ("Invalid item
    reference key 100164"). The receipts stay quarantined until a run re-gates them; one whose
    cause is still there opens a fresh exception then.
    """
    prefix = BY_TABLE[table].cause
    note = f"{table} {key} saved by {actor} (audit #{audit_id}): cause gone"
    if table == "map_vat_tax_code":
        own = (
            "(e.subject_key ~ ':vat_rate=[0-9.]+$' and "
            "substring(e.subject_key from ':vat_rate=([0-9.]+)$')::numeric = %(key)s::numeric)"
        )
    else:
        own = (
            "(right(e.subject_key, length(%(suffix)s)) = %(suffix)s or e.subject_key = %(stock)s "
            "or e.subject_key = %(bare)s)"
        )
    old_values = [
        str(v)
        for k, v in (before or {}).items()
        if k not in ("updated_by", "updated_at")
        and v not in (None, "")
        and not isinstance(v, bool)
        and str(after.get(k)) != str(v)
        and k != BY_TABLE[table].key
    ]
    rejected = (
        f"(e.kind = 'erp_rejected' and ({BY_TABLE[table].touches}) and "
        "exists (select 1 from unnest(%(needles)s::text[]) n where position(n in e.message) > 0))"
    )
    return resolve_fixed(
        conn,
        f"(e.kind in ('unknown_sku', 'inactive_item', 'missing_mapping', 'tender_mismatch') and {own}) "
        f"or {rejected}",
        {
            "key": key,
            "suffix": f":{prefix}={key}",
            "stock": f"stock:{prefix}:{key}",
            "bare": f"{prefix}={key}",
            "needles": [f"reference key {v}" for v in old_values],
        },
        note,
        actor,
    )


def save_mappings(
    conn: psycopg.Connection,
    erp: Any,
    changes: list,
    actor: str,
    source: str,
    note: str | None = None,
) -> list[dict[str, Any]]:
    """Check every mapping against the ERP, then save them all (or none) and close what they fix.

    The one way the page and the replay DAGs change mappings: the format is checked, then the
    ERP's master data (``mapping_check``); any refusal raises ``MappingRefused`` naming key, field
    and rule, and nothing is written. Otherwise each row is upserted with its audit row and the
    exceptions it fixes are closed, all in one transaction.
    """
    from include.sitoo_erp.operations.mapping_check import MappingChange, check_mappings

    if not changes:
        raise ActionError("no mapping given: add at least one (table, key and values)")
    cleaned = []
    for change in changes:
        key, values = _clean(change.table, change.key, change.values)
        cleaned.append(MappingChange(change.table, key, values))
    refusals = check_mappings(erp, cleaned)
    if refusals:
        raise MappingRefused(refusals)
    saved: list[dict[str, Any]] = []
    with conn.transaction():
        for change in cleaned:
            key_column = BY_TABLE[change.table].key
            before = conn.execute(
                f"select to_jsonb(m) from sitoo_erp.{change.table} m where {key_column} = %s", (change.key,)
            ).fetchone()
            audit_id = upsert_mapping(conn, change.table, change.key, change.values, actor, source, note)
            closed = close_fixed_exceptions(
                conn, change.table, change.key, before[0] if before else None, change.values, actor, audit_id
            )
            saved.append({"table": change.table, "key": change.key, "audit_id": audit_id, "closed": closed})
    return saved


def decide_exceptions(
    conn: psycopg.Connection, decision: str, exception_ids: list[int], reason: str, actor: str, source: str
) -> list[int]:
    """Ignore or resolve several exceptions with one reason, all or none; returns the audit ids."""
    if decision not in ("ignore", "resolve"):
        raise ActionError(f"decision must be 'ignore' or 'resolve', got {decision!r}")
    if not exception_ids:
        raise ActionError(f"{decision}: at least one exception id is required")
    if decision == "resolve" and len((reason or "").strip()) < 5:
        raise ActionError("resolve: a note (at least 5 characters) saying what was fixed is required")
    fn = ignore_exception if decision == "ignore" else resolve_exception
    with conn.transaction():
        return [fn(conn, int(i), reason, actor, source) for i in dict.fromkeys(exception_ids)]
