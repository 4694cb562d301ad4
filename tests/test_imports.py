"""The shape of ``gateway/``'s imports: no circles, migrations free of the policy, crypto in keys/.

Reads every module's module-level imports with ``ast`` (imports inside functions are
deliberate deferrals and are not followed; ``if TYPE_CHECKING:`` blocks never run).
``from package import name`` depends on the package (its ``__init__`` runs first) and,
when ``name`` is a submodule, on that module too, so a package face that imports its
own modules closes a circle with any of them that imports from the face.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"
CRYPTO = ("hmac", "pyrage", "cryptography")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Yield the import statements that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def imported(name: str, path: Path) -> set[str]:
    """Return every module ``name`` imports at module level (absolute names, any package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        if base == "__future__":
            continue
        found.add(base)
        found.update(
            f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES
        )
    return found


GRAPH = {
    name: {m for m in imported(name, path) if m in MODULES and m != name}  # a face naming its own
    for name, path in MODULES.items()  # submodules (``from p import a`` in p) is no circle
}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one circle of imports (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def reachable(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_walker_sees_a_circle_through_a_package_face() -> None:
    graph = {"p": {"p.a"}, "p.a": {"p", "p.b"}, "p.b": set(), "q": {"p.b"}}
    assert find_cycle(graph) == ["p", "p.a", "p"]
    assert find_cycle({"p": set(), "p.a": {"p", "p.b"}, "p.b": set()}) is None


def test_the_walker_reads_module_level_imports_only(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import hmac\n"
        "from gateway.keys import ring\n"
        "if TYPE_CHECKING:\n"
        "    from gateway.policy import engine\n"
        "try:\n"
        "    import pyrage\n"
        "except ImportError:\n"
        "    pass\n"
        "def later() -> None:\n"
        "    import cryptography\n",
        encoding="utf-8",
    )
    assert imported("gateway.example", source) == {
        "typing",
        "hmac",
        "gateway.keys",
        "gateway.keys.ring",
        "pyrage",
    }


def test_no_import_circles() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.startswith("gateway.migrations")), ids=str
)
def test_migrations_do_not_import_the_policy(name: str) -> None:
    reached = reachable(name, GRAPH) | {m for m in GRAPH[name]}
    policy = sorted(m for m in reached if m == "gateway.policy" or m.startswith("gateway.policy."))
    assert not policy, f"{name} imports {', '.join(policy)} (freeze a copy or use SQL)"


def anywhere(path: Path) -> set[str]:
    """Return the top-level names of every module imported anywhere in ``path``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_crypto_is_imported_only_in_keys() -> None:
    outside = sorted(
        f"{name}: {m}"
        for name, path in MODULES.items()
        if name != "gateway.keys" and not name.startswith("gateway.keys.")
        for m in anywhere(path)
        if m in CRYPTO
    )
    assert not outside, "crypto outside gateway/keys/:\n" + "\n".join(outside)


def test_the_witness_command_line_imports_no_database_or_key_ring() -> None:
    """``gateway witness serve`` starts a process per witness: it loads only what it uses."""
    probe = (
        "import sys, gateway.cli as cli; cli.load_commands(['witness']); "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'sqlmodel', 'alembic', 'fastapi', 'jinja2', 'casbin') "
        "or m in ('gateway.db', 'gateway.keys.ring', 'gateway.config', 'gateway.app'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"the witness path imports {loaded}"
