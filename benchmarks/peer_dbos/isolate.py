"""Each DBOS cell in a fresh interpreter.

DBOS is a per-process singleton (``DBOS(config=...)``, ``DBOS.launch()``,
``DBOS.destroy()``) with background threads and a global registry, so every DBOS
measurement runs in its own ``python -m benchmarks._child`` process, whether or not the
run was given ``--isolate``: nothing of DBOS stays behind in the benchmark process to
disturb the durable cells measured after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos import require
from benchmarks.procs import ROOT

TIMEOUT = 1800.0


def in_own_process(target: str, settings: Settings, backend: str) -> Measurement:
    """Run ``target`` (``"module:function"``, the measurement itself) in a new interpreter
    and return its measurement; raise with its stderr if it fails."""
    require()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks._child",
            target,
            backend,
            json.dumps(settings.to_dict()),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{target} exited {proc.returncode}:\n{proc.stderr.strip()[-4000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{target} printed no result:\n{proc.stderr.strip()[-4000:]}")
    return Measurement.from_dict(json.loads(lines[-1]))
