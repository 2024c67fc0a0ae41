"""Code versions: an App's version checked, and its default, a fingerprint of its
registered workflows and steps.

The fingerprint is the first 12 hex digits of a SHA-256 over, for every registered workflow
and step (sorted by kind and name): its registered name, whether it is async, and its code
object's *meaning*: the bytecode, the constants (nested functions, lambdas, comprehensions
and classes recursively), the names it looks up (globals, attributes: so calling another step
or helper by another name changes it), its argument counts and flags, and the interpreter's
version (bytecode differs between Python minor versions).

What does not change it: the file a function lives in, line numbers, blank lines, comments,
the function's docstring, the names of local variables, the order of definitions, and
code the workflows call that is not a registered workflow or step (a helper module's body);
nor step options such as retries and timeouts.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

from durable.engine.registry import Registry

__all__ = ["DIGITS", "MAX_VERSION", "check_version", "code_fingerprint"]

DIGITS = 12
"""Hex digits of the fingerprint."""

MAX_VERSION = 255
"""The longest version the log keeps (its column's width)."""


def check_version(version: object) -> str | None:
    """``App(version=...)``, checked.

    Raises:
        TypeError: not a string (nor ``None``).
        ValueError: empty, longer than :data:`MAX_VERSION` characters, or with a NUL.
    """
    if version is None:
        return None
    if not isinstance(version, str):
        raise TypeError(f"an App's version must be a string, got {type(version).__name__}")
    if not version.strip():
        raise ValueError("an App's version must be a non-empty string")
    if len(version) > MAX_VERSION or "\x00" in version or "\n" in version:
        raise ValueError(
            f"an App's version must be at most {MAX_VERSION} characters, on one line, without NUL"
        )
    return version


def _feed(h: Any, code: types.CodeType, doc: str | None = None, top: bool = False) -> None:
    h.update(code.co_code)
    h.update(repr((code.co_argcount, code.co_kwonlyargcount, code.co_posonlyargcount)).encode())
    h.update(repr(code.co_flags).encode())
    h.update(repr(code.co_names).encode())
    consts = list(code.co_consts)
    if top and consts and (consts[0] is None or consts[0] == doc):
        consts = consts[1:]  # the docstring's place (``None`` for a function without one)
    h.update(getattr(code, "co_exceptiontable", b""))
    for c in consts:
        if isinstance(c, types.CodeType):
            h.update(b"<code>")
            _feed(h, c)
        else:
            h.update(_const(c).encode())
        h.update(b"\x00")


def _const(c: object) -> str:
    """A constant's text, the same in every process (a frozenset's order follows the
    string hashes, which are salted per process)."""
    if isinstance(c, frozenset):
        return "frozenset(" + repr(sorted(_const(x) for x in c)) + ")"
    if isinstance(c, tuple):
        return "(" + ",".join(_const(x) for x in c) + ")"
    return repr(c)


def _code_of(fn: Callable[..., Any]) -> types.CodeType | None:
    target = inspect.unwrap(fn)
    code = getattr(target, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def code_fingerprint(registry: Registry) -> str:
    """The fingerprint of ``registry``'s workflows and steps (see the module's docstring)."""
    h = hashlib.sha256()
    h.update(f"python {sys.version_info[0]}.{sys.version_info[1]}".encode())
    items: list[tuple[str, str, Callable[..., Any]]] = [
        ("workflow", name, wf.fn) for name, wf in registry.workflows.items()
    ]
    items += [("step", name, step.fn) for name, step in registry.steps.items()]
    for kind, name, fn in sorted(items, key=lambda x: (x[0], x[1])):
        h.update(f"\x01{kind}\x00{name}\x00{inspect.iscoroutinefunction(fn)}\x00".encode())
        code = _code_of(fn)
        if code is None:
            h.update(repr(getattr(fn, "__qualname__", type(fn).__qualname__)).encode())
        else:
            _feed(h, code, inspect.unwrap(fn).__doc__, top=True)
    return h.hexdigest()[:DIGITS]
