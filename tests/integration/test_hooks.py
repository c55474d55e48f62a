"""SitooHook and NetSuiteHook against the real sandbox servers on 127.0.0.1 (no patching)."""

from __future__ import annotations

import time

import pytest

from include.sandbox.catalogue import build_catalogue
from include.sandbox.generator import generate_dataset, is_finalised
from include.sandbox.netsuite import NetSuiteSandbox
from include.sandbox.sitoo.state import SitooSandbox
from include.sandbox.stack import NETSUITE_CERTIFICATE_ID, NETSUITE_CLIENT_ID
from include.sitoo_erp.erp.adapter import DocumentKind, ErpRejected
from include.sitoo_erp.erp.netsuite import NetSuiteHook
from include.sitoo_erp.http_retry import AuthError, RetryPolicy, TransientApiError
from include.sitoo_erp.sitoo.hook import SitooHook
from include.sitoo_erp.sitoo.models import SitooOrder, SitooPayloadError
from tests.integration.connections import netsuite_conn

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=2)


@pytest.fixture(scope="module")
def sitoo():
    dataset = generate_dataset(seed=7, stores=3, days=2, receipts_per_store_day=40)
    with SitooSandbox(dataset) as sandbox:
        yield sandbox


@pytest.fixture
def sitoo_conn(sitoo, monkeypatch):
    sitoo.set_faults(rate_limit_rps=None, error_rate=0.0, hang_rate=0.0, latency_ms=0)
    sitoo._fail_next.clear()  # a previous test may leave scripted failures unconsumed
    sitoo.reset_counters()
    port = int(sitoo.url.rsplit(":", 1)[1])
    monkeypatch.setenv(
        "AIRFLOW_CONN_SITOO_DEFAULT",
        f'{{"conn_type": "http", "host": "127.0.0.1", "port": {port}, "login": "{sitoo.api_id}", '
        f'"password": "{sitoo.password}", "extra": {{"timeout": 5}}}}',
    )
    return sitoo


def visible_orderids(sandbox) -> list[int]:
    ds = sandbox.dataset
    return [oid for oid in range(10_001, ds.max_orderid + 1) if ds.row(oid)["dateadded"] <= sandbox.now]


def test_hook_pages_through_every_order_in_ascending_orderid(sitoo_conn):
    hook = SitooHook(page_size=25, retry=FAST)
    orders = list(hook.iter_orders())
    expected = visible_orderids(sitoo_conn)
    assert len(expected) > 200  # many pages
    assert [o.orderid for o in orders] == expected
    assert all(isinstance(o, SitooOrder) for o in orders)
    # Money is Decimal and each paid order balances (an open web order's payment is only reserved).
    for o in (o for o in orders if o.paymentstateid == 20):
        assert (
            sum((p.moneyamount for p in o.payments), start=o.moneytotal_gross_all * 0)
            == o.moneytotal_gross_all
        )


def test_window_filter_and_keyset_paging_agree_with_the_dataset(sitoo_conn):
    ds = sitoo_conn.dataset
    start, end = ds.day_bounds(ds.start)
    hook = SitooHook(page_size=10, retry=FAST)
    got = [p["orderid"] for p in hook.iter_order_payloads(orderdate_from=start, orderdate_to=end - 1)]
    want = [oid for oid in visible_orderids(sitoo_conn) if start <= ds.row(oid)["orderdate"] < end]
    assert got == want and len(want) > 10


def test_429_with_retry_after_is_honoured(sitoo_conn):
    sitoo_conn.set_faults(rate_limit_rps=20, rate_limit_burst=2)
    hook = SitooHook(page_size=20, retry=RetryPolicy(attempts=10, initial_wait=0.01, max_retry_after=2))
    began = time.monotonic()
    orders = list(hook.iter_order_payloads())
    assert len(orders) == len(visible_orderids(sitoo_conn))
    assert sitoo_conn.counters["rate_limited"] > 0
    # Retry-After is whole seconds (>= 1): having been told to wait, we did.
    assert time.monotonic() - began >= 1.0


