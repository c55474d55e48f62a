"""The whole local stack in one object: embedded PostgreSQL, both API sandboxes, an SMTP sink.

``make demo``, the end-to-end tests and the benchmarks all start the same stack, so what the
demo shows is what the tests prove. Everything listens on 127.0.0.1 only; every credential is
an obviously fake sandbox value, handed to Airflow only as ``AIRFLOW_CONN_*`` variables.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from include.sandbox.catalogue import build_catalogue, mapping_seed_rows
from include.sandbox.generator import SitooDataset, generate_dataset
from include.sandbox.netsuite import NetSuiteFaults, NetSuiteSandbox
from include.sandbox.postgres import EmbeddedPostgres
from include.sandbox.server import free_port
from include.sandbox.sitoo.state import SitooFaults, SitooSandbox
from include.sandbox.smtp import SmtpSink

NETSUITE_CLIENT_ID = "sandbox-client-id"
NETSUITE_CERTIFICATE_ID = "sandbox-cert-id"
ALERT_RECIPIENTS = "retail-ops@sandbox.test,finance@sandbox.test"


def throwaway_private_key() -> str:
    """A fresh RSA key for signing the sandbox's M2M client assertion (never a real credential)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class StackConfig:
    seed: int = 42
    stores: int = 5
    days: int = 7
    receipts_per_store_day: int = 40
    start: date = date(2026, 11, 16)
    timezone: str = "Europe/London"
    skus: int = 400
    # Till pricing per store (one convention, or one per store, cycled); None: the catalogue's
    # default cycle, VAT-inclusive stores with one net-priced store in five (see catalogue.py).
    pricing: str | tuple[str, ...] | None = None
    nordic_stores: int = 0  # the last N stores are Swedish (SEK, 25/12/6/0 % VAT)
    database: str = "sitoo_erp"
    pg_port: int = 0
    sitoo_faults: SitooFaults = field(default_factory=SitooFaults)
    netsuite_faults: NetSuiteFaults = field(default_factory=lambda: NetSuiteFaults(concurrency_limit=5))


