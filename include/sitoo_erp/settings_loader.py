"""Load ``airflow_settings.yaml`` into any Airflow deployment, without the Astro CLI.

    python -m include.sitoo_erp.settings_loader airflow_settings.yaml            # import
    python -m include.sitoo_erp.settings_loader airflow_settings.yaml --dry-run  # show the files

The YAML (Astro's format) is translated into the files Airflow's own import commands read, then
``airflow pools import``, ``airflow variables import`` and ``airflow connections import`` load them
into whatever metadata DB the ``airflow`` CLI of this environment points at (run it where the
scheduler runs, e.g. ``docker exec`` / ``kubectl exec``). Pools and variables are always imported
(existing ones overwritten). A connection is imported only when it carries real values: one with a
``replace-with-…`` placeholder or an ``example.com`` host is skipped and named, so a template never
overwrites a working secret.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER_MARKERS = ("replace-with",)
PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net")
_CONN_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
    "conn_description": "description",
}


class SettingsError(ValueError):
    """The YAML does not have the shape Astro's ``airflow_settings.yaml`` has."""


@dataclass
class ImportFiles:
    """What Airflow's import commands will read, plus the connections left out and why."""

    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_connections: dict[str, str] = field(default_factory=dict)


def _placeholder(conn: dict[str, Any]) -> str | None:
    """Why this connection is still a template (``None``: it has real values)."""
    for key, value in conn.items():
        text = json.dumps(value) if isinstance(value, dict | list) else str(value or "")
        if any(marker in text for marker in PLACEHOLDER_MARKERS):
            return f"{key} is a placeholder"
    host = str(conn.get("conn_host") or "").lower().split("://")[-1].split("/")[0]
    if any(host == h or host.endswith("." + h) for h in PLACEHOLDER_HOSTS):
        return f"conn_host {host!r} is an example host"
    return None


def translate(settings: dict[str, Any]) -> ImportFiles:
    """Astro's ``airflow_settings.yaml`` mapping -> the JSON each ``airflow … import`` reads."""
    if not isinstance(settings, dict) or not isinstance(settings.get("airflow"), dict):
        raise SettingsError("airflow_settings.yaml: expected a top-level 'airflow:' mapping")
    section = settings["airflow"]
    out = ImportFiles()
    for i, pool in enumerate(section.get("pools") or []):
        name = (pool or {}).get("pool_name")
        slots = (pool or {}).get("pool_slot")
        if not name or not isinstance(slots, int) or slots < 0:
            raise SettingsError(
                f"pools[{i}] ({name or 'no name'}): pool_name and a pool_slot >= 0 are required"
            )
        out.pools[name] = {
            "slots": slots,
            "description": pool.get("pool_description") or "",
            "include_deferred": bool(pool.get("include_deferred", False)),
        }
    for i, var in enumerate(section.get("variables") or []):
        key = (var or {}).get("variable_name")
        if not key:
            raise SettingsError(f"variables[{i}]: variable_name is required")
        value = var.get("variable_value")
        out.variables[key] = "" if value is None else value
    for i, conn in enumerate(section.get("connections") or []):
        conn_id = (conn or {}).get("conn_id")
        if not conn_id or not conn.get("conn_type"):
            raise SettingsError(
                f"connections[{i}] ({conn_id or 'no conn_id'}): conn_id and conn_type are required"
            )
        reason = _placeholder(conn)
        if reason:
            out.skipped_connections[conn_id] = reason
            continue
        entry: dict[str, Any] = {}
        for yaml_key, airflow_key in _CONN_FIELDS.items():
            value = conn.get(yaml_key)
            if value not in (None, ""):
                entry[airflow_key] = value
        extra = conn.get("conn_extra")
        if extra:
            entry["extra"] = extra if isinstance(extra, str) else json.dumps(extra)
        out.connections[conn_id] = entry
    return out


def load(path: str | Path) -> ImportFiles:
    return translate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def write(files: ImportFiles, directory: Path) -> dict[str, Path]:
    """The three import files under ``directory`` (only those with something in them)."""
    written: dict[str, Path] = {}
    for kind, content in (
        ("pools", files.pools),
        ("variables", files.variables),
        ("connections", files.connections),
    ):
        if content:
            path = directory / f"{kind}.json"
            path.write_text(json.dumps(content, indent=2), encoding="utf-8")
            path.chmod(0o600)  # connections carry passwords
            written[kind] = path
    return written


def commands(written: dict[str, Path], airflow: list[str]) -> list[list[str]]:
    """Airflow's own import commands for the files written."""
    cmds = []
    if "pools" in written:
        cmds.append([*airflow, "pools", "import", str(written["pools"])])
    if "variables" in written:
        cmds.append([*airflow, "variables", "import", str(written["variables"]), "-a", "overwrite"])
    if "connections" in written:
        cmds.append([*airflow, "connections", "import", str(written["connections"]), "--overwrite"])
    return cmds


def apply(
    path: str | Path,
    airflow: list[str] | None = None,
    env: dict[str, str] | None = None,
    dry_run: bool = False,
) -> ImportFiles:
    """Translate ``path`` and run the imports; raises ``RuntimeError`` naming the failed command."""
    files = load(path)
    airflow = airflow or ["airflow"]
    with tempfile.TemporaryDirectory(prefix="airflow-settings-") as tmp:
        written = write(files, Path(tmp))
        if dry_run:
            print(json.dumps({"pools": files.pools, "variables": files.variables}, indent=2))
            print(f"connections to import: {sorted(files.connections)}")
        for name, reason in files.skipped_connections.items():
            print(f"connection {name}: skipped ({reason}); set it in your secrets backend or the UI")
        for cmd in commands(written, airflow):
            if dry_run:  # connections are listed by id only: their files hold passwords
                print("$", shlex.join(cmd[len(airflow) :]))
                continue
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)  # noqa: S603
            if done.returncode != 0:
                raise RuntimeError(f"{shlex.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            said = [ln for ln in done.stdout.splitlines() if ln.strip()]
            print(f"$ airflow {shlex.join(cmd[len(airflow) : len(airflow) + 2])}: {'; '.join(said[-10:])}")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Import airflow_settings.yaml with Airflow's own import commands"
    )
    parser.add_argument("settings", nargs="?", default="airflow_settings.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print what would be imported; import nothing")
    parser.add_argument(
        "--airflow", default=f"{shlex.quote(sys.executable)} -m airflow", help="the airflow CLI to call"
    )
    args = parser.parse_args(argv)
    try:
        files = apply(args.settings, shlex.split(args.airflow), dry_run=args.dry_run)
    except (SettingsError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"pools {sorted(files.pools)}, variables {sorted(files.variables)}, "
        f"connections {sorted(files.connections)} (skipped: {sorted(files.skipped_connections)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
