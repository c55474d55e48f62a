"""The library's import graph: no cycles, and the ERP's own language stays in its adapter.

Counted are the imports a module makes when it is loaded (module level, outside ``TYPE_CHECKING``);
imports inside functions are deliberate late bindings (operators import the library in ``execute``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "include" / "sitoo_erp"
PACKAGE = "include.sitoo_erp"


def _module_name(path: Path) -> str:
    rel = path.relative_to(LIB.parents[1]).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _load_time_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in [node] if isinstance(node, ast.Import | ast.ImportFrom) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith(PACKAGE):
                out.add(sub.module)
                out.update(f"{sub.module}.{a.name}" for a in sub.names)
            elif isinstance(sub, ast.Import):
                out.update(a.name for a in sub.names if a.name.startswith(PACKAGE))
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in LIB.rglob("*.py") if "migrations" not in p.parts}
    return {
        name: {m for m in _load_time_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_the_library_has_no_import_cycles():
    graph = _graph()
    assert len(graph) > 40  # the scan found the library
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, cycles


def test_only_the_erp_adapter_speaks_the_erps_language():
    """NetSuite's record bodies and SuiteQL live in ``erp/`` only: jobs talk to the adapter protocol."""
    speaking = []
    for path in LIB.rglob("*.py"):
        if "erp" in path.relative_to(LIB).parts[:1] or "migrations" in path.parts:
            continue
        code = path.read_text()
        for word in (
            "FROM transaction",
            "transactionline",
            "inventoryitemlocations",
            '"adjustQtyBy"',
            '"externalId"',
        ):
            if word in code:
                speaking.append(f"{path.relative_to(LIB)}: {word}")
    assert not speaking, speaking


def _writers(table: str) -> list[str]:
    """The files of the library and the plugins that update, insert into or delete from ``table``."""
    write = re.compile(rf"(update|insert\s+into|delete\s+from)\s+sitoo_erp\.{table}\b", re.I)
    return sorted(
        str(p.relative_to(LIB.parents[1]))
        for p in [*LIB.rglob("*.py"), *(LIB.parents[1] / "plugins").rglob("*.py")]
        if "migrations" not in p.parts and write.search(p.read_text())
    )


def test_exceptions_have_one_writer():
    """``staging/exceptions.py`` alone writes ``sitoo_erp.exception`` (open, resolve, claim, a
    person's decision): one place where an exception's lifecycle can change."""
    assert _writers("exception") == ["include/sitoo_erp/staging/exceptions.py"]


def test_the_state_ledger_has_one_writer():
    """``staging/ledger.py`` alone writes ``sitoo_erp.order_state``: every state move is one of its
    named transitions with its guard (invariant 1 cannot be broken from somewhere else)."""
    assert _writers("order_state") == ["include/sitoo_erp/staging/ledger.py"]


def test_the_operations_page_reads_no_airflow_internals():
    """The operations read side asks the package's own tables (``sitoo_erp.task_run`` for run
    history), never Airflow's metadata models: their schema is Airflow's, not a promise to us."""
    offenders = []
    for path in (LIB / "operations").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):  # function-level imports too
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [
                f"{path.relative_to(LIB)}: {n}"
                for n in names
                if n.startswith(("airflow.models", "airflow.utils.session"))
            ]
    assert not offenders, offenders


def test_the_run_history_has_one_writer():
    """``operations/task_runs.py`` alone writes ``sitoo_erp.task_run`` (the operators' base class
    calls it for every task try)."""
    assert _writers("task_run") == ["include/sitoo_erp/operations/task_runs.py"]