class LocalStack:
    """Start with ``with LocalStack(config, workdir) as stack:``; ``stack.env`` holds the connections."""

    def __init__(self, config: StackConfig | None = None, workdir: Path | str = "var") -> None:
        self.config = config or StackConfig()
        self.workdir = Path(workdir).resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.sitoo: SitooSandbox | None = None
        self.netsuite: NetSuiteSandbox | None = None
        self.smtp: SmtpSink | None = None
        self.dataset: SitooDataset | None = None
        self.database_url = ""
        self.env: dict[str, str] = {}
        self._owns_postgres = False

    def start(self, postgres: EmbeddedPostgres | None = None, fresh: bool = False) -> LocalStack:
        """Start everything; ``fresh`` drops the staging database first (the demo starts clean)."""
        try:
            return self._start(postgres, fresh)
        except BaseException:
            self.stop()  # nothing left running behind a failed start
            raise

    def _start(self, postgres: EmbeddedPostgres | None, fresh: bool) -> LocalStack:
        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        if postgres is None:
            postgres = EmbeddedPostgres(self.workdir / "pgdata", port=cfg.pg_port or 54329).start()
            self._owns_postgres = True
        self.postgres = postgres
        if fresh:
            postgres.drop_database(cfg.database)
        self.database_url = postgres.ensure_database(cfg.database)

        catalogue = build_catalogue(
            seed=cfg.seed,
            stores=cfg.stores,
            skus=cfg.skus,
            timezone=cfg.timezone,
            pricing=cfg.pricing,
            nordic_stores=cfg.nordic_stores,
        )
        self.dataset = generate_dataset(
            seed=cfg.seed,
            days=cfg.days,
            receipts_per_store_day=cfg.receipts_per_store_day,
            start=cfg.start,
            catalogue=catalogue,
        )
        self.sitoo = SitooSandbox(self.dataset, faults=cfg.sitoo_faults)
        self.sitoo.start()
        self.netsuite = NetSuiteSandbox(
            master=catalogue.erp_master_data(),
            client_id=NETSUITE_CLIENT_ID,
            certificate_id=NETSUITE_CERTIFICATE_ID,
            on_hand=self._erp_on_hand(),
            faults=cfg.netsuite_faults,
        )
        self.netsuite.start()
        self.smtp = SmtpSink(spool_dir=self.workdir / "mail").start()
        self.prepare_database(self.database_url)
        self.env = self.connection_env()
        return self

    def prepare_database(self, url: str) -> dict[str, int]:
        """Migrate the staging schema and seed the mappings that fit this stack's catalogue."""
        from include.sitoo_erp.staging.db import connect_url
        from include.sitoo_erp.staging.mappings import load_mapping_csvs, write_mapping_csvs
        from include.sitoo_erp.staging.schema import migrate

        migrate(url)
        seed_dir = self.workdir / "mappings"
        assert self.dataset is not None  # generated by start() first
        write_mapping_csvs(mapping_seed_rows(self.dataset.catalogue), seed_dir)
        with connect_url(url) as conn:
            return load_mapping_csvs(conn, seed_dir)

    def _erp_on_hand(self):
        """The ERP starts with the same on-hand as the Sitoo warehouses (drift is only ever planted)."""
        dataset = self.dataset
        assert dataset is not None  # generated by start() first
        stores = {s.erp_location_id: s for s in dataset.catalogue.stores}
        skus = {p.erp_item_id: p.sku for p in dataset.catalogue.products}

        def on_hand(item_id: str, location_id: str) -> int | None:
            store, sku = stores.get(str(location_id)), skus.get(str(item_id))
            return None if store is None or sku is None else dataset.initial_on_hand(store.storeid, sku)

        return on_hand

    def connection_env(self, database_url: str | None = None) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` for the four connections the DAGs use, and the ``AIRFLOW_VAR_*`` they read."""
        assert self.postgres and self.sitoo and self.netsuite and self.smtp
        url = database_url or self.database_url
        db = url.rsplit("/", 1)[-1]
        sitoo_port = int(self.sitoo.url.rsplit(":", 1)[-1])
        netsuite_port = int(self.netsuite.url.rsplit(":", 1)[-1])
        key = getattr(self, "_key", None) or throwaway_private_key()
        self._key = key
        return {
            "AIRFLOW_CONN_SITOO_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": sitoo_port,
                    "schema": "http",
                    "login": self.sitoo.api_id,
                    "password": self.sitoo.password,
                    "extra": {"timeout": 10},
                }
            ),
            "AIRFLOW_CONN_NETSUITE_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": netsuite_port,
                    "schema": "http",
                    "login": NETSUITE_CLIENT_ID,
                    "password": key,
                    "extra": {
                        "timeout": 10,
                        "netsuite": {"certificate_id": NETSUITE_CERTIFICATE_ID, "algorithm": "PS256"},
                    },
                }
            ),
            "AIRFLOW_CONN_SITOO_ERP_DB": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": self.postgres.port,
                    "login": "postgres",
                    "schema": db,
                }
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": self.smtp.port,
                    "extra": {
                        "disable_ssl": True,
                        "disable_tls": True,
                        "from_email": "sitoo-erp-sync@sandbox.test",
                        "timeout": 10,
                        "retry_limit": 1,
                    },
                }
            ),
            # Variables the DAGs read (AIRFLOW_VAR_* is Airflow's environment variables backend).
            "AIRFLOW_VAR_SITOO_ERP_ALERT_RECIPIENTS": ALERT_RECIPIENTS,
            "AIRFLOW_VAR_SITOO_ERP_UI_BASE_URL": "http://localhost:8080",
        }

    def export_env(self) -> None:
        os.environ.update(self.env)

    def fresh_database(self) -> str:
        """A new migrated, seeded database on the same server (tests isolate runs with it)."""
        assert self.postgres is not None  # started
        url = self.postgres.ensure_database(f"{self.config.database}_{uuid.uuid4().hex[:8]}")
        self.prepare_database(url)
        return url

    def stop(self) -> None:
        for part in (self.smtp, self.netsuite, self.sitoo):
            if part is not None:
                part.stop()
        if self._owns_postgres and self.postgres is not None:
            self.postgres.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pick_port(preferred: int) -> int:
    """``preferred`` if free, else any free loopback port."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()
