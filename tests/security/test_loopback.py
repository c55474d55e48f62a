"""Everything the tests start listens on loopback only: both API sandboxes (uvicorn), the SMTP sink
(aiosmtpd) and the embedded PostgreSQL (``listen_addresses``, and its actual listening sockets)."""

from __future__ import annotations

import ipaddress
import os

import psutil
import pytest

from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import make_stack


def _listening(pid: int) -> list[tuple[str, int]]:
    return [
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def _assert_loopback(addresses: list[tuple[str, int]]) -> None:
    assert addresses, "nothing is listening"
    wide = [(ip, port) for ip, port in addresses if not ipaddress.ip_address(ip).is_loopback]
    assert not wide, f"listening beyond loopback: {wide}"


@pytest.fixture
def stack(postgres, tmp_path):
    s = make_stack(postgres, tmp_path, seed=11, stores=1, days=1, receipts_per_store_day=5)
    yield s
    s.stop()
    postgres.drop_database(s.config.database)


def test_sandboxes_and_smtp_sink_listen_on_loopback_only(stack):
    ports = {
        int(stack.sitoo.url.rsplit(":", 1)[-1]),
        int(stack.netsuite.url.rsplit(":", 1)[-1]),
        stack.smtp.port,
    }
    mine = _listening(os.getpid())
    assert ports <= {port for _, port in mine}, (ports, mine)
    _assert_loopback([a for a in mine if a[1] in ports])
    _assert_loopback(mine)  # nothing else this test process started listens wider either


def test_embedded_postgres_listens_on_loopback_only(postgres):
    with connect_url(postgres.url()) as conn:
        listen = conn.execute("show listen_addresses").fetchone()[0]
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        postmaster = psutil.Process(pid).parent()  # while the backend is alive (it ends with the connection)
    assert {a.strip() for a in listen.split(",")} <= {"127.0.0.1", "::1", "localhost"}, listen
    _assert_loopback([a for a in _listening(postmaster.pid) if a[1] == postgres.port])
