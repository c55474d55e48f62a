"""Airflow connections for the integration tests: point them at the sandboxes on 127.0.0.1."""

from __future__ import annotations

import json

from include.sandbox.stack import NETSUITE_CERTIFICATE_ID, NETSUITE_CLIENT_ID, throwaway_private_key


def netsuite_conn(
    monkeypatch, sandbox, certificate_id: str = NETSUITE_CERTIFICATE_ID, timeout: float = 5
) -> None:
    """Point ``netsuite_default`` at the NetSuite sandbox, signing with a throwaway key."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_NETSUITE_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": int(sandbox.url.rsplit(":", 1)[1]),
                "login": NETSUITE_CLIENT_ID,
                "password": throwaway_private_key(),
                "extra": {"timeout": timeout, "netsuite": {"certificate_id": certificate_id}},
            }
        ),
    )
