"""A real ``airflow api-server`` process on 127.0.0.1 for the UI tests and the page benchmark.

Airflow's default auth manager (SimpleAuthManager) with two users whose passwords we write to the
passwords file ourselves, so tests log in the way a person does: ``POST /auth/token`` (what the
login form calls) returns a JWT, sent back as the ``_token`` cookie (what the login page sets).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from include.sandbox.airflow_env import ROOT
from include.sandbox.server import free_port

USERS = {"ops": ("admin", "ops-sandbox-pw"), "viewer": ("viewer", "viewer-sandbox-pw")}


class ApiServer:
    def __init__(self, workdir: Path, env: dict[str, str], port: int | None = None, workers: int = 1) -> None:
        self.workdir = Path(workdir)
        self.extra_env = dict(env)
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "api-server.log"

    def start(self, timeout: float = 120.0) -> ApiServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        passwords = self.workdir / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({name: pw for name, (_, pw) in USERS.items()}))
        env = os.environ.copy()
        env.update(self.extra_env)
        env.update(
            {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                    f"{name}:{role}" for name, (role, _) in USERS.items()
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            }
        )
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(self.workdir),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"api-server did not answer within {timeout}s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def token(self, user: str = "ops") -> str:
        """Log in as the login form does; returns Airflow's JWT."""
        response = httpx.post(
            f"{self.url}/auth/token",
            json={"username": user, "password": USERS[user][1]},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self, user: str | None = "ops") -> httpx.Client:
        """An HTTP client carrying the session cookie the Airflow UI uses (``None``: not logged in)."""
        cookies = {"_token": self.token(user)} if user else {}
        return httpx.Client(base_url=self.url, cookies=cookies, timeout=30, follow_redirects=False)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
