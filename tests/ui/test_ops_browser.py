"""The page in headless Chromium against the running api-server: log in through Airflow's own login
form, open the page in the Airflow UI, filter, map the unknown SKU, run the next hour, see it post."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, run_hour, task_states
from tests.ui.apiserver import USERS
from tests.ui.conftest import ARTIFACTS

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (.ci/run installs it: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="ops-chromium-")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1000},
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _stand_in_item(stack, sku: str) -> str:
    """A real, active ERP item with the same VAT rate (what ops would look up in the ERP)."""
    products = stack.dataset.catalogue.product_by_sku()
    return next(
        p.erp_item_id
        for p in stack.dataset.catalogue.products
        if p.in_erp and not p.erp_inactive and p.vat_rate == products[sku].vat_rate
    )


def test_login_filter_map_unknown_sku_and_the_next_run_posts_it(
    api_server, ui_stack, sales_dag, browser_page
):
    page, base = browser_page, api_server.url
    orderid = ui_stack.planted["unknown_sku"]
    with connect_url(ui_stack.database_url) as conn:
        exception_id, sku, state = conn.execute(
            "select e.exception_id, e.sku, s.state from sitoo_erp.exception e "
            "join sitoo_erp.order_state s using (orderid) "
            "where e.orderid = %s and e.kind = 'unknown_sku' and e.status = 'open'",
            (orderid,),
        ).fetchone()
    assert state == "quarantined"

    # Not logged in: the page refuses and offers Airflow's login.
    denied = page.goto(f"{base}/sitoo-erp-ops/")
    assert denied.status == 401
    page.get_by_text("Sign in to Airflow").click()

    # Airflow's own login form (SimpleAuthManager), then back to the page.
    page.wait_for_url("**/auth/login**")
    page.locator("input[name=username]").fill("ops")
    page.locator("input[name=password]").fill(USERS["ops"][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/sitoo-erp-ops/**")
    assert page.locator("#user").inner_text() == "ops"

    # The page inside the Airflow UI (nav entry -> iframe).
    page.goto(f"{base}/plugin/sitoo-erp-ops")
    frame = page.frame_locator("iframe").first
    frame.locator("#exceptions").wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "ops_page_in_airflow_ui.png"))

    # Filter to unknown SKUs.
    page.goto(f"{base}/sitoo-erp-ops/")
    page.locator("#filters select[name=kind]").select_option("unknown_sku")
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url("**kind=unknown_sku**")
    kinds = page.locator("#exceptions tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds and set(kinds) == {"unknown_sku"}
    page.screenshot(path=str(ARTIFACTS / "ops_page_filtered.png"), full_page=True)

    # Map the SKU to an ERP item from the exception's own row.
    row = page.locator(f'tr[data-exception-id="{exception_id}"]')
    assert sku in row.inner_text()
    row.locator("summary").click()
    form = row.locator("form.fix-mapping")
    form.locator("input[name=item_id]").fill(_stand_in_item(ui_stack, sku))
    form.locator("input[name=note]").fill("new season SKU, same item as the ERP's")
    form.get_by_role("button", name="Save mapping").click()
    page.wait_for_url("**msg=**")
    assert "saved" in page.locator("#flash-ok").inner_text()
    assert sku in page.locator("#edits").inner_text()
    with connect_url(ui_stack.database_url) as conn:
        mapped = conn.execute(
            "select item_id, updated_by from sitoo_erp.map_sku_item where sku = %s", (sku,)
        ).fetchone()
        audit = conn.execute(
            "select actor, source from sitoo_erp.audit_log where entity = 'map_sku_item' and entity_key = %s",
            (sku,),
        ).fetchall()
    assert mapped == (_stand_in_item(ui_stack, sku), "ops") and audit == [("ops", "ui")]

    # The next hourly run re-gates the quarantined receipt, posts it and closes its exception.
    run = run_hour(sales_dag, at(10))
    assert str(run.state) == "success", task_states(run)
    with connect_url(ui_stack.database_url) as conn:
        state = conn.execute(
            "select state from sitoo_erp.order_state where orderid = %s", (orderid,)
        ).fetchone()
        status = conn.execute(
            "select status from sitoo_erp.exception where exception_id = %s", (exception_id,)
        ).fetchone()
        posted = conn.execute(
            "select count(*) from sitoo_erp.posting_log where orderid = %s", (orderid,)
        ).fetchone()
    assert state == ("posted",) and status == ("resolved",) and posted == (1,)
    assert ui_stack.netsuite.count_documents_by_external_id()  # the ERP has the documents

    # The page no longer lists it; the run and the edit are there.
    page.goto(f"{base}/sitoo-erp-ops/?kind=unknown_sku")
    assert page.locator(f'tr[data-exception-id="{exception_id}"]').count() == 0
    runs = page.locator("#runs").inner_text()
    assert "sitoo_sales_hourly" in runs and "success" in runs
    page.goto(f"{base}/sitoo-erp-ops/")
    page.screenshot(path=str(ARTIFACTS / "ops_page.png"), full_page=True)


def _login(page, base: str) -> None:
    page.goto(f"{base}/auth/login")
    page.locator("input[name=username]").fill("ops")
    page.locator("input[name=password]").fill(USERS["ops"][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.wait_for_load_state("networkidle")


def _new_store_sale(stack) -> tuple[int, str]:
    """A sale at 12:10 in a store whose ERP location mapping is gone (a store opened without one)."""
    from tests.e2e.helpers import clean_sale

    payload = clean_sale(stack)
    payload["additionaldata"]["pos-receiptid"] = "NEW-STORE-1"
    orderid = stack.sitoo.add_order(
        payload=payload, orderdate=at(12, 10).timestamp(), dateadded=at(12, 11).timestamp()
    )
    return orderid, payload


def _orphaned_return(stack) -> int:
    """A return at 12:20 whose original sale Sitoo never sent us (ops will ignore it)."""
    import copy

    ds = stack.dataset
    template = next(
        ds.order(oid)
        for oid in range(10_001, ds.max_orderid + 1)
        if ds.order(oid).get("creditorderid")
        and "pos-refundsales-orderid" not in ds.order(oid)["additionaldata"]
    )
    payload = copy.deepcopy(template)
    payload["creditorderid"] = 999_998
    payload["additionaldata"]["pos-originalsales-orderid"] = "999998"
    payload["additionaldata"]["pos-receiptid"] = "ORPHAN-RETURN-UI"
    return stack.sitoo.add_order(
        payload=payload, orderdate=at(12, 20).timestamp(), dateadded=at(12, 21).timestamp()
    )


def test_the_page_forms_add_a_mapping_change_an_owner_and_ignore_with_a_reason(
    api_server, ui_stack, sales_dag, browser_page
):
    page, base = browser_page, api_server.url
    _, payload = _new_store_sale(ui_stack)
    orphan = _orphaned_return(ui_stack)
    store_key = payload["additionaldata"]["store-externalid"]
    with connect_url(ui_stack.database_url) as conn:
        mapping = conn.execute(
            "delete from sitoo_erp.map_store_location where store_externalid = %s "
            "returning location_id, customer_id, subsidiary_id",
            (store_key,),
        ).fetchone()
    run = run_hour(sales_dag, at(12))
    assert str(run.state) == "success", task_states(run)
    with connect_url(ui_stack.database_url) as conn:
        missing = conn.execute(
            "select exception_id from sitoo_erp.exception where kind = 'missing_mapping' and status = 'open' "
            "and store_externalid = %s order by exception_id",
            (store_key,),
        ).fetchall()
    assert missing, "the unmapped store's receipts are quarantined as missing_mapping"
    first = missing[0][0]

    _login(page, base)
    page.goto(f"{base}/sitoo-erp-ops/?kind=missing_mapping")
    row = page.locator(f'tr[data-exception-id="{first}"]')
    row.locator("summary").click()
    form = row.locator("form.fix-mapping")
    assert store_key in form.inner_text()
    # A location the ERP does not have: refused with key, field and rule; nothing saved.
    form.locator("input[name=location_id]").fill("9999")
    form.locator("input[name=customer_id]").fill(mapping[1])
    form.locator("input[name=subsidiary_id]").fill(mapping[2])
    page.screenshot(path=str(ARTIFACTS / "ops_page_missing_mapping_form.png"), full_page=False)
    form.get_by_role("button", name="Save mapping").click()
    page.wait_for_url("**err=**")
    refusal = page.locator("#flash-err").inner_text()
    assert f"{store_key}: location_id 9999 refused (erp.location_exists)" in refusal
    page.screenshot(path=str(ARTIFACTS / "ops_page_mapping_refused.png"))
    with connect_url(ui_stack.database_url) as conn:
        assert conn.execute(
            "select count(*) from sitoo_erp.map_store_location where store_externalid = %s", (store_key,)
        ).fetchone() == (0,)

    # The right location: saved, and every missing_mapping of that store closes at once.
    row = page.locator(f'tr[data-exception-id="{first}"]')
    row.locator("summary").click()
    form = row.locator("form.fix-mapping")
    form.locator("input[name=location_id]").fill(mapping[0])
    form.locator("input[name=customer_id]").fill(mapping[1])
    form.locator("input[name=subsidiary_id]").fill(mapping[2])
    form.locator("input[name=note]").fill("store opened without a mapping")
    form.get_by_role("button", name="Save mapping").click()
    page.wait_for_url("**msg=**")
    assert f"{len(missing)} exception(s) it fixes closed" in page.locator("#flash-ok").inner_text()
    assert page.locator(f'tr[data-exception-id="{first}"]').count() == 0
    with connect_url(ui_stack.database_url) as conn:
        still_open = conn.execute(
            "select count(*) from sitoo_erp.exception where exception_id = any(%s) and status = 'open'",
            ([m[0] for m in missing],),
        ).fetchone()[0]
        audit = conn.execute(
            "select actor, source, note from sitoo_erp.audit_log where entity = 'map_store_location' "
            "and entity_key = %s",
            (store_key,),
        ).fetchall()
    assert still_open == 0 and audit == [("ops", "ui", "store opened without a mapping")]

    # Change an owner.
    page.goto(f"{base}/sitoo-erp-ops/#owners")
    owner_row = page.locator('#owners tr[data-owner-kind="stalled"]')
    owner_row.locator("input[name=owner]").fill("store_ops")
    page.screenshot(path=str(ARTIFACTS / "ops_page_owners_form.png"))
    owner_row.get_by_role("button", name="Set owner").click()
    page.wait_for_url("**msg=**")
    assert page.locator('#owners tr[data-owner-kind="stalled"] td.owner').inner_text() == "store_ops"

    # Ignore an exception with a reason: it leaves the queue and shows in the history with who and why.
    with connect_url(ui_stack.database_url) as conn:
        tender_exc = conn.execute(
            "select exception_id from sitoo_erp.exception where orderid = %s and status = 'open'", (orphan,)
        ).fetchone()[0]
    page.goto(f"{base}/sitoo-erp-ops/?kind=orphaned_return")
    row = page.locator(f'tr[data-exception-id="{tender_exc}"]')
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("refund of a pre-go-live sale, booked by hand")
    page.screenshot(path=str(ARTIFACTS / "ops_page_ignore_form.png"))
    row.get_by_role("button", name="Ignore").click()
    page.wait_for_url("**msg=**")
    assert page.locator(f'#exceptions tr[data-exception-id="{tender_exc}"]').count() == 0
    page.goto(f"{base}/sitoo-erp-ops/?history=ignored#history")
    closed = page.locator(f'#closed tr[data-closed-id="{tender_exc}"]')
    assert closed.locator("td.who").inner_text() == "ops"
    assert "pre-go-live" in closed.locator("td.why").inner_text()
    page.locator("#history").screenshot(path=str(ARTIFACTS / "ops_page_history.png"))
    with connect_url(ui_stack.database_url) as conn:
        status = conn.execute(
            "select status, updated_by from sitoo_erp.exception where exception_id = %s", (tender_exc,)
        ).fetchone()
        audits = conn.execute(
            "select entity, entity_key, action, actor from sitoo_erp.audit_log "
            "where (entity = 'exception' and entity_key = %s) or (entity = 'exception_owner' and entity_key = 'stalled')"
            " order by audit_id",
            (str(tender_exc),),
        ).fetchall()
        state = conn.execute(
            "select state from sitoo_erp.order_state where orderid = %s", (orphan,)
        ).fetchone()
    assert status == ("ignored", "ops") and state == ("excluded",)
    assert audits == [
        ("exception_owner", "stalled", "update", "ops"),
        ("exception", str(tender_exc), "ignore", "ops"),
    ]

    # Layout: the tax-variance card is not clipped, and the nav label fits.
    page.goto(f"{base}/sitoo-erp-ops/")
    clipped = page.locator("#variance").evaluate("el => el.scrollWidth > el.clientWidth + 1")
    assert not clipped
    page.screenshot(path=str(ARTIFACTS / "ops_page_with_forms.png"), full_page=True)
    page.goto(f"{base}/plugin/sitoo-erp-ops")
    page.frame_locator("iframe").first.locator("#exceptions").wait_for()
    label = page.get_by_text("ERP ops", exact=True).first
    assert label.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    page.screenshot(path=str(ARTIFACTS / "ops_page_in_airflow_ui.png"))


def _open_trigger_form(page, base: str, dag_id: str):
    page.goto(f"{base}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"Trigger Dag - {dag_id}").wait_for()
    page.wait_for_timeout(1000)  # the form settles its validation
    return dialog


def test_each_replay_trigger_form_asks_only_for_its_own_fields(api_server, ui_stack, browser_page):
    page, base = browser_page, api_server.url
    _login(page, base)

    # Replay only: no fields at all, Trigger is enabled as is, and it starts a run.
    dialog = _open_trigger_form(page, base, "sitoo_exceptions_replay")
    assert dialog.get_by_text("Run Parameters").count() == 0
    trigger = dialog.get_by_role("button", name="Trigger", exact=True)
    assert trigger.is_enabled()
    page.screenshot(path=str(ARTIFACTS / "trigger_replay_only.png"))
    trigger.click()
    page.wait_for_timeout(1500)
    runs = httpx.get(
        f"{base}/api/v2/dags/sitoo_exceptions_replay/dagRuns",
        headers={"Authorization": f"Bearer {api_server.token('ops')}"},
        timeout=30,
    ).json()
    assert runs["total_entries"] >= 1

    # Mappings: one list per mapping table, none required (Trigger enabled; the run says "no mapping").
    dialog = _open_trigger_form(page, base, "sitoo_exceptions_fix_mappings")
    for name in ("sku_items", "store_locations", "tender_payments", "vat_tax_codes", "document_items"):
        assert dialog.get_by_text(name, exact=True).count() == 1, name
    assert dialog.get_by_text("exception_ids").count() == 0 and dialog.get_by_text("decision").count() == 0
    assert dialog.get_by_role("button", name="Trigger", exact=True).is_enabled()
    page.screenshot(path=str(ARTIFACTS / "trigger_fix_mappings.png"))
    page.keyboard.press("Escape")

    # Decisions: ids and reason are required; Trigger stays disabled until they are filled.
    dialog = _open_trigger_form(page, base, "sitoo_exceptions_decide")
    assert dialog.get_by_text("sku_items").count() == 0
    trigger = dialog.get_by_role("button", name="Trigger", exact=True)
    assert not trigger.is_enabled()
    page.screenshot(path=str(ARTIFACTS / "trigger_decide_empty.png"))
    dialog.locator("input[name=element_reason]").fill("training till, not a sale")
    assert not trigger.is_enabled()  # still no exception ids