def test_5xx_is_retried_then_surfaced_with_a_clear_error(sitoo_conn):
    sitoo_conn.fail_next(2, status=503)
    hook = SitooHook(page_size=500, retry=FAST)
    assert len(list(hook.iter_order_payloads())) == len(visible_orderids(sitoo_conn))

    sitoo_conn.fail_next(10, status=502)
    with pytest.raises(TransientApiError) as info:
        list(SitooHook(retry=FAST).iter_order_payloads())
    message = str(info.value)
    assert "Sitoo GET /orders.json failed after 4 attempts" in message and "502" in message


def test_timeouts_are_retried(sitoo_conn, monkeypatch):
    sitoo_conn.set_faults(hang_rate=1.0, hang_seconds=3)
    hook = SitooHook(timeout=0.3, retry=RetryPolicy(attempts=2, initial_wait=0.01))
    with pytest.raises(TransientApiError, match="failed after 2 attempts"):
        list(hook.iter_order_payloads())
    assert sitoo_conn.counters["hangs"] == 2


def test_bad_credentials_give_a_clear_error_without_the_password(sitoo_conn, monkeypatch):
    port = int(sitoo_conn.url.rsplit(":", 1)[1])
    monkeypatch.setenv(
        "AIRFLOW_CONN_SITOO_DEFAULT",
        f'{{"conn_type": "http", "host": "127.0.0.1", "port": {port}, "login": "90316-1", '
        '"password": "Wr0ng-Pa55word-123"}',
    )
    with pytest.raises(AuthError) as info:
        list(SitooHook(retry=FAST).iter_order_payloads())
    assert "refused the credentials of connection 'sitoo_default' (401)" in str(info.value)
    assert "Wr0ng-Pa55word-123" not in str(info.value)


def test_malformed_payload_names_the_order_and_field(monkeypatch):
    dataset = generate_dataset(seed=8, stores=1, days=1, receipts_per_store_day=5)
    with SitooSandbox(dataset) as sandbox:
        good = next(oid for oid in range(10_001, dataset.max_orderid + 1) if is_finalised(dataset.order(oid)))
        payload = dataset.order(good)
        payload["moneytotal_gross_all"] = "12,50"
        orderid = sandbox.add_order(
            payload=payload, orderdate=dataset.row(good)["orderdate"], dateadded=sandbox.now - 1
        )
        port = int(sandbox.url.rsplit(":", 1)[1])
        monkeypatch.setenv(
            "AIRFLOW_CONN_SITOO_DEFAULT",
            f'{{"conn_type": "http", "host": "127.0.0.1", "port": {port}, "login": "{sandbox.api_id}", '
            f'"password": "{sandbox.password}"}}',
        )
        with pytest.raises(SitooPayloadError) as info:
            list(SitooHook(retry=FAST).iter_orders(orderid_from=orderid))
    assert info.value.record == f"order {orderid}"
    assert info.value.field == "moneytotal_gross_all"


def test_stock_and_z_reports_are_typed(sitoo_conn):
    hook = SitooHook(page_size=100, retry=FAST)
    warehouses = list(hook.iter_warehouses())
    assert len(warehouses) == 3
    items = list(hook.iter_warehouse_items(warehouses[0].warehouseid))
    assert items and all(i.decimaltotal == i.decimaltotal.quantize(i.decimaltotal) for i in items)
    transactions = list(hook.iter_warehouse_transactions())
    assert {t.transactiontype for t in transactions} >= {30, 10}
    reports = list(hook.iter_z_reports(dateadded_from=0))
    assert len(reports) == 3 * 2  # one per register per business day


# ---------------------------------------------------------------------------------------------- NetSuite


@pytest.fixture(scope="module")
def netsuite():
    catalogue = build_catalogue(seed=7, stores=3)
    with NetSuiteSandbox(
        master=catalogue.erp_master_data(),
        client_id=NETSUITE_CLIENT_ID,
        certificate_id=NETSUITE_CERTIFICATE_ID,
    ) as sandbox:
        yield sandbox, catalogue


