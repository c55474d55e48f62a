"""Nothing in the DAGs depends on a process or a local file shared between tasks: proof by executor.

The hourly DAG runs with ``dag.test(use_executor=True)`` under the **LocalExecutor**: every task is a
workload handed to an executor worker, which starts a task-supervisor that forks a fresh task
process; that process talks to a real ``airflow api-server`` (the Execution API) over HTTP for its
state, XCom, connections and variables, exactly as a Celery worker or a Kubernetes pod does. The
metadata DB is PostgreSQL (a database of its own on the embedded server; the LocalExecutor needs
more than SQLite). Airflow reads its config at import, so the driver runs in a subprocess with its
own ``AIRFLOW_HOME`` and environment.

Asserted: every task of the run succeeded in its own process (distinct ``pid`` in the task instance
rows, none of them the driver's or the api-server's), and the run did its job — receipts posted to
the ERP once each, invariant 1 holds.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DRIVER_MARK = "SEPARATE-PROCESS-RESULT "


def _drive(logical_date: str) -> None:
    """In the subprocess: run the hourly DAG through the LocalExecutor; print the TI rows as JSON."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from pendulum import parse

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("sitoo_sales_hourly")
    run = dag.test(logical_date=parse(logical_date), use_executor=True)
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id).all()
        rows = [
            {
                "task_id": ti.task_id,
                "state": str(ti.state),
                "pid": ti.pid,
                "hostname": ti.hostname,
                "try_number": ti.try_number,
                "executor": ti.executor,
            }
            for ti in tis
        ]
    print(DRIVER_MARK + json.dumps({"run_state": str(run.state), "driver_pid": os.getpid(), "tis": rows}))


def _airflow_env(home: Path, meta_url: str, api_url: str, jwt_secret: str, stack_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(stack_env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "GX_ANALYTICS_ENABLED": "False",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
    )
    return env


def _start_api_server(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    """``airflow api-server`` with the driver's JWT secret (the Execution API checks task tokens)."""
    import time

    import httpx

    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(log_path.parent),
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"api-server exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"api-server did not answer: {log_path.read_text()[-3000:]}")


def test_hourly_dag_with_every_task_in_its_own_process(postgres, tmp_path):
    from include.sandbox.server import free_port
    from tests.e2e.conftest import at, make_stack
    from tests.e2e.helpers import assert_invariants

    stack = make_stack(postgres, tmp_path / "stack", seed=12, stores=2, days=1, receipts_per_store_day=30)
    meta_db = f"airflow_meta_{uuid.uuid4().hex[:8]}"
    meta_url = postgres.ensure_database(meta_db).replace("postgresql://", "postgresql+psycopg2://")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = _airflow_env(tmp_path / "airflow", meta_url, api_url, secrets.token_urlsafe(32), stack.env)
    server = None
    try:
        for cmd in (
            ["db", "migrate"],
            ["pools", "set", "erp_api", "8", "ERP"],
            ["pools", "set", "sitoo_api", "4", "Sitoo"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "airflow", *cmd], env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, (cmd, done.stdout[-2000:], done.stderr[-4000:])
        server = _start_api_server(env, port, tmp_path / "api-server.log")
        # The seeded day's 09:00 hour; its late sweep stages (and posts) the rest of the day.
        logical = (at(9) + timedelta(hours=1)).isoformat()
        done = subprocess.run(
            [sys.executable, "-m", "tests.e2e.test_separate_processes", logical],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(DRIVER_MARK)]
        assert done.returncode == 0 and lines, (done.stdout[-3000:], done.stderr[-6000:])
        result = json.loads(lines[-1][len(DRIVER_MARK) :])
    except BaseException:
        stack.stop()
        raise
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    tis = {t["task_id"]: t for t in result["tis"]}
    print(json.dumps(result, indent=1))
    assert result["run_state"] == "success", tis
    assert all(t["state"] == "success" for t in tis.values()), tis
    pids = [t["pid"] for t in tis.values()]
    assert all(pids) and len(set(pids)) == len(pids), pids  # one process per task
    assert result["driver_pid"] not in pids and server.pid not in pids and os.getpid() not in pids
    assert all(t["executor"] in (None, "LocalExecutor") for t in tis.values())
    try:
        counts = assert_invariants(stack)  # read from the ERP sandbox and staging, as in every e2e test
        assert counts["posted"] > 20, counts
    finally:
        stack.stop()
    postgres.drop_database(stack.config.database)
    postgres.drop_database(meta_db)


if __name__ == "__main__":
    _drive(sys.argv[1])
