"""``python -m benchmarks._child TARGET BACKEND SETTINGS_JSON``: one measurement, in its own
process (``--isolate``). Prints the measurement as one JSON line, last on stdout."""

from __future__ import annotations

import json
import sys

from benchmarks.model import Settings
from benchmarks.registry import load


def main(argv: list[str]) -> int:
    target, backend, raw_settings = argv
    settings = Settings(**json.loads(raw_settings))
    measurement = load(target)(settings, backend)
    sys.stdout.write("\n" + json.dumps(measurement.to_dict()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