@pytest.fixture
def ns(netsuite, monkeypatch):
    sandbox, catalogue = netsuite
    sandbox.reset()
    netsuite_conn(monkeypatch, sandbox, timeout=2)
    return sandbox, catalogue


def sale_body(catalogue, external_id: str) -> dict:
    store = catalogue.stores[0]
    product = next(p for p in catalogue.products if p.in_erp and not p.erp_inactive and p.vat_rate == 20)
    return {
        "externalId": external_id,
        "entity": {"id": store.erp_customer_id},
        "subsidiary": {"id": "1"},
        "location": {"id": store.erp_location_id},
        "tranDate": "2026-11-16",
        "taxDetailsOverride": True,
        "item": {
            "items": [
                {
                    "item": {"id": product.erp_item_id},
                    "quantity": 1,
                    "rate": 10.0,
                    "amount": 10.0,
                    "location": {"id": store.erp_location_id},
                    "taxDetailsReference": "L1",
                }
            ]
        },
        "taxDetails": {
            "items": [
                {
                    "taxDetailsReference": "L1",
                    "taxType": {"id": "7"},
                    "taxCode": {"id": "41"},
                    "taxBasis": 10.0,
                    "taxRate": 20,
                    "taxAmount": 2.0,
                }
            ]
        },
    }


def test_upsert_twice_with_one_external_id_gives_one_document(ns):
    sandbox, catalogue = ns
    hook = NetSuiteHook(retry=FAST)
    first = hook.upsert_document(
        DocumentKind.SALE, "SITOO-S-ST001-R1", sale_body(catalogue, "SITOO-S-ST001-R1")
    )
    second = hook.upsert_document(
        DocumentKind.SALE, "SITOO-S-ST001-R1", sale_body(catalogue, "SITOO-S-ST001-R1")
    )
    assert first.erp_id == second.erp_id
    assert sandbox.count_documents_by_external_id() == {"SITOO-S-ST001-R1": 1}
    doc = hook.find_document(DocumentKind.SALE, "SITOO-S-ST001-R1")
    assert float(doc["taxTotal"]) == 2.0
    assert hook.find_document(DocumentKind.SALE, "SITOO-S-ST001-NOPE") is None
    assert hook.token_requests == 1  # cached


def test_timeout_after_commit_then_retry_gives_one_document(ns):
    sandbox, catalogue = ns
    sandbox.timeout_next_upserts(1)
    result = NetSuiteHook(retry=FAST).upsert_document(
        DocumentKind.SALE, "SITOO-S-ST001-R2", sale_body(catalogue, "SITOO-S-ST001-R2")
    )
    assert result.attempts == 2
    assert sandbox.count_documents_by_external_id() == {"SITOO-S-ST001-R2": 1}
    assert sandbox.counters()["timeouts_after_commit"] == 1


def test_concurrency_429_and_5xx_are_transient(ns):
    sandbox, catalogue = ns
    sandbox.fail_next(2)
    result = NetSuiteHook(retry=FAST).upsert_document(
        DocumentKind.SALE, "SITOO-S-ST001-R3", sale_body(catalogue, "SITOO-S-ST001-R3")
    )
    assert result.attempts == 3


def test_validation_errors_are_permanent_and_keep_the_erp_message(ns):
    sandbox, catalogue = ns
    body = sale_body(catalogue, "SITOO-S-ST001-R4")
    body["item"]["items"][0]["item"] = {"id": "999999999"}
    hook = NetSuiteHook(retry=FAST)
    with pytest.raises(ErpRejected) as info:
        hook.upsert_document(DocumentKind.SALE, "SITOO-S-ST001-R4", body)
    assert info.value.code == "INVALID_KEY_OR_REF"
    assert "999999999" in info.value.detail
    assert not info.value.transient
    assert sandbox.counters()["api_requests"] >= 1 and sandbox.count_documents_by_external_id() == {}


