"""The package keeps its shape: a pure core and renderers, no import cycles, imports at the top.

- ``imdiag.core`` and ``imdiag.render`` load no I/O library (asyncio, sockets, aiohttp, socketio):
  every rule about sizes and verdicts, and every table, is testable without a network.
- No module imports, directly or through others, a module that imports it back.
- Imports live at the top of a module; one inside a function is allowed only for start-up time,
  and says so in a comment (``start-up time``) just above it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import imdiag

PACKAGE = Path(imdiag.__file__).parent
IO_MODULES = ["asyncio", "aiohttp", "socketio", "engineio", "socket"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(*packages: str) -> list[str]:
    return sorted(_module_name(p) for package in packages for p in (PACKAGE / package).rglob("*.py"))


def test_core_and_renderers_import_no_io():
    pure = _modules("core", "render")
    assert "imdiag.render.terminal" in pure and "imdiag.core.wire" in pure
    code = (
        "import sys\n"
        f"for m in {pure!r}: __import__(m)\n"
        f"print(','.join(m for m in {IO_MODULES!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_drawing_a_table_loads_no_server():
    code = "import sys, imdiag.render.terminal; print(sorted(m for m in ('socketio', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def _imports() -> dict[str, set[str]]:
    """Each imdiag module and the imdiag modules it imports (top level and inside functions)."""
    known = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from imdiag.masters import node" imports the module imdiag.masters.node
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            edges |= {t for t in targets if t in known and t != name}
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycle():
    graph = _imports()
    assert len(graph) > 30
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_imports_are_at_the_top_or_say_why_not():
    late = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        top = {id(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))}
        body_started = False
        for node in tree.body:
            is_import = isinstance(node, (ast.Import, ast.ImportFrom))
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            if is_import and body_started:
                late.append(f"{path.name}:{node.lineno} (mid-file)")
            elif not is_import and not docstring:
                body_started = True
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                above = " ".join(lines[max(0, node.lineno - 3):node.lineno - 1])
                if "start-up time" not in above:
                    late.append(f"{path.name}:{node.lineno}")
    assert late == []


def test_the_html_report_imports_only_the_core_and_the_standard_library():
    """One self-contained page from the result model alone: no rich, no I/O, no other renderer."""
    tree = ast.parse((PACKAGE / "render" / "html.py").read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    outside = [m for m in imported if m != "imdiag" and not m.startswith("imdiag.core.")
               and m.split(".")[0] not in sys.stdlib_module_names]
    assert outside == [] and "imdiag.core.findings" in imported
    code = "import sys, imdiag.render.html; print(sorted(m for m in ('rich', 'typer', 'asyncio', 'socket') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
