"""A worker process that runs a sequence with handlers, for ``test_sequence_crash.py``.

    python tests/integration/procs/seqapp.py DB_URL DIR LEASE_TIMEOUT MODE

The sequence ``crash_seq`` chains ``first`` and ``second``; ``second`` fails permanently when
its input is ``"fail"``. Its handlers append one JSON line per execution of their bodies to
``{DIR}/on_success.log`` or ``{DIR}/on_error.log``: ``pid``, ``run``, ``arg``.

``MODE`` ``hang``: once an append that records a handler's ``step_completed`` has committed,
the worker prints ``HANDLER COMMITTED`` and blocks there (the test then kills it with
SIGKILL, between the handler's commit and the run's end). ``MODE`` ``run``: a plain worker.
The process runs until SIGTERM, or exits by itself if its parent goes away.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent.parent
for entry in (str(HERE), str(TESTS), str(TESTS.parent)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from harness.faults import Call, FaultyStore, use_store  # noqa: E402
from wfapp import append_line  # noqa: E402

import durable  # noqa: E402
from durable.log import open_store  # noqa: E402

HANDLERS = ("crash_seq.on_success", "crash_seq.on_error")


def make_app(database: str, directory: str, lease_timeout: float) -> durable.App:
    """The App with the sequence ``crash_seq``."""
    app = durable.App("seqcrash", database=database, lease_timeout=lease_timeout, poll_interval=0.2)

    @app.step(name="first")
    def first(value: str) -> str:
        return value

    @app.step(name="second")
    def second(value: str) -> str:
        if value == "fail":
            raise durable.PermanentError("second refused the input")
        return value.upper()

    def record(kind: str, arg: Any) -> None:
        line = {"pid": os.getpid(), "run": durable.info().id, "arg": repr(arg)}
        append_line(Path(directory) / f"{kind}.log", line)

    def succeeded(result: str) -> None:
        record("on_success", result)

    def failed(failure: durable.SequenceFailure) -> None:
        record("on_error", failure.step)

    app.sequence("crash_seq", [first, second], on_success=succeeded, on_error=failed)
    return app


def _hang_after_handler(call: Call, result: Any) -> Any:
    for request in call.arg(0, "requests"):
        for event in request.events:
            if event.type == durable.EventType.STEP_COMPLETED and event.name in HANDLERS:
                print("HANDLER COMMITTED", flush=True)
                time.sleep(300)  # killed here
    return result


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[4] not in ("hang", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    database, directory, lease_timeout, mode = argv[1], argv[2], float(argv[3]), argv[4]
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    app = make_app(database, directory, lease_timeout)
    print(f"worker pid={os.getpid()} mode={mode}", flush=True)
    if mode == "hang":
        store = FaultyStore(open_store(database), after={"append": _hang_after_handler})
        with use_store(app, store):
            app.run_worker(concurrency=1)
    else:
        app.run_worker(concurrency=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
