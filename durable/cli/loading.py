"""Turning command-line text into values: ``MODULE:APP``, JSON arguments, durations."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from typing import Any

import durable
from durable.cli.errors import USAGE, CliError

__all__ = ["load_app", "parse_duration", "parse_json"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def load_app(spec: str) -> durable.App:
    """Import ``MODULE:APP`` (``APP`` may be dotted) from the current directory's path."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"expected MODULE:APP (e.g. shop.workers:app), got {spec!r}", USAGE)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: the user's code is here
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CliError(f"cannot import {module_name!r}: no such module", USAGE) from None
        raise CliError(f"importing {module_name!r} failed: {exc}", USAGE) from None
    except Exception as exc:
        raise CliError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}", USAGE
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CliError(f"module {module_name!r} has no attribute {attr!r}", USAGE)
        obj = getattr(obj, part)
    if not isinstance(obj, durable.App):
        raise CliError(f"{spec!r} is a {type(obj).__name__}, not a durable.App", USAGE)
    return obj


def parse_json(text: str, what: str) -> Any:
    """``text`` as JSON, or a usage error that names ``what``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno})", USAGE
        ) from None


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` or ``"1w"``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if m is None:
        raise CliError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 7d, 1w)", USAGE)
    return float(m.group(1)) * _UNITS[m.group(2)]
