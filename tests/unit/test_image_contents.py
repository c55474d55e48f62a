"""The Astro image ships only the DAG package: no sandbox, demo, test or bench code, and nothing
it ships imports a development-only dependency (so the image runs on requirements.txt alone)."""

from __future__ import annotations

import ast
import fnmatch
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: Path, patterns: list[str]) -> bool:
    """Docker excludes a path when a pattern matches it or one of its parent directories."""
    parts = relative.parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes for pattern in patterns)


def shipped_python_files() -> list[Path]:
    patterns = _patterns()
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not _ignored(path.relative_to(ROOT), patterns) and ".venv" not in path.parts
    )


def _requirement_names(file: str) -> set[str]:
    names = set()
    for line in (ROOT / file).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(Requirement(line).name.lower().replace("_", "-"))
    return names


@cache
def runtime_distributions() -> frozenset[str]:
    return frozenset(_closure(_requirement_names("requirements.txt")))


@cache
def _provided_by() -> dict[str, list[str]]:
    return packages_distributions()


def _closure(names: set[str]) -> set[str]:
    """Every distribution installing ``names`` brings in (their Requires-Dist, markers honoured)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower().replace("_", "-"))
    return seen


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_image_carries_no_sandbox_test_or_bench_code():
    shipped = {path.relative_to(ROOT).as_posix() for path in shipped_python_files()}
    assert any(p.startswith("dags/") for p in shipped) and any(
        p.startswith("include/sitoo_erp/") for p in shipped
    )
    carried = sorted(p for p in shipped if p.startswith(("include/sandbox/", "tests/", "bench/")))
    assert not carried, carried


@pytest.mark.parametrize("path", shipped_python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shipped_code_imports_only_runtime_dependencies(path: Path):
    runtime = runtime_distributions()
    provided_by = _provided_by()
    local = {"dags", "include", "plugins", "sitoo_erp_ops"}
    for module in sorted(_top_level_imports(path)):
        assert not module.startswith("include.sandbox"), (
            f"{path.name} imports {module}, which the image does not carry"
        )
        top = module.split(".")[0]
        if top in local or top in sys.stdlib_module_names or top == "__future__":
            continue
        dists = {d.lower().replace("_", "-") for d in provided_by.get(top, [])}
        assert dists & runtime, (
            f"{path.name} imports {top!r}, not installed by requirements.txt ({sorted(dists)})"
        )
