"""The shape of the house: logitnet's modules import one another with arrows pointing down
(no loop, lazy imports inside functions included), `ops` imports only NumPy, `saving` never
imports the model back, and importing logitnet or logitnet.tf imports no other third-party package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "logitnet"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of the package that `path` imports, at module level or inside a function."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("logitnet"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("logitnet"))
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_loops_between_modules():
    graph = _graph()
    # Packages' __init__ files re-export their modules; the arrows that matter are between modules.
    inits = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    edges = {m: {t for t in targets if t not in inits} for m, targets in graph.items() if m not in inits}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 1, "import loop: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_the_arrows_point_down():
    graph = _graph()
    assert not {m for m in graph["logitnet.saving"] if m in ("logitnet.model", "logitnet.models", "logitnet.training")}
    for module, targets in graph.items():
        if module.startswith("logitnet.ops"):
            assert all(t.startswith("logitnet.ops") for t in targets), (module, targets)
        if module.startswith("logitnet.layers") or module in ("logitnet.activations", "logitnet.losses",
                                                               "logitnet.head", "logitnet.callbacks"):
            assert not targets & {"logitnet.model", "logitnet.models", "logitnet.saving", "logitnet.cli",
                                  "logitnet.cli_train", "logitnet.sklearn", "logitnet.tf"}, (module, targets)
    assert "logitnet.saving" in graph["logitnet.model"]  # the model saves through saving, not the reverse


def test_importing_logitnet_and_logitnet_tf_imports_no_other_package():
    # Private and runtime modules (_distutils_hack, numpy's Cython runtime) are not packages one installs.
    code = ("import sys, logitnet, logitnet.tf; print(sorted({m.split('.')[0] for m in sys.modules if not "
            "m.startswith('_') and m != 'cython_runtime'} - set(sys.stdlib_module_names)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["logitnet", "numpy"], out
