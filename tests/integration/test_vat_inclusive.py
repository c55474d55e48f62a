"""VAT-inclusive store receipts pass the quality gate and post with ERP tax = POS VAT (issue 11, 1 and 5).

Hand-built the way a UK/Nordic till writes them (shelf prices include VAT, VAT derived from the gross,
per line or once per receipt), staged on a real PostgreSQL among a generated batch, through the GX
gate, then posted by ``post_ready`` through ``NetSuiteHook`` to the NetSuite emulator and read back.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from include.sandbox.catalogue import UNMAPPED_TENDER
from include.sandbox.generator import generate_dataset
from include.sandbox.netsuite import NetSuiteSandbox
from include.sandbox.stack import NETSUITE_CERTIFICATE_ID, NETSUITE_CLIENT_ID
from include.sitoo_erp.erp.adapter import DocumentKind
from include.sitoo_erp.erp.netsuite import NetSuiteHook
from include.sitoo_erp.http_retry import RetryPolicy
from include.sitoo_erp.posting.classify import classify
from include.sitoo_erp.posting.documents import external_id_for
from include.sitoo_erp.posting.post import post_ready
from include.sitoo_erp.quality.gate import run_gate
from include.sitoo_erp.reconciliation.compare import _receipt_rates
from include.sitoo_erp.staging.orders import stage_orders
from tests.integration.connections import netsuite_conn
from tests.integration.test_quality_gate import _exceptions, _plain_sales, _seed, _state

D = Decimal
CENT = D("0.01")


def pennies(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _vat_inclusive(order: dict, items: list[tuple], per: str, **ad: str) -> dict:
    """Rewrite ``order`` as a VAT-inclusive till's receipt.

    items = (template row, qty, shelf gross, rate[, bonus cheque gross per unit]). A bonus cheque is
    written the way Sitoo documents it: in the row price (net unit prices ``moneyoriginalprice`` -
    ``moneydiscountedprice`` = ``moneydiscount``), ``crm-bonuscheckid`` on the row, no voucher code.
    """
    rows, gross_by, vat_by_row = [], {}, {}
    for i, (template, qty, shelf, rate, *bonus) in enumerate(items):
        paid = D(shelf) - (D(bonus[0]) if bonus else 0)
        gross = paid * qty
        vat = pennies(gross * rate / (100 + rate))
        net = gross - vat
        row = copy.deepcopy(template)
        unit = pennies(paid - pennies(paid * rate / (100 + rate)))
        orig = pennies(D(shelf) - pennies(D(shelf) * rate / (100 + rate)))
        row.update(
            orderitemid=i,
            quantity=qty,
            vatvalue=rate,
            decimalquantitytotal=f"{qty}.000",
            moneynetpriceperunit=str(unit),
            moneyoriginalprice=str(orig),
            moneydiscountedprice=str(unit) if bonus else "0.00",
            moneydiscount=str(orig - unit) if bonus else "0.00",
            moneyitemtotal_net=str(net),
            moneyitemtotal_vat=str(vat),
            vouchercode="",
            additionaldata={**row["additionaldata"], **({"crm-bonuscheckid": f"BC{i}"} if bonus else {})},
        )
        rows.append(row)
        gross_by[rate] = gross_by.get(rate, D(0)) + gross
        vat_by_row[rate] = vat_by_row.get(rate, D(0)) + vat
    due = sum(gross_by.values(), D(0))
    if per == "receipt":  # VAT once per rate from the rate's gross
        vat = sum((pennies(g * r / (100 + r)) for r, g in gross_by.items()), D(0))
    else:
        vat = sum(vat_by_row.values(), D(0))
    order = copy.deepcopy(order)
    order["orderitems"] = rows
    for k in ("moneytotal_net", "moneyfinal_net"):
        order[k] = str(due - vat)
    for k in ("moneytotal_vat", "moneyfinal_vat"):
        order[k] = str(vat)
    order["moneytotal_gross_all"] = str(due)
    order["payments"] = [dict(order["payments"][0], moneyamount=str(due))]
    order["additionaldata"].update(ad)
    return order


@pytest.fixture(scope="module")
def dataset():
    return generate_dataset(seed=42, stores=2, days=1, receipts_per_store_day=40)


@pytest.fixture(scope="module")
def clean_payloads(dataset):
    out = list(dataset.iter_orders())
    for o in out:
        for p in o["payments"]:
            if p["name"] == UNMAPPED_TENDER:  # the generator's own planted fault, not this test's subject
                p["name"] = "Card"
    return out


@pytest.fixture
def netsuite(dataset, monkeypatch):
    with NetSuiteSandbox(
        master=dataset.catalogue.erp_master_data(),
        client_id=NETSUITE_CLIENT_ID,
        certificate_id=NETSUITE_CERTIFICATE_ID,
    ) as sandbox:
        netsuite_conn(monkeypatch, sandbox)
        hook = NetSuiteHook(
            retry=RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=2)
        )
        yield hook
        hook.close()


def test_vat_inclusive_receipts_pass_the_gate_and_post_the_pos_vat(
    staging_conn, staging_url, dataset, clean_payloads, netsuite
):
    conn = staging_conn
    _seed(conn, dataset)
    payloads = copy.deepcopy(clean_payloads)
    victims = _plain_sales(payloads, 5)
    rows = [r for o in payloads for r in o["orderitems"] if r.get("sku", "").startswith("SKU-")]
    at20 = next(r for r in rows if r["vatvalue"] == 20)
    at5 = next(r for r in rows if r["vatvalue"] == 5)
    built = {
        # The case: 3 x 0.99 at 20 %, VAT from the receipt gross: 2.97 / 0.50 / 2.47.
        "penny_receipt": _vat_inclusive(victims[0], [(at20, 1, "0.99", 20)] * 3, "receipt"),
        # The same basket, VAT per line from the gross: 0.51.
        "penny_lines": _vat_inclusive(victims[1], [(at20, 1, "0.99", 20)] * 3, "lines"),
        # Two rates, VAT per receipt from each rate's gross.
        "two_rates": _vat_inclusive(
            victims[2], [(at20, 1, "0.99", 20)] * 3 + [(at5, 2, "1.05", 5)], "receipt"
        ),
        # Issue point 5, in Sitoo's shape: a 6.00 bonus cheque in the row price (20.00 -> 14.00 on the
        # shelf; net unit 16.67 -> 11.67, moneydiscount 5.00), the member on the order.
        "loyalty": _vat_inclusive(
            victims[3],
            [(at20, 1, "20.00", 20, "6.00")],
            "receipt",
            **{"crm-membernumber": "M0000042", "crm-customerid": "c0ffee"},
        ),
        # Cheques on two rates, VAT per line: 12.00 - 2.00 @20 %, 10.50 - 1.00 @5 %.
        "loyalty_two_rates": _vat_inclusive(
            victims[4], [(at20, 1, "12.00", 20, "2.00"), (at5, 1, "10.50", 5, "1.00")], "lines"
        ),
    }
    assert (
        built["penny_receipt"]["moneyfinal_vat"] == "0.50"
        and built["penny_receipt"]["moneyfinal_net"] == "2.47"
    )
    assert (
        built["loyalty"]["moneyfinal_vat"] == "2.33"
        and built["loyalty"]["orderitems"][0]["moneydiscount"] == "5.00"
    )
    # A bonus-cheque row whose discount is above its original price: the original price cannot be
    # posted, a payload problem, not a VAT difference.
    (extra,) = _plain_sales([o for o in payloads if o["orderid"] not in {v["orderid"] for v in victims}], 1)
    bad = _vat_inclusive(extra, [(at20, 1, "12.00", 20, "2.00")], "lines")
    bad["orderitems"][0]["moneydiscount"] = str(D(bad["orderitems"][0]["moneyoriginalprice"]) + 1)
    by_id = {o["orderid"]: o for o in payloads}
    for o in [*built.values(), bad]:
        by_id[o["orderid"]] = o
    stage_orders(conn, list(by_id.values()))
    classify(conn)

    run_gate(staging_url, conn, run_label="vat-inclusive")
    for name, o in built.items():
        assert _state(conn, o["orderid"]) == ("held", "ready to post"), (
            name,
            _exceptions(conn, o["orderid"]),
        )
        assert _exceptions(conn, o["orderid"]) == [], name

    state, reason = _state(conn, bad["orderid"])
    (exc,) = _exceptions(conn, bad["orderid"])
    assert state == "quarantined" and "loyalty_row_discount" in reason
    assert exc[0] == "malformed_payload" and exc[6] == "sitoo_order_row.discount_unit"
    assert (
        "above moneyoriginalprice" in exc[3] and "POS VAT" not in exc[3]
    )  # the only exception: no VAT reason

    post_ready(conn, netsuite)
    for name, o in built.items():
        assert _state(conn, o["orderid"])[0] == "posted", name
        eid = external_id_for(
            DocumentKind.SALE,
            o["additionaldata"]["store-externalid"],
            o["additionaldata"]["pos-receiptid"],
            o["orderid"],
        )
        record = netsuite.find_document(DocumentKind.SALE, eid)
        assert D(str(record["taxTotal"])).quantize(CENT) == D(o["moneyfinal_vat"]), name
        assert D(str(record["total"])).quantize(CENT) == D(o["moneytotal_gross_all"]), name
        per_rate: dict[Decimal, Decimal] = {}
        for t in record["taxDetails"]["items"]:
            rate = D(str(t["taxRate"])).normalize()
            per_rate[rate] = per_rate.get(rate, D(0)) + D(str(t["taxAmount"])).quantize(CENT)
        if name == "two_rates":  # each rate's VAT from its own gross: 2.97 -> 0.50, 2.10 -> 0.10
            assert per_rate == {D(20): D("0.50"), D(5): D("0.10")}
    variance = conn.execute(
        "select vat_rate, pos_tax, erp_line_tax, variance from sitoo_erp.receipt_tax_variance where orderid = %s",
        (built["penny_receipt"]["orderid"],),
    ).fetchall()
    # The ERP alone would charge 0.17 + 0.16 + 0.16 on the posted lines: the cent is recorded as variance.
    assert [(D(r).normalize(), p, e, v) for r, p, e, v in variance] == [
        (D(20), D("0.50"), D("0.49"), D("0.01"))
    ]
    for name, net_back in (("loyalty", "-5.00"), ("loyalty_two_rates", "-2.62")):
        o = built[name]
        doc = netsuite.find_document(
            DocumentKind.SALE,
            external_id_for(
                DocumentKind.SALE,
                o["additionaldata"]["store-externalid"],
                o["additionaldata"]["pos-receiptid"],
                o["orderid"],
            ),
        )
        # The cheque's net at document level (6.00 = 5.00 + 1.00 VAT; 1.67 + 0.95 on two rates) ...
        assert D(str(doc["discountTotal"])).quantize(CENT) == D(net_back), name
        # ... and each line at its original price: the shelf price before the cheque, never a line discount.
        lines = doc["item"]["items"]
        assert [D(str(x["rate"])).quantize(CENT) for x in lines] == [
            D(r["moneyoriginalprice"]) for r in o["orderitems"]
        ], name
        assert all(not any("discount" in k.lower() for k in x) for x in lines), name

    # The monthly reconciliation sees each receipt as the ERP holds it: net and VAT per rate by the
    # same rule, so net + VAT = the receipt's gross (after the bonus cheque, as the customer paid).
    ids = {o["orderid"]: name for name, o in built.items()}
    recon = conn.execute(
        _receipt_rates() + " select orderid, vat_rate, net, tax from rr where orderid = any(%(ids)s)",
        {
            "date_from": date(2000, 1, 1),
            "date_to": date(2100, 1, 1),
            "all_stores": True,
            "stores": [],
            "ids": list(ids),
        },
    ).fetchall()
    seen: dict[str, dict] = {}
    for oid, rate, net, tax in recon:
        seen.setdefault(ids[oid], {})[D(rate).normalize()] = (net, tax)
    assert seen["penny_receipt"] == {D(20): (D("2.47"), D("0.50"))}
    assert seen["two_rates"] == {D(20): (D("2.47"), D("0.50")), D(5): (D("2.00"), D("0.10"))}
    assert seen["loyalty"] == {D(20): (D("11.67"), D("2.33"))}
    for name, o in built.items():
        assert sum(n + t for n, t in seen[name].values()) == D(o["moneytotal_gross_all"]), name
