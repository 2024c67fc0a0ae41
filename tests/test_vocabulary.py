"""Statuses and reasons cross the layers as typed values: no module but the ones that define
them spells a status, a wait kind, a suspend reason or an abort reason as a string literal.

A literal here is a string constant in code (docstrings and f-string text are prose, not
values). The defining modules are ``types.py`` (``Status``, ``WorkerEvent``) and
``states.py`` (``WaitKind``, ``SuspendReason``, ``AbortReason``). Words that are also the
names of functions, commands and journaled call kinds (``sleep``, ``signal``, ``child``,
``children``, ``retry``) are left out: they cannot be told apart from those by their text.
"""

from __future__ import annotations

import ast
from pathlib import Path

import durable
from durable.states import AbortReason, SuspendReason, WaitKind
from durable.types import Status

ROOT = Path(durable.__file__).parent
DEFINING = {"types.py", "states.py"}
AMBIGUOUS = {"sleep", "signal", "child", "children", "retry"}
WORDS = {
    *(s.value for s in Status),
    *(k.value for k in WaitKind),
    *(r.value for r in SuspendReason),
    *(r.value for r in AbortReason),
} - AMBIGUOUS
ALLOWED = {
    ("cli/manage.py", "cancelled"): "the verb of the sentence `durable cancel` prints",
    ("__init__.py", "cancelled"): "the name of the function durable.cancelled() in __all__",
    ("context.py", "cancelled"): "the name of the function durable.cancelled() in __all__",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the constant nodes that are docstrings (or bare strings used as comments)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for stmt in body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    out.add(id(stmt.value))
    return out


def _fstring_parts(tree: ast.AST) -> set[int]:
    return {
        id(v)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for v in node.values
        if isinstance(v, ast.Constant)
    }


def literals() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in DEFINING:
            continue
        tree = ast.parse(path.read_text(), rel)
        skip = _docstrings(tree) | _fstring_parts(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in WORDS
                and id(node) not in skip
                and (rel, node.value) not in ALLOWED
            ):
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_no_status_or_reason_literal_outside_its_defining_module() -> None:
    assert literals() == []


def test_the_terminal_statuses_are_defined_once() -> None:
    """Only ``types.py`` lists the terminal statuses; everyone else imports ``TERMINAL``."""
    names = {"COMPLETED", "FAILED", "CANCELLED"}
    sets = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "types.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Set | ast.List | ast.Tuple):
                attrs = {e.attr for e in node.elts if isinstance(e, ast.Attribute)}
                if names <= attrs:
                    sets.append(f"{rel}:{node.lineno}")
    assert sets == []
