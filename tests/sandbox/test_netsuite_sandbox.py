"""NetSuite emulator: real server on 127.0.0.1, plain httpx client."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from include.sandbox.catalogue import build_catalogue
from include.sandbox.netsuite import NetSuiteFaults, NetSuiteSandbox

CLIENT_ID = "sandbox-client-id"
CERT_ID = "sandbox-cert-id"
REC = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
ITEM_A, ITEM_B = "100001", "100002"
LOC = "1001"
RANGE = "t.trandate >= TO_DATE('2025-03-01','YYYY-MM-DD') AND t.trandate < TO_DATE('2025-04-01','YYYY-MM-DD')"
Q1 = f"""SELECT t.type AS trantype, tl.location AS location_id,
       COUNT(DISTINCT t.id) AS docs, SUM(tl.netamount) AS net_amount
FROM transaction t JOIN transactionline tl ON tl.transaction = t.id
WHERE t.type IN ('CashSale', 'CashRfnd') AND {RANGE}
  AND t.externalid LIKE 'SITOO-%' AND tl.mainline = 'F' AND tl.taxline = 'F'
GROUP BY t.type, tl.location ORDER BY t.type, tl.location"""
Q2 = f"""SELECT tl.location AS location_id, td.taxcode AS tax_code_id, td.taxrate AS tax_rate,
       SUM(td.taxbasis) AS tax_basis, SUM(td.taxamount) AS tax_amount
FROM transactiontaxdetail td
JOIN transaction t ON t.id = td.transaction
JOIN transactionline tl ON tl.transaction = td.transaction AND tl.id = td.line
WHERE t.type IN ('CashSale', 'CashRfnd') AND {RANGE} AND t.externalid LIKE 'SITOO-%'
GROUP BY tl.location, td.taxcode, td.taxrate ORDER BY tl.location, td.taxcode"""
Q3 = f"""SELECT tal.account AS account_id, tl.location AS location_id,
       SUM(tal.debit) AS debit, SUM(tal.credit) AS credit
FROM transactionaccountingline tal
JOIN transactionline tl ON tl.transaction = tal.transaction AND tl.id = tal.transactionline
JOIN transaction t ON t.id = tal.transaction
WHERE tal.posting = 'T' AND {RANGE} AND t.externalid LIKE 'SITOO-%'
GROUP BY tal.account, tl.location ORDER BY tal.account, tl.location"""
Q5 = """SELECT iil.item AS item_id, i.itemid AS sku, iil.location AS location_id,
       iil.quantityonhand AS on_hand, iil.quantityavailable AS available