def test_bad_key_gives_a_clear_auth_error(ns, monkeypatch):
    sandbox, _ = ns
    netsuite_conn(monkeypatch, sandbox, certificate_id="wrong-cert", timeout=2)
    with pytest.raises(AuthError, match="refused the M2M token request"):
        NetSuiteHook(retry=FAST).access_token()


def test_expired_token_is_refreshed_once(ns):
    sandbox, catalogue = ns
    hook = NetSuiteHook(retry=FAST)
    hook.access_token()
    sandbox.expire_tokens()
    hook.upsert_document(DocumentKind.SALE, "SITOO-S-ST001-R5", sale_body(catalogue, "SITOO-S-ST001-R5"))
    assert hook.token_requests == 2


def test_item_lookup_and_on_hand_through_suiteql(ns):
    _, catalogue = ns
    known = [p for p in catalogue.products if p.in_erp][:3]
    unknown = next(p for p in catalogue.products if not p.in_erp)
    inactive = next(p for p in catalogue.products if p.erp_inactive)
    hook = NetSuiteHook(retry=FAST)
    items = hook.lookup_items(
        [*(p.sku for p in known), unknown.sku, inactive.sku, "O'Brien; drop table item"]
    )
    assert {s: i.item_id for s, i in items.items() if s != inactive.sku} == {
        p.sku: p.erp_item_id for p in known
    }
    assert unknown.sku not in items
    assert items[inactive.sku].is_inactive
    rows = list(hook.iter_on_hand([catalogue.stores[0].erp_location_id]))
    assert len(rows) == sum(1 for p in catalogue.products if p.in_erp)
    assert all(r.location_id == catalogue.stores[0].erp_location_id for r in rows)


def test_suiteql_pages_until_has_more_is_false(ns):
    hook = NetSuiteHook(retry=FAST)
    rows = list(hook.query("SELECT id, itemid FROM item ORDER BY id"))
    assert len(rows) > 390 and len({r["id"] for r in rows}) == len(rows)
    rows = list(hook.query("SELECT iil.item FROM inventoryitemlocations iil ORDER BY iil.item, iil.location"))
    assert len(rows) > 1000  # more than one page of 1000


def test_test_connection_says_what_is_wrong_without_the_secret(sitoo_conn, ns, monkeypatch):
    """The check a data engineer runs before the first DAG run (and the UI's Test button calls)."""
    ok, message = SitooHook(retry=FAST).test_connection()
    assert ok, message
    assert "store(s) visible" in message
    with NetSuiteHook(retry=FAST) as hook:
        ok, message = hook.test_connection()
    assert ok, message
    assert "token issued" in message

    port = int(sitoo_conn.url.rsplit(":", 1)[1])
    monkeypatch.setenv(
        "AIRFLOW_CONN_SITOO_DEFAULT",
        f'{{"conn_type": "http", "host": "127.0.0.1", "port": {port}, "login": "90316-1", '
        '"password": "Wr0ng-Pa55word-123"}',
    )
    ok, message = SitooHook(retry=FAST).test_connection()
    assert not ok and "(401)" in message and "Wr0ng-Pa55word-123" not in message
    sandbox, _ = ns
    netsuite_conn(monkeypatch, sandbox, certificate_id="wrong-cert", timeout=2)
    ok, message = NetSuiteHook(retry=FAST).test_connection()
    assert not ok and "refused the M2M token request" in message


def test_session_sends_the_bearer_token_never_basic_auth_or_our_settings(ns):
    """The connection's login/password are the M2M client id and the PEM private key: the session
    must send a bearer token, never Basic auth built from them, and never our settings as a header."""
    import requests

    from include.sitoo_erp.erp.netsuite import EXTRA_KEY

    with NetSuiteHook(retry=FAST) as hook:
        session = hook.session()
        assert EXTRA_KEY not in session.headers
        prepared = session.prepare_request(requests.Request("GET", f"{hook.base_url}/record/v1/cashSale/1"))
        authorization = prepared.headers["Authorization"]
        assert authorization.startswith("Bearer ") and authorization != "Bearer "
        assert "Basic" not in authorization and "PRIVATE KEY" not in str(prepared.headers)
