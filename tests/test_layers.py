"""Imports point down the layers of STYLE.md: cli → app, client → context → engine → log;
engine → telemetry, the only package that imports opentelemetry, and that imports neither the
engine nor (but for type annotations) the log: it sits beside events and codec."""

from __future__ import annotations

import ast
from pathlib import Path

import durable

ROOT = Path(durable.__file__).parent
ABOVE_LOG = ("durable.engine", "durable.app", "durable.client", "durable.context", "durable.cli")


def imports(path: Path, *, annotations: bool = True) -> set[str]:
    """Every module ``path`` imports, anywhere in it (relative imports resolved);
    ``annotations=False``: not those under ``if TYPE_CHECKING:`` (for type annotations only).
    """
    package = ".".join(("durable", *path.relative_to(ROOT).parent.parts))
    out: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while todo:
        node = todo.pop()
        if not annotations and _type_checking_only(node):
            continue
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(p for p in (base, node.module) if p)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def under(mod: str, *prefixes: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for mod in imports(path):
            if (
                (rel.startswith("log/") and under(mod, *ABOVE_LOG))
                or (rel.startswith("engine/") and under(mod, *ABOVE_LOG[1:]))
                or (under(mod, "sqlalchemy", "psycopg") and not rel.startswith("log/"))
                or (under(mod, "opentelemetry") and not rel.startswith("telemetry/"))
                or (rel.startswith("telemetry/") and under(mod, *ABOVE_LOG))
                or (rel == "errors.py" and under(mod, "durable"))
            ):
                wrong.append(f"durable/{rel} imports {mod}")
    assert wrong == []


def test_telemetry_imports_the_log_for_annotations_only() -> None:
    wrong = [
        f"durable/{path.relative_to(ROOT).as_posix()} imports {mod}"
        for path in sorted((ROOT / "telemetry").rglob("*.py"))
        for mod in imports(path, annotations=False)
        if under(mod, "durable.log", *ABOVE_LOG)
    ]
    assert wrong == []
