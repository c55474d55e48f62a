"""Dependency audit: pip-audit over the environment `make setup` installs from the pinned requirements.

    python .ci/audit.py [--strict]

1. ``pip-audit`` (PyPI vulnerability service) audits every installed distribution.
2. A package pip-audit could not look up (the per-version PyPI JSON endpoint is not served by every
   mirror) is checked against its project page's ``vulnerabilities`` list when the installed version
   is the latest release (PyPI fills that list for the latest release).
3. Findings listed as accepted in docs/security.md (table rows starting ``| GHSA-…``/``PYSEC-…``/
   ``CVE-…``) pass; any other finding fails. Packages that could not be audited at all are listed;
   ``--strict`` (or SITOO_ERP_AUDIT_STRICT=1) makes them fail too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
ACCEPTED_RE = re.compile(r"^\|\s*((?:GHSA|PYSEC|CVE|OSV)-[A-Za-z0-9-]+)\s*\|", re.M)


def accepted_ids() -> set[str]:
    doc = ROOT / "docs" / "security.md"
    return set(ACCEPTED_RE.findall(doc.read_text())) if doc.exists() else set()


def run_pip_audit() -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [str(VENV_BIN / "pip-audit"), "--progress-spinner", "off", "--skip-editable", "--desc", "on"]
        cmd += ["-f", "json", "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)  # noqa: S603 - our own venv
        if not out.exists():  # e.g. no route to the vulnerability service at all
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            return None
        return json.loads(out.read_text())


def project_vulns(name: str, version: str) -> list[dict] | None:
    """Vulnerabilities of ``name==version`` from the project page, or None if it cannot tell."""
    url = f"https://pypi.org/pypi/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = json.load(response)
    except (OSError, ValueError):
        return None
    if (data.get("info") or {}).get("version") != version:
        return None
    return [
        {"id": v.get("id"), "aliases": v.get("aliases") or [], "fix_versions": v.get("fixed_in") or []}
        for v in data.get("vulnerabilities") or []
    ]


def main() -> int:
    strict = "--strict" in sys.argv or os.environ.get("SITOO_ERP_AUDIT_STRICT") == "1"
    accepted = accepted_ids()
    report = run_pip_audit()
    if report is None:
        print("audit INCOMPLETE: pip-audit could not run (vulnerability service unreachable?)")
        return 1 if strict else 0
    deps = report.get("dependencies", [])
    findings: list[tuple[str, str, str, list[str]]] = []
    audited, skipped = [], []
    for dep in deps:
        if dep.get("skip_reason"):
            skipped.append(dep)
            continue
        audited.append(dep["name"])
        findings += [
            (dep["name"], dep["version"], v["id"], v.get("aliases", [])) for v in dep.get("vulns", [])
        ]

    fallback_ok, unaudited = [], []
    lookups = [(d["name"], d.get("version") or _version_of(d)) for d in skipped]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda nv: project_vulns(*nv), lookups))
    for (name, version), vulns in zip(lookups, results, strict=True):
        if vulns is None:
            unaudited.append(f"{name}=={version}")
            continue
        fallback_ok.append(name)
        findings += [(name, version, v["id"], v["aliases"]) for v in vulns]

    print(
        f"pip-audit: {len(deps)} distributions; {len(audited)} audited by pip-audit, "
        f"{len(fallback_ok)} by the PyPI project page (latest release), {len(unaudited)} not auditable here"
    )
    if unaudited:
        print("  not auditable (not the latest release and the per-version lookup is unavailable):")
        print("   ", ", ".join(sorted(unaudited)))
    failing = []
    for name, version, vid, aliases in findings:
        ok = vid in accepted or any(a in accepted for a in aliases)
        print(f"  {'accepted' if ok else 'FINDING '} {vid} {name}=={version} {' '.join(aliases)}")
        if not ok:
            failing.append(vid)
    if failing:
        print(f"audit FAILED: {len(failing)} finding(s) not accepted in docs/security.md")
        return 1
    if unaudited and strict:
        print("audit INCOMPLETE (--strict): some distributions could not be audited")
        return 1
    print("audit passed: no unaccepted findings")
    return 0


def _version_of(dep: dict) -> str:
    match = re.search(r"\(([^)]+)\)\s*$", dep.get("skip_reason", ""))
    return match.group(1) if match else ""


if __name__ == "__main__":
    raise SystemExit(main())
