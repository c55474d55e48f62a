"""Invariant 8: secrets live only in Airflow connections, never in logs, XCom, e-mails or tables.

The sales DAG runs under ``dag.test()`` against the whole local stack with recognisable canary
secrets in every connection: the Sitoo API password, the NetSuite PEM private key (its base64 body
is searched line by line), the staging database password (the embedded server trusts loopback, so
it is carried but never needed) and an SMTP login/password (a sink that requires AUTH). Planted bad
receipts make the run quarantine, raise exceptions and e-mail the gate alert. Then every place a
secret could leak is searched: Airflow's files (task logs under AIRFLOW_HOME), captured
stdout/stderr and log records, the metadata DB (XCom included), the e-mails, and a text dump of
every table in the staging database. A second run with a wrong Sitoo password must fail with an
error that names the connection and never the password.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from include.sandbox.server import LOOPBACK, free_port
from include.sandbox.smtp import _Handler
from include.sandbox.stack import throwaway_private_key
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, make_stack, run_hour, task_states
from tests.e2e.helpers import plant_tender_mismatch, plant_unknown_sku

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),  # loopback-only sink
]

SITOO_CANARY = "S1too-Pa55-Canary-7781"
PG_CANARY = "Pg-Canary-Pa55-4410"
SMTP_CANARY = "Smtp-Canary-Pa55-9902"
SMTP_USER = "alerts-canary-user"


class _AuthSink:
    """The SMTP sink, but it requires AUTH and only accepts the canary login."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Handler(None)
        self.logins: list[str] = []
        self._controller = Controller(
            self.handler,
            hostname=LOOPBACK,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=True,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_CANARY.encode(),
        )
        self.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)

    def start(self) -> _AuthSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)


def _pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.strip().splitlines() if line and not line.startswith("-----")]


def _needles(stack, pem: str) -> dict[str, str]:
    basic = base64.b64encode(f"{stack.sitoo.api_id}:{SITOO_CANARY}".encode()).decode()
    needles = {
        "sitoo password": SITOO_CANARY,
        "sitoo basic-auth header": basic,
        "postgres password": PG_CANARY,
        "smtp password": SMTP_CANARY,
        "PEM header": "PRIVATE KEY-----",
    }
    for i, line in enumerate(_pem_body_lines(pem)[1:-1]):  # every full 64-char line of the key body
        needles[f"PEM body line {i}"] = line
    return needles


def _files_text(root: Path) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


def _metadata_db_text(home: Path) -> dict[str, str]:
    """XCom rows (decoded) plus the raw bytes of the SQLite metadata DB and its WAL."""
    out = {}
    db = home / "airflow.db"
    with sqlite3.connect(db) as con:
        rows = con.execute("select dag_id, run_id, task_id, key, value from xcom").fetchall()
    out["xcom"] = json.dumps([[str(c) for c in r] for r in rows])
    for path in home.glob("airflow.db*"):
        out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


def _staging_dump(url: str) -> str:
    parts = []
    with connect_url(url) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            rows = conn.execute(f'select t::text from "{schema}"."{table}" t').fetchall()
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


def _assert_absent(needles: dict[str, str], haystacks: dict[str, str]) -> None:
    leaks = [
        f"{what} in {where}"
        for where, text in haystacks.items()
        for what, needle in needles.items()
        if needle in text
    ]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:20])


