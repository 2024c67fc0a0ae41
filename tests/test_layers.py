"""Imports point down the layers of STYLE.md: cli → app, client → context → engine → log;
engine → telemetry, the only package that imports opentelemetry and that imports no engine."""

from __future__ import annotations

import ast
from pathlib import Path

import durable

ROOT = Path(durable.__file__).parent
ABOVE_LOG = ("durable.engine", "durable.app", "durable.client", "durable.context", "durable.cli")


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (relative imports resolved)."""
    package = ".".join(("durable", *path.relative_to(ROOT).parent.parts))
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(p for p in (base, node.module) if p)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


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
