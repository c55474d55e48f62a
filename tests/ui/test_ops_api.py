"""The operations page through a real ``airflow api-server``: auth, real data, filters, paging, edits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from include.sitoo_erp.staging.db import connect_url

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

PAGE = "/sitoo-erp-ops/"


def test_refuses_requests_without_an_airflow_session(api_server):
    with api_server.client(None) as anon:
        for path in (PAGE, f"{PAGE}api/exceptions", f"{PAGE}api/summary"):
            assert anon.get(path).status_code == 401, path
        # A browser gets a page that leads to Airflow's login, still with 401.
        html = anon.get(PAGE, headers={"accept": "text/html"})
        assert html.status_code == 401 and "/auth/login" in html.text
        # Writes are refused too, and change nothing.
        assert (
            anon.post(
                f"{PAGE}mappings", data={"table": "map_sku_item", "key": "X", "item_id": "1"}
            ).status_code
            == 401
        )
    forged = httpx.get(f"{api_server.url}{PAGE}", cookies={"_token": "not-a-jwt"}, timeout=10)
    assert forged.status_code in (401, 403)
    bearer = httpx.get(
        f"{api_server.url}{PAGE}api/summary",
        headers={"Authorization": f"Bearer {api_server.token('ops')}"},
        timeout=10,
    )
    assert bearer.status_code == 200  # the public API's way (Bearer JWT) works as well


def test_page_shows_the_real_queue_runs_and_stalled_receipts(api_server, ui_stack):
    with api_server.client("ops") as ops:
        response = ops.get(PAGE)
    assert response.status_code == 200, response.text[:500]
    html = response.text
    assert 'id="user">ops<' in html
    with connect_url(ui_stack.database_url) as conn:
        open_rows = conn.execute(
            "select exception_id, kind from sitoo_erp.exception where status = 'open'"
        ).fetchall()
        held = conn.execute("select count(*) from sitoo_erp.order_state where state = 'held'").fetchone()[0]
    kinds = {k for _, k in open_rows}
    assert {"unknown_sku", "tender_mismatch"} <= kinds
    for exception_id, _ in open_rows[:50]:
        assert f'data-exception-id="{exception_id}"' in html
    # The last run of the hourly DAG, with the gate's and the tasks' counts.
    runs = html[html.index('id="runs"') :]
    assert "sitoo_sales_hourly" in runs and "success" in runs and "gate:" in runs and "posted" in runs
    # The stalled-receipt grid adds up to what the ledger holds back.
    summary = httpx.get(
        f"{api_server.url}{PAGE}api/summary", cookies={"_token": api_server.token()}, timeout=10
    ).json()
    grid = summary["stalled"]["grid"]
    assert sum(grid["quarantined"].values()) >= 2
    assert (
        sum(
            v
            for c in ("held_not_finalised", "ready_not_posted", "awaiting_original")
            for v in grid[c].values()
        )
        == held
    )
    assert summary["variance"]["rates"], "posted receipts record tax variance this month"
    assert summary["reconciliation"]["available"] in (True, False)
    assert sum(r["open"] for r in summary["counts"]["kind"]) == len(open_rows)


def test_filters_and_keyset_paging(api_server, ui_stack):
    # 120 synthetic open exceptions in their own store, first seen over the past 5 days.
    now = datetime.now(UTC)
    with connect_url(ui_stack.database_url) as conn:
        conn.execute(
            """
            insert into sitoo_erp.exception (kind, subject_key, store_externalid, rule, message, owner, first_seen_at, last_seen_at)
            select 'stalled', 'paging:' || g, 'PAGING-STORE', 'test', 'synthetic ' || g, 'retail_ops',
                   %s - g * interval '1 hour', %s
              from generate_series(1, 120) g
            """,
            (now, now),
        )
    try:
        with api_server.client("ops") as ops:
            seen, cursor = [], None
            while True:
                params = {"store": "PAGING-STORE"} | ({"after": cursor} if cursor else {})
                body = ops.get(f"{PAGE}api/exceptions", params=params).json()
                seen += body["rows"]
                cursor = body["next"]
                if not cursor:
                    break
            assert len(seen) == 120 and len({r["exception_id"] for r in seen}) == 120
            stamps = [r["first_seen_at"] for r in seen]
            assert stamps == sorted(stamps)  # oldest first across pages
            assert {r["store_externalid"] for r in seen} == {"PAGING-STORE"}

            # The HTML page: 50 a page with a link to the next; min-age and kind filters narrow it.
            html = ops.get(PAGE, params={"store": "PAGING-STORE"}).text
            assert html.count('data-exception-id="') == 50 and 'id="next-page"' in html
            nxt = re.search(r'id="next-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
            assert ops.get(nxt).text.count('data-exception-id="') == 50
            older = ops.get(
                f"{PAGE}api/exceptions", params={"store": "PAGING-STORE", "min_age": "24h", "limit": 500}
            )
            assert all(r["age_seconds"] >= 86400 for r in older.json()["rows"])
            assert len(older.json()["rows"]) == 120 - 23  # first seen 24..120 hours ago

            only_sku = ops.get(PAGE, params={"kind": "unknown_sku"}).text
            assert 'data-kind="unknown_sku"' in only_sku and 'data-kind="tender_mismatch"' not in only_sku
            finance = ops.get(f"{PAGE}api/exceptions", params={"owner": "finance"}).json()["rows"]
            assert finance and {r["owner"] for r in finance} == {"finance"}
            assert any(r["kind"] == "tender_mismatch" for r in finance)
    finally:
        with connect_url(ui_stack.database_url) as conn:
            conn.execute("delete from sitoo_erp.exception where store_externalid = 'PAGING-STORE'")


def test_mapping_edit_through_the_form_writes_the_mapping_and_an_audit_row(api_server, ui_stack):
    with api_server.client("viewer") as viewer:
        assert viewer.get(PAGE).status_code == 200  # a viewer may look ...
        refused = viewer.post(
            f"{PAGE}mappings",
            data={"table": "map_tender_payment", "key": "Foreign Currency", "payment_method_id": "9"},
        )
        assert refused.status_code == 403  # ... but not change anything
    with api_server.client("ops") as ops:
        cross_site = ops.post(
            f"{PAGE}mappings",
            data={"table": "map_tender_payment", "key": "Foreign Currency", "payment_method_id": "9"},
            headers={"origin": "http://evil.example"},
        )
        assert cross_site.status_code == 403
        # A payment method the ERP does not have is refused, naming key, field and rule; nothing saved.
        refused = ops.post(
            f"{PAGE}mappings?kind=tender_mismatch",
            data={"table": "map_tender_payment", "key": "Foreign Currency", "payment_method_id": "97"},
        )
        flash = ops.get(refused.headers["location"]).text
        assert "Foreign Currency: payment_method_id 97 refused (erp.payment_method_exists)" in flash
        response = ops.post(
            f"{PAGE}mappings?kind=tender_mismatch",
            data={
                "table": "map_tender_payment",
                "key": "Foreign Currency",
                "payment_method_id": "1",
                "is_gift_card": "false",
                "note": "FX cash goes to the cash method",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sitoo-erp-ops/?kind=tender_mismatch&msg=")
        bad = ops.post(f"{PAGE}mappings", data={"table": "map_sku_item", "key": "X-1", "item_id": ""})
        assert "err=" in bad.headers["location"]
        page = ops.get(response.headers["location"]).text
    assert "Foreign Currency saved" in page
    with connect_url(ui_stack.database_url) as conn:
        mapped = conn.execute(
            "select payment_method_id, is_gift_card, updated_by from sitoo_erp.map_tender_payment where tender = 'Foreign Currency'"
        ).fetchone()
        audit = conn.execute(
            "select action, actor, source, note, after ->> 'payment_method_id' from sitoo_erp.audit_log "
            "where entity = 'map_tender_payment' and entity_key = 'Foreign Currency'"
        ).fetchall()
        unchanged = conn.execute("select count(*) from sitoo_erp.map_sku_item where sku = 'X-1'").fetchone()[
            0
        ]
    assert mapped == ("1", False, "ops")
    assert audit == [("insert", "ops", "ui", "FX cash goes to the cash method", "1")]
    assert unchanged == 0
    assert "Foreign Currency" in page[page.index('id="edits"') :]


def test_ignore_and_resolve_with_a_reason(api_server, ui_stack):
    now = datetime.now(UTC) - timedelta(days=2)
    with connect_url(ui_stack.database_url) as conn:
        ids = [
            conn.execute(
                "insert into sitoo_erp.exception (kind, subject_key, rule, message, first_seen_at) "
                "values ('erp_rejected', %s, 'test', 'synthetic', %s) returning exception_id",
                (f"decide:{n}", now),
            ).fetchone()[0]
            for n in range(2)
        ]
    with api_server.client("ops") as ops:
        short = ops.post(f"{PAGE}exceptions/{ids[0]}/ignore", data={"reason": "no"})
        assert "err=" in short.headers["location"]
        ok = ops.post(
            f"{PAGE}exceptions/{ids[0]}/ignore", data={"reason": "test receipt from a training till"}
        )
        assert "msg=" in ok.headers["location"]
        ok = ops.post(f"{PAGE}exceptions/{ids[1]}/resolve", data={"note": "fixed in the ERP by hand"})
        assert "msg=" in ok.headers["location"]
        html = ops.get(PAGE, params={"kind": "erp_rejected"}).text
    assert f'data-exception-id="{ids[0]}"' not in html and f'data-exception-id="{ids[1]}"' not in html
    with connect_url(ui_stack.database_url) as conn:
        rows = conn.execute(
            "select exception_id, status, resolution_note, updated_by from sitoo_erp.exception "
            "where exception_id = any(%s) order by exception_id",
            (ids,),
        ).fetchall()
        audit = conn.execute(
            "select entity_key, action, actor from sitoo_erp.audit_log where entity = 'exception' "
            "and entity_key = any(%s) order by audit_id",
            ([str(i) for i in ids],),
        ).fetchall()
    assert rows == [
        (ids[0], "ignored", "test receipt from a training till", "ops"),
        (ids[1], "resolved", "fixed in the ERP by hand", "ops"),
    ]
    assert audit == [(str(ids[0]), "ignore", "ops"), (str(ids[1]), "resolve", "ops")]


def test_counts_follow_the_filters(api_server, ui_stack):
    with connect_url(ui_stack.database_url) as conn:
        conn.execute(  # a second kind, owned by finance, beside the planted unknown SKU
            "insert into sitoo_erp.exception (kind, subject_key, rule, message, owner) "
            "select 'tax_beyond_tolerance', 'counts:' || g, 'test', 'synthetic', 'finance' from generate_series(1, 3) g"
        )
        by_kind = dict(
            conn.execute(
                "select kind, count(*) from sitoo_erp.exception where status = 'open' group by kind"
            ).fetchall()
        )
        finance = conn.execute(
            "select count(*) from sitoo_erp.exception where status = 'open' and owner = 'finance'"
        ).fetchone()[0]
    assert len(by_kind) >= 2
    with api_server.client("ops") as ops:
        html = ops.get(PAGE, params={"kind": "unknown_sku"}).text
        owner_html = ops.get(PAGE, params={"owner": "finance"}).text
    count = re.search(r'id="queue-count">\(([\d,]+) open matching', html).group(1)
    assert int(count.replace(",", "")) == by_kind["unknown_sku"]
    facet_kind = html[html.index('id="facet-kind"') : html.index('id="facet-owner"')]
    assert "unknown_sku" in facet_kind and "tender_mismatch" not in facet_kind
    facet = owner_html[owner_html.index('id="facet-kind"') : owner_html.index('id="queue"')]
    assert "retail_ops" not in facet  # only finance's exceptions are counted
    count = re.search(r'id="queue-count">\(([\d,]+) open matching', owner_html).group(1)
    assert int(count.replace(",", "")) == finance
    with connect_url(ui_stack.database_url) as conn:
        conn.execute("delete from sitoo_erp.exception where subject_key like 'counts:%'")


def test_owner_change_is_audited_and_moves_open_exceptions(api_server, ui_stack):
    with connect_url(ui_stack.database_url) as conn:
        conn.execute(
            "insert into sitoo_erp.exception (kind, subject_key, rule, message, owner) "
            "values ('tender_mismatch', 'owner-move:1', 'test', 'synthetic', 'finance')"
        )
    with api_server.client("viewer") as viewer:
        assert viewer.post(f"{PAGE}owners", data={"kind": "stalled", "owner": "x"}).status_code == 403
    with api_server.client("ops") as ops:
        unknown = ops.post(f"{PAGE}owners", data={"kind": "no_such_kind", "owner": "x"})
        assert "err=" in unknown.headers["location"]
        moved = ops.post(f"{PAGE}owners", data={"kind": "tender_mismatch", "owner": "store_ops"})
        assert "msg=" in moved.headers["location"]
        html = ops.get(PAGE).text
        with connect_url(ui_stack.database_url) as conn:
            moved_owner = conn.execute(
                "select owner from sitoo_erp.exception where subject_key = 'owner-move:1'"
            ).fetchone()
        assert moved_owner == ("store_ops",)  # the open exception moved with its kind
        restored = ops.post(f"{PAGE}owners", data={"kind": "tender_mismatch", "owner": "finance"})
        assert "msg=" in restored.headers["location"]
    owners = html[html.index('id="owners"') :]
    assert re.search(
        r'data-owner-kind="tender_mismatch"><td>tender_mismatch</td><td class="owner">store_ops<', owners
    )
    with connect_url(ui_stack.database_url) as conn:
        audit = conn.execute(
            "select entity_key, actor, source, after ->> 'owner' from sitoo_erp.audit_log "
            "where entity = 'exception_owner' order by audit_id"
        ).fetchall()
        owner = conn.execute(
            "select distinct owner from sitoo_erp.exception where kind = 'tender_mismatch' and status = 'open'"
        ).fetchall()
    assert audit[-2:] == [
        ("tender_mismatch", "ops", "ui", "store_ops"),
        ("tender_mismatch", "ops", "ui", "finance"),
    ]
    assert owner == [("finance",)]
    with connect_url(ui_stack.database_url) as conn:
        conn.execute("delete from sitoo_erp.exception where subject_key = 'owner-move:1'")


def test_history_shows_who_when_and_why(api_server, ui_stack):
    earlier = datetime.now(UTC) - timedelta(days=3)
    with connect_url(ui_stack.database_url) as conn:
        ids = [
            conn.execute(
                "insert into sitoo_erp.exception (kind, subject_key, rule, message, first_seen_at) "
                "values ('erp_rejected', %s, 'test', 'synthetic history', %s) returning exception_id",
                (f"history:{n}", earlier),
            ).fetchone()[0]
            for n in range(2)
        ]
    with api_server.client("ops") as ops:
        ops.post(f"{PAGE}exceptions/{ids[0]}/ignore", data={"reason": "training till, not a sale"})
        ops.post(f"{PAGE}exceptions/{ids[1]}/resolve", data={"note": "re-keyed in NetSuite by hand"})
        ignored = ops.get(PAGE, params={"history": "ignored", "kind": "erp_rejected"}).text
        api = ops.get(f"{PAGE}api/history", params={"kind": "erp_rejected", "limit": 500}).json()
    history = ignored[ignored.index('id="closed"') :]
    assert f'data-closed-id="{ids[0]}" data-status="ignored"' in history
    assert f'data-closed-id="{ids[1]}"' not in history  # the status filter: ignored only
    row = history[history.index(f'data-closed-id="{ids[0]}"') :].split("</tr>")[0]
    assert '<td class="who">ops</td>' in row and "training till, not a sale" in row
    by_id = {r["exception_id"]: r for r in api["rows"]}
    assert by_id[ids[1]]["status"] == "resolved" and by_id[ids[1]]["updated_by"] == "ops"
    assert by_id[ids[1]]["resolution_note"] == "re-keyed in NetSuite by hand" and by_id[ids[1]]["resolved_at"]
    stamps = [r["resolved_at"] for r in api["rows"]]
    assert stamps == sorted(stamps, reverse=True)  # newest decision first
