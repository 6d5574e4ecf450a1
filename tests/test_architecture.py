"""The package's structure stays as docs/architecture.md states it, checked on the source.

An ast walk of every module: module-level imports form no cycle, no private name crosses
a module boundary, function-local imports of the package say why they are lazy, modules
stay small; the public surface is pinned; the fixture and the shapes agree on every
parameter; importing the plugin stays light.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_lambda_slo
from pytest_lambda_slo import Burst, LambdaSLO, Ramp, Rate

ROOT = Path(pytest_lambda_slo.__file__).resolve().parent
PACKAGE = "pytest_lambda_slo"
ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (TYPE_CHECKING blocks excluded)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)) and not (
            isinstance(node, ast.If) and _is_type_checking(node)
        ):
            blocks = [node.body, node.orelse]
            if isinstance(node, ast.Try):
                blocks += [handler.body for handler in node.handlers]
            for block in blocks:
                found += [n for n in block if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def _imported_modules(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's modules an import statement loads (``from .x import y``: x.y if a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith(PACKAGE)]
    target = _resolve(module, path, node)
    if not target.startswith(PACKAGE):
        return []
    found = [target]
    for alias in node.names:
        if f"{target}.{alias.name}" in MODULES:
            found.append(f"{target}.{alias.name}")
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in _top_level_imports(tree):
            for target in _imported_modules(module, path, node):
                # Importing a.b.c runs a/__init__ and a/b/__init__ too.
                parts = target.split(".")
                edges.update(
                    ".".join(parts[:i]) for i in range(1, len(parts) + 1)
                    if ".".join(parts[:i]) in MODULES and ".".join(parts[:i]) != module
                    # its own packages are imported before it, not because of it
                    and not module.startswith(".".join(parts[:i]) + ".")
                )  # fmt: skip
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_level_import_cycle() -> None:
    graph = _graph()
    assert graph[f"{PACKAGE}._load.api"] >= {f"{PACKAGE}._load.pool"}  # the walk sees edges
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_is_imported_across_modules() -> None:
    crossings = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and _resolve(module, path, node).startswith(
                PACKAGE
            ):
                target = _resolve(module, path, node)
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and f"{target}.{alias.name}" not in MODULES:
                        crossings.append(f"{module}: from {target} import {alias.name}")
    assert crossings == []


def test_function_local_imports_of_the_package_say_why_they_are_lazy() -> None:
    unexplained = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        top = {id(node) for node in _top_level_imports(tree)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            if isinstance(node, ast.ImportFrom) and not _resolve(module, path, node).startswith(
                PACKAGE
            ):
                continue
            if isinstance(node, ast.Import) and not _imported_modules(module, path, node):
                continue
            if _in_type_checking(tree, node):
                continue
            around = " ".join(lines[max(0, node.lineno - 3) : node.end_lineno or node.lineno])
            if "lazy" not in around.lower():
                unexplained.append(f"{module}:{node.lineno}")
    assert unexplained == []


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    return any(
        isinstance(block, ast.If) and _is_type_checking(block) and node in ast.walk(block)
        for block in tree.body
    )


def _documented_exceptions() -> set[str]:
    """Modules docs/architecture.md names as allowed over the line limit (its table)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Modules over", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(pytest_lambda_slo/[\w/]+\.py)`", section))


def test_no_module_is_over_the_line_limit_unless_named_with_its_reason() -> None:
    allowed = _documented_exceptions()
    long = {
        str(path.relative_to(ROOT.parent))
        for path in MODULES.values()
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert long <= allowed, sorted(long - allowed)
    assert allowed <= long, f"no longer over {MAX_LINES} lines: {sorted(allowed - long)}"


def test_the_public_surface_is_pinned() -> None:
    assert pytest_lambda_slo.__all__ == [
        "BUDGETS", "AwsIam", "Burst", "BurstResult", "ConfigError", "Cycle", "Emulator",
        "FunctionConfig",
        "HttpTarget", "InvokeTarget", "LambdaFanout", "LambdaSLO", "LambdaSLOError", "LatencyView",
        "LoadAborted", "Measurements", "MissingExtraError", "Ramp", "Rate", "Response",
        "RunInvalid", "RunResult", "SLOInconclusive", "SLOInconclusiveWarning", "SLOViolation",
        "SaturationWarning", "Verdict", "VerdictPolicy", "arun", "estimate_cost", "run",
    ]  # fmt: skip
    for name in pytest_lambda_slo.__all__:
        assert getattr(pytest_lambda_slo, name) is not None
    assert pytest_lambda_slo.BurstResult is pytest_lambda_slo.RunResult
    with pytest.raises(AttributeError):
        pytest_lambda_slo.run_burst  # noqa: B018  (internal helpers are not exported)


FIXTURE_ONLY = {"self", "target", "force_cold", "workers", "fanout"}


@pytest.mark.parametrize(
    ("methods", "shape"),
    [(("burst", "aburst"), Burst), (("rate", "arate"), Rate), (("ramp", "aramp"), Ramp)],
)
def test_fixture_methods_take_exactly_the_parameters_of_their_shape(
    methods: tuple[str, str], shape: type
) -> None:
    fields = {f.name: f for f in dataclasses.fields(shape) if f.init}
    for name in methods:
        params = inspect.signature(getattr(LambdaSLO, name)).parameters
        taken = {key: p for key, p in params.items() if key not in FIXTURE_ONLY}
        assert set(taken) == set(fields), (name, sorted(set(taken) ^ set(fields)))
        for key, param in taken.items():
            default = fields[key].default
            expected = inspect.Parameter.empty if default is dataclasses.MISSING else default
            assert param.default == expected, (name, key, param.default, expected)
            assert param.kind is inspect.Parameter.KEYWORD_ONLY, (name, key)
    assert "connections" in fields or shape is not Rate


_PLUGIN_PROBE = """
import json, sys
import pytest_lambda_slo.plugin
print(json.dumps(sorted(sys.modules)))
"""
HEAVY = (
    "pytest_lambda_slo._load.engine",
    "pytest_lambda_slo._load.api",
    "pytest_lambda_slo._http.transport",
    "pytest_lambda_slo._targets.invoke",
    "pytest_lambda_slo._pytest.fixture",
    "pytest_lambda_slo.emulator.app",
    "pytest_lambda_slo.emulator.server",
    "botocore",
    "hdrh",
    "scipy",
    "anyio",
    "httptools",
    "uvloop",
)


def test_importing_the_plugin_loads_hooks_and_options_only() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PLUGIN_PROBE], capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    loaded = set(json.loads(out.stdout))
    assert "pytest_lambda_slo.plugin" in loaded  # the probe did import it
    assert sorted(name for name in HEAVY if name in loaded) == []
