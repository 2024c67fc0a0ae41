"""DBOS Transact (PyPI ``dbos``, the ``bench`` extra), measured beside durable with
``python -m benchmarks --compare dbos``.

One module per idea: :mod:`.store` (a fresh system database per measurement and the
DBOS configuration), :mod:`.workflows` (the benchmark workflows, registered with DBOS at
import), :mod:`.worker` (a DBOS worker process), :mod:`.procs` (starting those),
:mod:`.isolate` (each DBOS cell in its own interpreter, since DBOS is a per-process
singleton), and one module per workload (``w1``, ``w2``, ``w3``, ``w4``, ``w5``, ``w8``).
"""

from __future__ import annotations

import importlib

MISSING = (
    "--compare dbos needs DBOS Transact, which is not installed: "
    "pip install -e '.[bench]' (the bench extra)"
)
"""The one-line message for a run that asks for DBOS without it."""


def available() -> bool:
    """Whether ``dbos`` imports. (Importing it starts nothing: DBOS's state begins with
    ``DBOS(config=...)``, which only the DBOS cells' own processes call.)"""
    try:
        importlib.import_module("dbos")
    except ImportError:
        return False
    return True


def require() -> None:
    """Raise :class:`RuntimeError` with :data:`MISSING` if ``dbos`` is not installed."""
    if not available():
        raise RuntimeError(MISSING)
