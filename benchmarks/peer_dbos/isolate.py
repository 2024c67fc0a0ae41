"""Each DBOS cell in a fresh interpreter.

DBOS is a per-process singleton (``DBOS(config=...)``, ``DBOS.launch()``,
``DBOS.destroy()``) with background threads and a global registry, so every DBOS
measurement runs in its own ``python -m benchmarks._child`` process, whether or not the
run was given ``--isolate``: nothing of DBOS stays behind in the benchmark process to
disturb the durable cells measured after it.
"""

from __future__ import annotations

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos import require

TIMEOUT = 1800.0


def in_own_process(target: str, settings: Settings, backend: str) -> Measurement:
    """Run ``target`` (``"module:function"``, the measurement itself) in a new interpreter
    and return its measurement; raise with its stderr if it fails."""
    from benchmarks.runner import measure_in_subprocess

    require()
    return measure_in_subprocess(target, backend, settings, timeout=TIMEOUT)
