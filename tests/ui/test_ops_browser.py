"""The page in headless Chromium against the running api-server: log in through Airflow's own login
form, open the page in the Airflow UI, filter, map the unknown SKU, run the next hour, see it post."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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
