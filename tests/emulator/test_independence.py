"""The emulator stands alone: nothing of the load pipeline is imported; imports point one way."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_lambda_slo"
EMULATOR = PACKAGE / "emulator"
# Leaf helpers of the package (they import nothing else of it) that the emulator may use.
ALLOWED_OUTSIDE = {"pytest_lambda_slo", "pytest_lambda_slo.errors", "pytest_lambda_slo._units"}
ALLOWED_OUTSIDE |= {"pytest_lambda_slo._procs"}

# Import every emulator module with the parent package stubbed: the package's __init__
# re-exports the whole product, and what is measured here is the emulator's own closure.
_PROBE = """
import importlib, json, pkgutil, sys, types
pkg = types.ModuleType("pytest_lambda_slo")
pkg.__path__ = [{package!r}]
sys.modules["pytest_lambda_slo"] = pkg
import pytest_lambda_slo.emulator as emulator
for info in pkgutil.iter_modules(emulator.__path__):
    if info.name != "__main__":
        importlib.import_module("pytest_lambda_slo.emulator." + info.name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("pytest_lambda_slo"))))
"""


def test_importing_the_emulator_loads_nothing_of_the_load_pipeline():
    probe = _PROBE.format(package=str(PACKAGE))
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(out.stdout))
    outside = {m for m in loaded if not m.startswith("pytest_lambda_slo.emulator")}
    assert "pytest_lambda_slo.emulator.app" in loaded  # the probe did import the modules
    assert outside <= ALLOWED_OUTSIDE, sorted(outside - ALLOWED_OUTSIDE)
    for package in ("_load", "_http", "_targets", "_results", "_aws", "_pytest", "_report"):
        assert not any(m.startswith(f"pytest_lambda_slo.{package}") for m in loaded), package


def _module_imports(path: Path) -> list[tuple[ast.ImportFrom | ast.Import, bool]]:
    """Every import in a module and whether it sits at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, id(node) in top or _in_toplevel_if(tree, node)))
    return found


def _in_toplevel_if(tree: ast.Module, node: ast.AST) -> bool:
    """Imports under a module-level ``if`` (version switches) count as module level."""
    return any(
        isinstance(stmt, ast.If) and any(child is node for child in ast.walk(stmt))
        for stmt in tree.body
    )


def _emulator_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(EMULATOR.glob("*.py")):
        deps = graph.setdefault(path.stem, set())
        for node, _ in _module_imports(path):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
    return graph


def test_no_cycle_among_emulator_modules():
    graph = _emulator_graph()
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 1:
            pytest.fail("import cycle: " + " -> ".join([*trail, name]))
        if state.get(name) == 2:
            return
        state[name] = 1
        for dep in sorted(graph.get(name, ())):
            visit(dep, [*trail, name])
        state[name] = 2

    for name in graph:
        visit(name, [])


def test_routes_do_not_reach_back_into_the_app():
    graph = _emulator_graph()
    importers = sorted(name for name, deps in graph.items() if "app" in deps)
    assert importers == ["cli"]  # only the process entry point builds the app


def test_no_private_names_across_modules_and_no_function_local_package_imports():
    for path in sorted(EMULATOR.glob("*.py")):
        for node, top_level in _module_imports(path):
            relative = isinstance(node, ast.ImportFrom) and node.level > 0
            if relative:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private {private} from {node.module}"
                assert top_level, f"{path.name}:{node.lineno} imports {node.module} in a function"


def test_no_emulator_module_is_over_450_lines():
    long = {
        p.name: n for p in EMULATOR.glob("*.py") if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long