@pytest.fixture
def canary_stack(postgres, airflow_db, monkeypatch, tmp_path):
    stack = make_stack(postgres, tmp_path / "stack", seed=11, stores=2, days=1, receipts_per_store_day=60)
    sink = _AuthSink().start()
    pem = throwaway_private_key()
    stack.sitoo.password = SITOO_CANARY  # the sandbox checks this on every request
    stack._key = pem  # connection_env() hands this key to the NetSuite connection
    env = stack.connection_env()
    db = json.loads(env["AIRFLOW_CONN_SITOO_ERP_DB"])
    db["password"] = PG_CANARY
    env["AIRFLOW_CONN_SITOO_ERP_DB"] = json.dumps(db)
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    smtp.update(port=sink.port, login=SMTP_USER, password=SMTP_CANARY)
    env["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps(smtp)
    assert json.loads(env["AIRFLOW_CONN_SITOO_DEFAULT"])["password"] == SITOO_CANARY
    assert json.loads(env["AIRFLOW_CONN_NETSUITE_DEFAULT"])["password"] == pem
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stack.env = env
    yield stack, sink, pem
    sink.stop()
    stack.stop()
    postgres.drop_database(stack.config.database)


def test_no_secret_reaches_logs_xcom_mail_or_tables(canary_stack, sales_dag, airflow_db, capfd, caplog):
    stack, sink, pem = canary_stack
    caplog.set_level(logging.DEBUG)
    plant_unknown_sku(stack)
    plant_tender_mismatch(stack)

    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    assert sink.messages and sink.logins, "the gate alert went out through the authenticated sink"

    with connect_url(stack.database_url) as conn:
        kinds = {k for (k,) in conn.execute("select distinct kind from sitoo_erp.exception")}
        posted = conn.execute("select count(*) from sitoo_erp.posting_log").fetchone()[0]
    assert {"unknown_sku", "tender_mismatch"} <= kinds and posted > 0, (kinds, posted)

    out, err = capfd.readouterr()
    haystacks = {
        "captured stdout": out,
        "captured stderr": err,
        "log records": "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        "e-mails": "\n".join(m.as_string() for m in sink.messages),
        "staging database": _staging_dump(stack.database_url),
        **_metadata_db_text(airflow_db),
        **_files_text(airflow_db / "logs"),
    }
    # The haystacks are real: the run's own traces are in them.
    everything = "\n".join(haystacks.values())
    assert "sitoo_sales_hourly" in everything and "gate: " in everything, "the task logs were captured"
    assert "UNKNOWN-SKU-1" in haystacks["e-mails"] + haystacks["staging database"]
    _assert_absent(_needles(stack, pem), haystacks)


def test_wrong_sitoo_password_fails_naming_the_connection_not_the_password(
    canary_stack, sales_dag, airflow_db, capfd, caplog, monkeypatch
):
    stack, _sink, pem = canary_stack
    caplog.set_level(logging.DEBUG)
    stack.sitoo.password = "the-sandbox-now-expects-another-one"  # the connection still has the canary

    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "failed", task_states(run)
    out, err = capfd.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records) + out + err
    logs += "\n".join(_files_text(airflow_db / "logs").values())
    assert "refused the credentials of connection 'sitoo_default'" in logs
    _assert_absent(_needles(stack, pem), {"logs": logs, **_metadata_db_text(airflow_db)})


def test_hook_auth_errors_never_include_the_secret(canary_stack, monkeypatch):
    """Direct hook calls: a refused Sitoo password, and a NetSuite 'key' that is not a PEM key."""
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.http_retry import ApiError, RetryPolicy
    from include.sitoo_erp.sitoo.hook import SitooHook

    stack, _sink, _pem = canary_stack
    stack.sitoo.password = "something-else"
    hook = SitooHook(retry=RetryPolicy(attempts=1))
    with pytest.raises(ApiError) as refused:
        hook.get_json("orders.json", {"num": 1})
    assert SITOO_CANARY not in repr(refused.value) and SITOO_CANARY not in str(refused.value)

    bogus = f"-----BEGIN PRIVATE KEY-----\n{SITOO_CANARY}-not-a-key\n-----END PRIVATE KEY-----\n"
    conn = json.loads(os.environ["AIRFLOW_CONN_NETSUITE_DEFAULT"])
    conn["password"] = bogus
    monkeypatch.setenv("AIRFLOW_CONN_NETSUITE_DEFAULT", json.dumps(conn))
    with pytest.raises(ApiError) as unsigned:
        NetSuiteHook(retry=RetryPolicy(attempts=1)).access_token()
    message = f"{unsigned.value!s} {unsigned.value!r} {unsigned.value.__cause__!r}"
    assert "netsuite_default" in message and SITOO_CANARY not in message and "BEGIN PRIVATE" not in message
