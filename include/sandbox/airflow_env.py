"""A local Airflow for the demo and the tests: settings via environment, SQLite metadata DB.

Airflow reads its configuration when first imported, so ``configure()`` must run before any
``import airflow``. Connections come from ``AIRFLOW_CONN_*`` variables (see ``stack.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def configure(home: Path | str) -> dict[str, str]:
    """Point Airflow at ``home`` and this project's dags/ and plugins/; returns what was set."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    xdg = Path(tempfile.gettempdir()) / f"xdg-{os.getuid()}"
    xdg.mkdir(mode=0o700, exist_ok=True)
    values = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "XDG_RUNTIME_DIR": str(xdg),
        "GX_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    os.environ.update(values)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return values


def migrate_metadata_db() -> None:
    """``airflow db migrate`` (SQLite, a few seconds; a no-op when already at head)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
