"""Registers the operations page with Airflow: the FastAPI app and its entry in the UI's navigation."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sitoo_erp_ops.app import URL_PREFIX, app


class SitooErpOpsPlugin(AirflowPlugin):
    name = "sitoo_erp_ops"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Sitoo ERP operations"}]
    # Shown in the Airflow UI's navigation, the page rendered inside the UI (an iframe at /plugin/<url_route>).
    external_views = [
        {
            "name": "ERP ops",  # short: the UI's nav cuts longer labels ("Sitoo ERP…")
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "sitoo-erp-ops",
            "nav_top_level": True,
            "icon": f"{URL_PREFIX}/static/icon.svg",
        }
    ]
