"""Where relative paths in settings point: one documented base, never the process's working directory.

The scheduler, the workers and the api-server each start in a directory of their own choosing, so a
relative ``sitoo_erp_report_dir`` used to land wherever the worker happened to run. Relative paths
now resolve against ``$SITOO_ERP_HOME`` when set, else ``$AIRFLOW_HOME`` (Airflow's own home,
``~/airflow`` by default; ``/usr/local/airflow`` in an Astro image).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SITOO_ERP_HOME"


def base_dir() -> Path:
    """``$SITOO_ERP_HOME``, else ``$AIRFLOW_HOME``, else ``~/airflow`` (Airflow's default home)."""
    for name in (HOME_ENV, "AIRFLOW_HOME"):
        value = os.environ.get(name, "").strip()
        if value:
            return Path(value).expanduser().resolve()
    return (Path.home() / "airflow").resolve()


def resolve(path: str | os.PathLike[str]) -> Path:
    """An absolute path as given (``~`` expanded); a relative one under :func:`base_dir`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir() / p
