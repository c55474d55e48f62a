"""``make airflow``: a real local Airflow 3.3 deployment over the embedded stack, 127.0.0.1 only.

What a data engineer deploys, on one machine: ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` as separate processes, the LocalExecutor, the metadata DB in
the embedded PostgreSQL (a database of its own next to the staging database), the Sitoo and
NetSuite sandboxes and the SMTP sink seeded with the demo's week of trading. Pools, variables and
connections go in through :mod:`include.sitoo_erp.settings_loader` (Airflow's own import
commands): first the project's ``airflow_settings.yaml``, then a generated
``airflow_settings.local.yaml`` whose connections point at the sandboxes.

Every listener is on 127.0.0.1: the api-server by ``--host``; the scheduler's and triggerer's
log servers would bind every interface (their host is not configurable in 3.3), so they are not
started (``--skip-serve-logs``): with the LocalExecutor the api-server reads task logs from the
shared ``AIRFLOW_HOME/logs`` directly; the scheduler health-check server stays off.

    python -m include.sandbox.deployment start    # in the background; prints URL, login, paths
    python -m include.sandbox.deployment stop
    python -m include.sandbox.deployment status

State lives under ``var/airflow-local/`` (git-ignored). Each start is a fresh demo: the sandboxes
keep their data in memory, so both databases are recreated to match them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from include.sandbox.airflow_env import ROOT

HOME = ROOT / "var" / "airflow-local"
ADMIN = "admin"
META_DATABASE = "airflow"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _airflow_cmd() -> list[str]:
    return [sys.executable, "-m", "airflow"]


@dataclass
class Component:
    name: str
    proc: subprocess.Popen
    log: Path


class LocalDeployment:
    """Start with ``LocalDeployment(home).start()``; ``stop()`` ends every process it started.

    ``postgres`` lets the tests share their session's embedded server; by default the deployment
    runs its own under ``home/stack/pgdata``.
    """

    def __init__(
        self,
        home: Path | str = HOME,
        stack_config: Any = None,
        postgres: Any = None,
        api_port: int | None = None,
        parallelism: int = 8,
        meta_database: str = META_DATABASE,
    ) -> None:
        self.home = Path(home).resolve()
        self.airflow_home = self.home / "airflow"
        self.logs = self.home / "logs"
        self.reports = self.home / "reports"
        self.stack_config = stack_config
        self.external_postgres = postgres
        self.api_port = api_port
        self.parallelism = parallelism
        self.meta_database = meta_database
        self.stack: Any = None
        self.components: dict[str, Component] = {}
        self.env: dict[str, str] = {}
        self.api_url = ""
        self.meta_url = ""
        self.password = ""

    # ------------------------------------------------------------------ start / stop
    def start(self, timeout: float = 600) -> LocalDeployment:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> LocalDeployment:
        from include.sandbox.stack import LocalStack, StackConfig, pick_port
        from include.sitoo_erp.settings_loader import apply

        for d in (self.airflow_home, self.logs, self.reports):
            d.mkdir(parents=True, exist_ok=True)
        config = self.stack_config or StackConfig(pg_port=pick_port(54339))
        self.stack = LocalStack(config, self.home / "stack").start(
            postgres=self.external_postgres, fresh=True
        )
        pg = self.stack.postgres
        pg.drop_database(self.meta_database)
        self.meta_url = pg.ensure_database(self.meta_database)
        self.api_port = self.api_port or pick_port(8080)
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.env = self._airflow_env()

        self._airflow("db", "migrate", timeout=900)
        apply(ROOT / "airflow_settings.yaml", _airflow_cmd(), env=self.env)
        apply(self._local_settings(), _airflow_cmd(), env=self.env)

        self._spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port))
        self._spawn("scheduler", "scheduler", "--skip-serve-logs")
        self._spawn("dag-processor", "dag-processor")
        self._spawn("triggerer", "triggerer", "--skip-serve-logs")
        self._wait_until_ready(timeout)
        self._write_env_file()
        return self

    def _airflow_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        passwords = self.airflow_home / "simple_auth_manager_passwords.json"
        try:
            self.password = json.loads(passwords.read_text())[ADMIN]
        except (OSError, ValueError, KeyError):
            self.password = secrets.token_urlsafe(12)
            passwords.write_text(json.dumps({ADMIN: self.password}))
            passwords.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "SITOO_ERP_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.meta_url.replace(
                    "postgresql://", "postgresql+psycopg2://"
                ),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__METRICS__STATSD_ON": "False",
                "GX_ANALYTICS_ENABLED": "False",
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            }
        )
        return env

    def _local_settings(self) -> Path:
        """The sandboxes' connections and the demo's variables, in airflow_settings.yaml's format."""
        from include.sandbox.stack import ALERT_RECIPIENTS

        conns = []
        for key, value in self.stack.env.items():
            if not key.startswith("AIRFLOW_CONN_"):
                continue
            c = json.loads(value)
            conns.append(
                {
                    "conn_id": key.removeprefix("AIRFLOW_CONN_").lower(),
                    "conn_type": c["conn_type"],
                    "conn_host": c.get("host"),
                    "conn_port": c.get("port"),
                    "conn_schema": c.get("schema"),
                    "conn_login": c.get("login"),
                    "conn_password": c.get("password"),
                    "conn_extra": c.get("extra"),
                }
            )
        settings = {
            "airflow": {
                "connections": conns,
                "variables": [
                    {"variable_name": "sitoo_erp_alert_recipients", "variable_value": ALERT_RECIPIENTS},
                    {"variable_name": "sitoo_erp_ui_base_url", "variable_value": self.api_url},
                ],
            }
        }
        path = self.home / "airflow_settings.local.yaml"
        path.write_text(
            "# Generated by `make airflow`: connections to this deployment's sandboxes (fake credentials).\n"
            + yaml.safe_dump(settings, sort_keys=False)
        )
        path.chmod(0o600)
        return path

    def _airflow(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(  # noqa: S603 - our own interpreter and Airflow's CLI
            [*_airflow_cmd(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {shlex.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def airflow(self, *args: str, timeout: float = 600) -> str:
        """Run an ``airflow`` CLI command against this deployment; its stdout."""
        return self._airflow(*args, timeout=timeout)

    def _spawn(self, name: str, *args: str) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603
                [*_airflow_cmd(), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # its own process group: stop() ends its workers too
            )
        self.components[name] = Component(name, proc, log)

    def _wait_until_ready(self, timeout: float) -> None:
        """api-server healthy, scheduler + dag-processor + triggerer heartbeating, the DAGs parsed."""
        import httpx

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for c in self.components.values():
                if c.proc.poll() is not None:
                    raise RuntimeError(f"{c.name} exited ({c.proc.returncode}); see {c.log}:\n{tail(c.log)}")
            try:
                health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
                healthy = all(
                    (health.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                )
                if healthy:
                    with self.client() as client:
                        dags = client.get("/api/v2/dags", params={"limit": 100}).json().get("dags", [])
                    if {"sitoo_sales_hourly", "sitoo_reconciliation_monthly"} <= {d["dag_id"] for d in dags}:
                        return
                last = json.dumps(health)
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            time.sleep(2)
        raise RuntimeError(f"the deployment did not become ready in {timeout:.0f}s (last: {last})")

    def token(self) -> str:
        """Log in as the login form does (``POST /auth/token``); Airflow's JWT."""
        import httpx

        response = httpx.post(
            f"{self.api_url}/auth/token", json={"username": ADMIN, "password": self.password}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self):
        """An HTTP client for the public REST API, logged in as the admin user."""
        import httpx

        token = self.token()
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token}"},
            cookies={"_token": token},
            timeout=60,
        )

    def pids(self) -> list[int]:
        """Every process this deployment started, and their children (workers, task processes)."""
        import psutil

        out = []
        for c in self.components.values():
            try:
                p = psutil.Process(c.proc.pid)
                out += [p.pid, *(child.pid for child in p.children(recursive=True))]
            except psutil.NoSuchProcess:
                continue
        return out

    def stop(self) -> None:
        """SIGTERM to each component's process group (ours), SIGKILL after 30 s; then the stack."""
        for c in reversed(list(self.components.values())):
            if c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGTERM)
        for c in self.components.values():
            try:
                c.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait(timeout=10)
        self.components.clear()
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    def _write_env_file(self) -> None:
        """``source var/airflow-local/env.sh`` points your shell's ``airflow`` CLI at this deployment."""
        keep = [k for k in self.env if k.startswith(("AIRFLOW", "SITOO_ERP", "PYTHONPATH", "GX_"))]
        lines = [f"export {k}={shlex.quote(self.env[k])}" for k in sorted(keep)]
        venv_bin = shlex.quote(str(Path(sys.executable).parent))  # this project's airflow CLI first
        lines.append(f'export PATH={venv_bin}:"$PATH"')
        path = self.home / "env.sh"
        path.write_text(
            "# Generated by `make airflow`: the local deployment's Airflow settings.\n"
            + "\n".join(lines)
            + "\n"
        )
        path.chmod(0o600)

    def describe(self) -> dict[str, Any]:
        stack = self.stack
        cfg = stack.config
        return {
            "ui": self.api_url,
            "ops_page": f"{self.api_url}/sitoo-erp-ops/",
            "login": ADMIN,
            "password": self.password,
            "airflow_home": str(self.airflow_home),
            "home": str(self.home),
            "metadata_db": self.meta_url,
            "staging_db": stack.database_url,
            "sitoo": stack.sitoo.base_url,
            "netsuite": f"{stack.netsuite.url}/services/rest",
            "smtp": f"127.0.0.1:{stack.smtp.port}",
            "mail_spool": str(stack.workdir / "mail"),
            "logs": str(self.logs),
            "task_logs": str(self.airflow_home / "logs"),
            "reports": str(self.reports),
            "env_file": str(self.home / "env.sh"),
            "demo_days": f"{cfg.start} .. {cfg.start + timedelta(days=cfg.days - 1)}",
            "stores": cfg.stores,
            "orders": len(stack.dataset),
            "components": {c.name: c.proc.pid for c in self.components.values()},
        }


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# ---------------------------------------------------------------------- the command line
STATE = "state.json"


def _state(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads((home / STATE).read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> TypeGuard[int]:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(home: Path) -> int:
    """The background supervisor: holds the sandboxes (in-process servers) and the Airflow processes."""
    from include.sandbox.airflow_env import configure

    configure(home / "airflow")  # in case anything here imports Airflow: never ~/airflow
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state_path = home / STATE
    deployment = LocalDeployment(home)
    state_path.write_text(json.dumps({"status": "starting", "pid": os.getpid()}))
    try:
        deployment.start()
    except BaseException as exc:
        state_path.write_text(json.dumps({"status": "failed", "pid": os.getpid(), "error": str(exc)[-4000:]}))
        raise
    state_path.write_text(json.dumps({"status": "ready", "pid": os.getpid(), **deployment.describe()}))
    try:
        while not stop.wait(5):
            for c in deployment.components.values():
                if c.proc.poll() is not None:
                    print(f"{c.name} exited ({c.proc.returncode}); see {c.log}", flush=True)
                    stop.set()
    finally:
        deployment.stop()
        state_path.write_text(json.dumps({"status": "stopped"}))
    return 0


def _print_info(info: dict[str, Any]) -> None:
    rel = lambda p: os.path.relpath(p, ROOT) if str(p).startswith(str(ROOT)) else p  # noqa: E731
    print(
        f"""
Local Airflow is up (LocalExecutor; every listener on 127.0.0.1).
  UI + REST API     {info["ui"]}      login: {info["login"]} / {info["password"]}
  Operations page   {info["ops_page"]}
  AIRFLOW_HOME      {rel(info["airflow_home"])}   (airflow CLI: source {rel(info["env_file"])})
  Metadata DB       {info["metadata_db"]}
  Staging DB        {info["staging_db"]}   (connection sitoo_erp_db)
  Sitoo sandbox     {info["sitoo"]}   ({info["orders"]} orders, {info["stores"]} stores, {info["demo_days"]})
  NetSuite sandbox  {info["netsuite"]}
  SMTP sink         {info["smtp"]}   (mail spooled to {rel(info["mail_spool"])})
  Logs              {rel(info["logs"])}/<component>.log, task logs under {rel(info["task_logs"])}
  Reports           {rel(info["reports"])}
DAGs start paused: unpause sitoo_sales_hourly in the UI, then e.g.
  source {rel(info["env_file"])} && airflow backfill create --dag-id sitoo_sales_hourly \\
      --from-date 2026-11-16T06:00:00+00:00 --to-date 2026-11-16T20:00:00+00:00
Stop: make airflow-stop"""
    )


def cmd_start(home: Path, timeout: float) -> int:
    state = _state(home)
    if state and state.get("status") in ("ready", "starting") and _alive(state.get("pid")):
        if state["status"] == "ready":
            _print_info(state)
            return 0
        print(f"already starting (supervisor pid {state['pid']}); see {home / 'logs' / 'supervisor.log'}")
        return 1
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    (home / STATE).unlink(missing_ok=True)
    log = home / "logs" / "supervisor.log"
    print(
        f"Starting the local Airflow deployment in {home} (first start migrates the metadata DB: ~1-3 min)…"
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "include.sandbox.deployment", "serve", "--home", str(home)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the terminal / make
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(home) or {}
        if state.get("status") == "ready":
            _print_info(state)
            return 0
        if state.get("status") == "failed" or proc.poll() is not None:
            print(f"start failed: {state.get('error', '')}\nsee {log}:\n{tail(log)}", file=sys.stderr)
            return 1
        time.sleep(2)
    print(f"not ready after {timeout:.0f}s; still starting, see {log}", file=sys.stderr)
    return 1


def cmd_stop(home: Path) -> int:
    state = _state(home)
    pid = (state or {}).get("pid")
    if not _alive(pid):
        print("the local Airflow deployment is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(1)
    if _alive(pid):
        print(
            f"supervisor {pid} still running after 120 s; see {home / 'logs' / 'supervisor.log'}",
            file=sys.stderr,
        )
        return 1
    print("stopped (api-server, scheduler, dag-processor, triggerer, sandboxes, PostgreSQL)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Airflow deployment over the embedded stack")
    parser.add_argument("command", choices=("start", "stop", "status", "serve"))
    parser.add_argument("--home", type=Path, default=HOME)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    home = args.home.resolve()
    if args.command == "serve":
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        return serve(home)
    if args.command == "start":
        return cmd_start(home, args.timeout)
    if args.command == "stop":
        return cmd_stop(home)
    state = _state(home)
    if state and state.get("status") == "ready" and _alive(state.get("pid")):
        _print_info(state)
    else:
        print(f"not running ({(state or {}).get('status', 'never started')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