FROM inventoryitemlocations iil JOIN item i ON i.id = iil.item
WHERE iil.location = 12 ORDER BY iil.item"""


@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue(seed=42, stores=3, skus=60)


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def server(catalogue):
    master = catalogue.erp_master_data()
    # Location 12 exists too, so reference Q5 (WHERE iil.location = 12) runs verbatim on real rows.
    master["locations"].append({"id": "12", "name": "Store 12", "externalid": "ST012", "isinactive": "F"})
    ns = NetSuiteSandbox(
        master,
        client_id=CLIENT_ID,
        certificate_id=CERT_ID,
        on_hand=lambda item, loc: 10,
        faults=NetSuiteFaults(concurrency_limit=5),
    )
    with ns:
        yield ns


@pytest.fixture
def ns(server):
    server.reset()
    return server


@pytest.fixture
def client(ns):
    with httpx.Client(
        base_url=ns.url, headers={"Authorization": f"Bearer {ns.issue_token()}"}, timeout=5
    ) as c:
        yield c


def assertion(ns, key, **over):
    now = int(time.time())
    claims = {
        "iss": CLIENT_ID,
        "scope": "rest_webservices",
        "aud": ns.token_url,
        "iat": now,
        "exp": now + 3600,
    }
    headers = {"kid": over.pop("kid", CERT_ID), "typ": "JWT"}
    claims.update(over)
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def get_token(ns, jwt_text):
    return httpx.post(
        ns.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt_text,
        },
    )


def sale(lines, override=True, tax=None, date="2025-03-14", location=LOC, **extra):
    """lines: (item, qty, rate, amount, taxAmount, taxCode)."""
    body = {
        "entity": {"id": "5001"},
        "subsidiary": {"id": "1"},
        "location": {"id": location},
        "tranDate": date,
        "memo": "Sitoo receipt",
        "taxDetailsOverride": override,
        "item": {
            "items": [
                {
                    "item": {"id": it},
                    "quantity": q,
                    "rate": r,
                    "amount": a,
                    "location": {"id": location},
                    "taxDetailsReference": f"L{n}",
                }
                for n, (it, q, r, a, _t, _c) in enumerate(lines, 1)
            ]
        },
        "taxDetails": {
            "items": tax
            if tax is not None
            else [
                {
                    "taxDetailsReference": f"L{n}",
                    "taxType": {"id": "7"},
                    "taxCode": {"id": c},
                    "taxBasis": a,
                    "taxRate": {"41": 20, "42": 5, "43": 0}.get(c, 20),
                    "taxAmount": t,
                }
                for n, (_it, _q, _r, a, t, c) in enumerate(lines, 1)
            ]
        },
    }
    body.update(extra)
    return body


def put(client, rtype, eid, body):
    return client.put(f"{REC}/{rtype}/eid:{eid}", json=body)


def q(client, text, limit=1000, offset=0, prefer=True):
    headers = {"Prefer": "transient"} if prefer else {}
    return client.post(f"{SUITEQL}?limit={limit}&offset={offset}", json={"q": text}, headers=headers)


def assert_error(resp, status, code, field_fragment=None):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == status and body["title"] and body["type"]
    detail = body["o:errorDetails"][0]
    assert detail["o:errorCode"] == code, detail
    if field_fragment:
        assert field_fragment in detail["detail"] + detail.get("o:errorPath", ""), detail


# ---------------------------------------------------------------------------------------------- auth


def test_token_flow(ns, key):
    resp = get_token(ns, assertion(ns, key))
    assert resp.status_code == 200, resp.text
    tok = resp.json()
    assert tok["token_type"] == "bearer" and tok["expires_in"] == 3600
    r = httpx.get(
        f"{ns.url}{REC}/cashSale/eid:NOPE", headers={"Authorization": f"Bearer {tok['access_token']}"}
    )
    assert_error(r, 404, "NONEXISTENT_ID")

    assert get_token(ns, assertion(ns, key, kid="other-cert")).status_code == 401
    assert get_token(ns, assertion(ns, key, iss="someone-else")).status_code == 401
    assert get_token(ns, assertion(ns, key, aud="https://example.com/token")).status_code == 401
    assert get_token(ns, assertion(ns, key, scope="restlets")).status_code == 401
    now = int(time.time())
    assert get_token(ns, assertion(ns, key, iat=now - 7200, exp=now - 3600)).status_code == 401  # expired
    assert get_token(ns, assertion(ns, key, iat=now, exp=now + 7200)).status_code == 401  # too long
    bad_alg = jwt.encode(
        {"iss": CLIENT_ID},
        "secret-key-long-enough-for-hs256-0123456789",
        algorithm="HS256",
        headers={"kid": CERT_ID},
    )
    assert get_token(ns, bad_alg).status_code == 401

    assert_error(httpx.get(f"{ns.url}{REC}/cashSale/eid:X"), 401, "INVALID_LOGIN")
    assert_error(
        httpx.get(f"{ns.url}{REC}/cashSale/eid:X", headers={"Authorization": "Bearer nope"}),
        401,
        "INVALID_LOGIN",
    )


def test_bearer_expiry(ns, key):
    ns.set_token_lifetime(1)
    try:
        tok = get_token(ns, assertion(ns, key)).json()
        assert tok["expires_in"] == 1
        headers = {"Authorization": f"Bearer {tok['access_token']}"}
        assert httpx.get(f"{ns.url}{REC}/cashSale/eid:X", headers=headers).status_code == 404
        time.sleep(1.1)
        assert_error(httpx.get(f"{ns.url}{REC}/cashSale/eid:X", headers=headers), 401, "INVALID_LOGIN")
    finally:
        ns.set_token_lifetime(3600)


def test_signature_verified_when_public_key_configured(catalogue, key):
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with NetSuiteSandbox(
        catalogue.erp_master_data(), client_id=CLIENT_ID, certificate_id=CERT_ID, on_hand={}, public_key=pem
    ) as ns:
        assert get_token(ns, assertion(ns, key)).status_code == 200
        other = ec.generate_private_key(ec.SECP256R1())
        assert get_token(ns, assertion(ns, other)).status_code == 401


# ---------------------------------------------------------------------------------------------- records


def test_upsert_is_idempotent_and_stock_applied_once(ns, client):
    body = sale([(ITEM_A, 2, 10.0, 20.0, 4.0, "41")])
    r1 = put(client, "cashSale", "SITOO-S-1-100", body)
    assert r1.status_code == 204 and r1.headers["Location"].endswith(f"{REC}/cashSale/10001")
    r2 = put(client, "cashSale", "SITOO-S-1-100", body)
    assert r2.status_code == 204 and r2.headers["Location"] == r1.headers["Location"]
    assert ns.count_documents_by_external_id() == {"SITOO-S-1-100": 1}
    assert ns.on_hand(ITEM_A, LOC) == 8
    c = ns.counters()
    assert (c["created"], c["updated"], c["documents"]["cashSale"]) == (1, 1, 1)

    rec = client.get(f"{REC}/cashSale/eid:SITOO-S-1-100").json()
    assert rec["id"] == "10001" and rec["externalId"] == "SITOO-S-1-100"
    assert (rec["subtotal"], rec["taxTotal"], rec["total"], rec["discountTotal"]) == (20.0, 4.0, 24.0, 0.0)
    assert rec["item"]["items"][0]["item"]["id"] == ITEM_A and len(rec["taxDetails"]["items"]) == 1
    assert client.get(f"{REC}/cashSale/10001").json()["externalId"] == "SITOO-S-1-100"
    assert_error(client.get(f"{REC}/cashSale/99999"), 404, "NONEXISTENT_ID")
    assert_error(client.get(f"{REC}/cashRefund/eid:SITOO-S-1-100"), 404, "NONEXISTENT_ID")


def test_update_replaces_lines_with_stock_delta(ns, client):
    assert (
        put(client, "cashSale", "SITOO-S-1-1", sale([(ITEM_A, 3, 10.0, 30.0, 6.0, "41")])).status_code == 204
    )
    assert ns.on_hand(ITEM_A, LOC) == 7
    new = sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41"), (ITEM_B, 2, 5.0, 10.0, 2.0, "41")])
    assert put(client, "cashSale", "SITOO-S-1-1", new).status_code == 204
    assert (ns.on_hand(ITEM_A, LOC), ns.on_hand(ITEM_B, LOC)) == (9, 8)
    rows = ns.store.query(
        "SELECT COUNT(*) FROM transactionline WHERE \"transaction\" = 10001 AND taxline = 'F' "
        "AND mainline = 'F'"
    )
    assert rows[0][0] == 2
    # refund (+qty) and inventory adjustment (+adjustQtyBy), also upserted twice
    refund = sale([(ITEM_B, 1, 5.0, 5.0, 1.0, "41")])
    for _ in range(2):
        assert put(client, "cashRefund", "SITOO-R-1-2", refund).status_code == 204
    adj = {
        "subsidiary": {"id": "1"},
        "account": {"id": "510"},
        "adjLocation": {"id": LOC},
        "tranDate": "2025-03-14",
        "inventory": {"items": [{"item": {"id": ITEM_A}, "location": {"id": LOC}, "adjustQtyBy": -4}]},
    }
    for _ in range(2):
        assert put(client, "inventoryAdjustment", "SITOO-ADJ-1-20250314", adj).status_code == 204
    assert (ns.on_hand(ITEM_A, LOC), ns.on_hand(ITEM_B, LOC)) == (5, 9)
    assert len(ns.documents()) == 3 and len(ns.documents("cashRefund")) == 1


def test_validation_errors_name_the_field(ns, client, catalogue):
    ok = [(ITEM_A, 1, 10.0, 10.0, 2.0, "41")]
    missing_sku = next(p for p in catalogue.products if not p.in_erp).erp_item_id
    inactive = next(p for p in catalogue.products if p.erp_inactive).erp_item_id
    cases = [
        (sale([(missing_sku, 1, 10.0, 10.0, 2.0, "41")]), "INVALID_KEY_OR_REF", "item.items[0].item"),
        (sale([(inactive, 1, 10.0, 10.0, 2.0, "41")]), "INVALID_KEY_OR_REF", "inactive"),
        (sale(ok, location="9999"), "INVALID_KEY_OR_REF", "location"),
        (sale(ok, entity={"id": "1"}), "INVALID_KEY_OR_REF", "entity"),
        (sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "99")]), "INVALID_KEY_OR_REF", "taxCode"),
        (sale(ok, paymentMethod={"id": "77"}), "INVALID_KEY_OR_REF", "paymentMethod"),
        (sale(ok, discountItem={"id": "424242"}, discountRate=-1), "INVALID_KEY_OR_REF", "discountItem"),
        (
            sale(
                ok,
                tax=[
                    {
                        "taxDetailsReference": "L1",
                        "taxType": {"id": "7"},
                        "taxCode": {"id": "41"},
                        "taxBasis": 10.0,
                        "taxRate": 20,
                    }
                ],
            ),
            "USER_ERROR",
            "taxAmount",
        ),
        (sale(ok, tax=[]), "USER_ERROR", "L1"),
        (
            sale(
                ok,
                tax=[
                    {
                        "taxDetailsReference": "L9",
                        "taxType": {"id": "7"},
                        "taxCode": {"id": "41"},
                        "taxBasis": 10.0,
                        "taxRate": 20,
                        "taxAmount": 2.0,
                    }
                ],
            ),
            "USER_ERROR",
            "L9",
        ),
        (sale(ok, externalId="SITOO-S-1-other"), "INVALID_FLD_VALUE", "externalId"),
    ]
    for body, code, fragment in cases:
        assert_error(put(client, "cashSale", "SITOO-S-1-7", body), 400, code, fragment)
    assert_error(put(client, "cashSale", "SITOO|S|1", sale(ok)), 400, "INVALID_FLD_VALUE", "externalId")
    ns.set_faults(closed_periods=["2025-02"])
    assert_error(
        put(client, "cashSale", "SITOO-S-1-8", sale(ok, date="2025-02-28")), 400, "PERIOD_CLOSED", "2025-02"
    )
    assert ns.documents() == [] and ns.on_hand(ITEM_A, LOC) == 10
    assert ns.counters()["rejected_400"] == len(cases) + 2


def test_override_honoured_vs_recomputed_per_line(ns, client):
    # Three lines of 3.33 net at 20 %: per line 0.666 -> 0.67 (x3 = 2.01); the POS taxes 9.99 -> 2.00.
    lines = [
        (ITEM_A, 1, 3.33, 3.33, 0.67, "41"),
        (ITEM_B, 1, 3.33, 3.33, 0.67, "41"),
        ("100003", 1, 3.33, 3.33, 0.66, "41"),
    ]
    assert put(client, "cashSale", "SITOO-S-1-OVR", sale(lines)).status_code == 204
    assert put(client, "cashSale", "SITOO-S-1-CALC", sale(lines, override=False)).status_code == 204
    ovr = client.get(f"{REC}/cashSale/eid:SITOO-S-1-OVR").json()
    calc = client.get(f"{REC}/cashSale/eid:SITOO-S-1-CALC").json()
    assert (ovr["taxTotal"], ovr["total"]) == (2.0, 11.99)
    assert (calc["taxTotal"], calc["total"]) == (2.01, 12.0)
    assert [t["taxAmount"] for t in calc["taxDetails"]["items"]] == [0.67, 0.67, 0.67]
    # Half-up: 2.5 x 5 % = 0.125 -> 0.13
    assert (
        put(
            client, "cashSale", "SITOO-S-1-HU", sale([(ITEM_A, 1, 2.5, 2.5, 0, "42")], override=False)
        ).status_code
        == 204
    )
    assert client.get(f"{REC}/cashSale/eid:SITOO-S-1-HU").json()["taxTotal"] == 0.13


def test_body_discount(ns, client):
    lines = [(ITEM_A, 1, 100.0, 100.0, 18.0, "41")]
    body = sale(lines, discountItem={"id": "900"}, discountRate="-10%")
    assert put(client, "cashSale", "SITOO-S-1-D", body).status_code == 204
    rec = client.get(f"{REC}/cashSale/eid:SITOO-S-1-D").json()
    assert (rec["subtotal"], rec["discountTotal"], rec["taxTotal"], rec["total"]) == (
        100.0,
        -10.0,
        18.0,
        108.0,
    )
    body = sale(lines, discountItem={"id": "900"}, discountRate=-5.5)
    assert put(client, "cashSale", "SITOO-S-1-D", body).status_code == 204
    assert client.get(f"{REC}/cashSale/eid:SITOO-S-1-D").json()["total"] == 112.5
    # Ledger balances: debits == credits.
    ((debit, credit),) = ns.store.query("SELECT SUM(debit), SUM(credit) FROM transactionaccountingline")
    assert round(debit, 2) == round(credit, 2) == 118.0


# ---------------------------------------------------------------------------------------------- faults


def test_timeout_after_commit_then_get_and_reput(ns, client):
    body = sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")])
    ns.timeout_next_upserts(1)
    with pytest.raises(httpx.TransportError):
        put(client, "cashSale", "SITOO-S-2-1", body)
    assert client.get(f"{REC}/cashSale/eid:SITOO-S-2-1").status_code == 200
    assert put(client, "cashSale", "SITOO-S-2-1", body).status_code == 204
    assert ns.count_documents_by_external_id() == {"SITOO-S-2-1": 1}
    assert ns.on_hand(ITEM_A, LOC) == 9
    # "sleep" mode: the client's own timeout fires.
    ns.set_faults(timeout_mode="sleep", timeout_sleep_s=10)
    ns.timeout_next_upserts(1)
    with pytest.raises(httpx.ReadTimeout):
        client.put(f"{REC}/cashSale/eid:SITOO-S-2-2", json=body, timeout=0.5)
    assert client.get(f"{REC}/cashSale/eid:SITOO-S-2-2").status_code == 200
    c = ns.counters()
    assert c["timeouts_after_commit"] == 2 and c["faults_injected"] == 2


def test_fail_next_and_random_errors(ns, client):
    ns.fail_next(2)
    assert_error(client.get(f"{REC}/cashSale/eid:X"), 503, "SERVICE_UNAVAILABLE")
    assert client.get(f"{REC}/cashSale/eid:X").status_code == 503
    assert client.get(f"{REC}/cashSale/eid:X").status_code == 404
    ns.set_faults(error_rate=0.5, seed=7)
    first = [client.get(f"{REC}/cashSale/eid:X").status_code for _ in range(20)]
    ns.set_faults(seed=7)
    second = [client.get(f"{REC}/cashSale/eid:X").status_code for _ in range(20)]
    assert first == second and any(s >= 500 for s in first) and 404 in first
    assert ns.documents() == []


def test_concurrency_limit_and_latency_overlap(ns, client):
    url = f"{REC}/cashSale/eid:X"
    ns.set_faults(concurrency_limit=10, latency_ms=150)
    with ThreadPoolExecutor(10) as pool:
        codes = list(
            pool.map(lambda _: httpx.get(ns.url + url, headers=client.headers).status_code, range(10))
        )
    # Served side by side, not one after another (the sandbox counts requests in flight; no clock).
    assert codes == [404] * 10 and ns.counters()["max_in_flight"] >= 2
    # Two requests hold the account's two slots; every request meanwhile is throttled.
    ns.set_faults(concurrency_limit=2, latency_ms=0)
    ns.reset_counters()
    with ThreadPoolExecutor(2) as pool:
        with ns.holding():
            held = [pool.submit(httpx.get, ns.url + url, headers=client.headers) for _ in range(2)]
            while ns.counters()["in_flight"] < 2 and not any(f.done() for f in held):
                threading.Event().wait(0.01)
            throttled = [httpx.get(ns.url + url, headers=client.headers) for _ in range(4)]
        admitted = [f.result() for f in held]
    assert [r.status_code for r in admitted] == [404, 404]
    assert [r.status_code for r in throttled] == [429] * 4
    assert_error(throttled[0], 429, "CONCURRENCY_LIMIT_EXCEEDED")
    c = ns.counters()
    assert c["throttled_429"] == 4 and c["max_in_flight"] == 2 and c["in_flight"] == 0


def test_control_surface_over_http(ns, client):
    r = httpx.post(f"{ns.url}/_sandbox/faults", json={"latency_ms": 5, "closed_periods": ["2024-12"]})
    assert r.status_code == 200 and r.json()["latency_ms"] == 5 and ns.faults.closed_periods == ["2024-12"]
    assert httpx.post(f"{ns.url}/_sandbox/faults", json={"nope": 1}).status_code == 400
    put(client, "cashSale", "SITOO-S-3-1", sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")]))
    assert [d["externalId"] for d in httpx.get(f"{ns.url}/_sandbox/documents?type=cashSale").json()] == [
        "SITOO-S-3-1"
    ]
    assert httpx.get(f"{ns.url}/_sandbox/documents/by-external-id").json() == {"SITOO-S-3-1": 1}
    counters = httpx.get(f"{ns.url}/_sandbox/counters").json()
    assert counters["documents"]["cashSale"] == 1 and counters["created"] == 1
    assert httpx.post(f"{ns.url}/_sandbox/expire-tokens").status_code == 204
    assert client.get(f"{REC}/cashSale/eid:SITOO-S-3-1").status_code == 401
    assert httpx.post(f"{ns.url}/_sandbox/reset").status_code == 204
    assert ns.documents() == [] and ns.faults.latency_ms == 0 and ns.on_hand(ITEM_A, LOC) == 10


# ---------------------------------------------------------------------------------------------- SuiteQL


def post_reference_documents(client):
    a20 = [(ITEM_A, 2, 10.0, 20.0, 4.0, "41"), (ITEM_B, 1, 7.5, 7.5, 0.38, "42")]
    assert put(client, "cashSale", "SITOO-S-1-1", sale(a20)).status_code == 204
    assert (
        put(client, "cashSale", "SITOO-S-1-2", sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")])).status_code == 204
    )
    assert (
        put(
            client, "cashSale", "SITOO-S-2-1", sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")], location="1002")
        ).status_code
        == 204
    )
    assert (
        put(client, "cashRefund", "SITOO-R-1-3", sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")])).status_code
        == 204
    )
    # outside the range and not ours: must not count
    assert (
        put(
            client, "cashSale", "SITOO-S-1-9", sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")], date="2025-04-01")
        ).status_code
        == 204
    )
    assert put(client, "cashSale", "OTHER-1", sale([(ITEM_A, 1, 10.0, 10.0, 2.0, "41")])).status_code == 204


def test_suiteql_reference_queries(ns, client):
    post_reference_documents(client)
    r = q(client, Q1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["count"], body["hasMore"], body["offset"], body["totalResults"]) == (3, False, 0, 3)
    rows = [{k: v for k, v in row.items() if k != "links"} for row in body["items"]]
    assert rows == [
        {"trantype": "CashRfnd", "location_id": "1001", "docs": "1", "net_amount": "10"},
        {"trantype": "CashSale", "location_id": "1001", "docs": "2", "net_amount": "-37.5"},
        {"trantype": "CashSale", "location_id": "1002", "docs": "1", "net_amount": "-10"},
    ]
    rows = [{k: v for k, v in row.items() if k != "links"} for row in q(client, Q2).json()["items"]]
    assert rows == [
        {"location_id": "1001", "tax_code_id": "41", "tax_rate": "20", "tax_basis": "40", "tax_amount": "8"},
        {
            "location_id": "1001",
            "tax_code_id": "42",
            "tax_rate": "5",
            "tax_basis": "7.5",
            "tax_amount": "0.38",
        },
        {"location_id": "1002", "tax_code_id": "41", "tax_rate": "20", "tax_basis": "10", "tax_amount": "2"},
    ]
    rows = {
        (r["account_id"], r["location_id"]): (r.get("debit"), r.get("credit"))
        for r in q(client, Q3).json()["items"]
    }
    assert rows[("120", "1001")] == ("43.88", "12")  # two sales in, one refund out
    assert rows[("400", "1001")] == ("10", "37.5")
    rows = q(client, Q5).json()
    assert rows["totalResults"] == 60 - 1 and rows["items"][0]["location_id"] == "12"  # 1 SKU missing in ERP
    assert {r["on_hand"] for r in rows["items"]} == {"10"} and rows["items"][0]["sku"].startswith("SKU-")
    lookup = q(
        client,
        "SELECT id, itemid, isinactive FROM item WHERE itemid IN ('SKU-000001', 'SKU-000002', 'SKU-999999')",
    ).json()
    assert sorted((r["id"], r["itemid"], r["isinactive"]) for r in lookup["items"]) == [
        (ITEM_A, "SKU-000001", "F"),
        (ITEM_B, "SKU-000002", "F"),
    ]
    loc = q(client, "SELECT id, name, externalid FROM location WHERE isinactive = 'F' ORDER BY id").json()
    assert loc["totalResults"] == 4
    r = q(
        client,
        "SELECT TO_CHAR(t.trandate, 'YYYY-MM') AS ym, NVL(t.memo, 'none') AS memo, COUNT(*) AS n "
        "FROM transaction t GROUP BY TO_CHAR(t.trandate, 'YYYY-MM'), NVL(t.memo, 'none') ORDER BY 1",
    )
    assert [(x["ym"], x["n"]) for x in r.json()["items"]] == [("2025-03", "5"), ("2025-04", "1")]


def test_suiteql_paging_and_rejections(ns, client):
    seen, offset = [], 0
    while True:
        page = q(client, "SELECT id, itemid FROM item ORDER BY id", limit=25, offset=offset).json()
        seen += [r["id"] for r in page["items"]]
        assert page["totalResults"] == 62 and page["count"] == len(page["items"])
        if not page["hasMore"]:
            break
        assert any(link["rel"] == "next" for link in page["links"])
        offset += 25
    assert len(seen) == 62 == len(set(seen)) and seen == sorted(seen, key=int)
    assert_error(q(client, "SELECT id FROM item", prefer=False), 400, "INVALID_PARAMETER", "Prefer")
    for bad in (
        "DELETE FROM item",
        "UPDATE item SET isinactive = 'T'",
        "SELECT 1 FROM dual; SELECT 2 FROM dual",
        "DROP TABLE item",
        "SELEC id FROM item",
        "SELECT nope FROM item",
    ):
        assert_error(q(client, bad), 400, "INVALID_PARAMETER")
    assert q(client, "SELECT id FROM item", limit=1001).status_code == 400
    assert_error(q(client, "SELECT a.id FROM item a, item b, item c"), 400, "INVALID_PARAMETER", "100000")
    assert q(client, "SELECT id FROM item").json()["totalResults"] == 62  # table untouched


def test_suiteql_per_receipt_read_answers_per_document_and_tax_code(ns, client):
    """The reconciliation's per-receipt read (one row per document x tax code: type, date, tax per
    code, item lines as count / quantity / item x quantity) as NetSuite stores it: a sale's lines negative."""
    from datetime import date

    from include.sitoo_erp.erp.netsuite_ledger import receipt_buckets_sql, receipts_sql

    post_reference_documents(client)
    buckets = q(client, receipt_buckets_sql(date(2025, 3, 1), date(2025, 4, 1), ["1001"])).json()["items"]
    assert [(b["bucket"], b["docs"]) for b in buckets] == [("10", "3")]  # ids 10001.. -> bucket 10
    window = (10_000, 10_999)
    body = q(client, receipts_sql(date(2025, 3, 1), date(2025, 4, 1), ["1001"], window)).json()
    rows = [{k: v for k, v in row.items() if k != "links"} for row in body["items"]]
    by = {(r["external_id"], r["tax_code_id"]): r for r in rows}
    assert sorted(by) == [
        ("SITOO-R-1-3", "41"),
        ("SITOO-S-1-1", "41"),
        ("SITOO-S-1-1", "42"),
        ("SITOO-S-1-2", "41"),
    ]  # not the other location, not April, not someone else's externalId
    a, b = int(ITEM_A), int(ITEM_B)
    s11 = by[("SITOO-S-1-1", "41")]
    assert (s11["trantype"], s11["trandate"], s11["lines"], s11["qty"]) == (
        "CashSale",
        "2025-03-14",
        "1",
        "-2",
    )
    assert (s11["item_qty"], s11["tax_basis"], s11["tax_amount"]) == (str(-2 * a), "20", "4")
    s12 = by[("SITOO-S-1-1", "42")]
    assert (s12["qty"], s12["item_qty"], s12["tax_basis"], s12["tax_amount"]) == (
        "-1",
        str(-b),
        "7.5",
        "0.38",
    )
    r13 = by[("SITOO-R-1-3", "41")]
    assert (r13["trantype"], r13["qty"], r13["item_qty"], r13["tax_amount"]) == ("CashRfnd", "1", str(a), "2")
    assert (
        q(client, receipts_sql(date(2025, 3, 1), date(2025, 4, 1), ["1001"], (11_000, 11_999))).json()[
            "items"
        ]
        == []
    )  # outside the id window
