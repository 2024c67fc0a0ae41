"""Wake-ups between processes that share one SQLite file: a FIFO per listening worker.

SQLite has no ``LISTEN/NOTIFY``. Every worker that listens makes a FIFO (a named pipe) in a
folder of the temp dir named after the log file's real path; a process that commits something
a worker should see at once (a run started, signalled, resumed or made due) writes one byte to
each FIFO there. A sender never blocks: a full pipe already holds a wake-up, and a FIFO with
no reader left (its worker died) is removed. Only a wake-up travels this way, never data: the
worker then reads the log as usual, and its poll remains the safety net.

Where FIFOs do not exist (Windows), :func:`fifo_dir` is ``None`` and workers poll.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import select
import tempfile
import threading
import uuid
from collections.abc import Callable

__all__ = ["FifoListener", "fifo_dir", "wake_all"]

log = logging.getLogger("durable.log.wakeup")


def fifo_dir(db_path: str) -> str | None:
    """The folder of the FIFOs of the log at ``db_path`` (``None`` where there are none)."""
    if not hasattr(os, "mkfifo"):
        return None
    key = hashlib.sha1(os.path.realpath(db_path).encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"durable-wake-{key}")


def wake_all(folder: str) -> None:
    """Write a wake-up into every FIFO of ``folder``; remove those nobody reads any more."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".fifo"):
            continue
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader: its worker is gone
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    os.rmdir(folder)  # it was the last one
            continue
        try:
            os.write(fd, b"w")
        except BlockingIOError:
            pass  # full: wake-ups are pending already
        except OSError:
            pass
        finally:
            os.close(fd)


class FifoListener:
    """One worker's FIFO, read by a thread that calls ``on_notify("")`` per wake-up."""

    def __init__(self, folder: str, on_notify: Callable[[str], None]) -> None:
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
        os.mkfifo(tmp, 0o600)
        # Opened before it gets a visible name, so that no sender takes it for a dead one.
        self._rfd = os.open(tmp, os.O_RDONLY | os.O_NONBLOCK)
        self._wfd = os.open(tmp, os.O_WRONLY | os.O_NONBLOCK)  # never EOF while we read
        self.path = tmp[: -len(".tmp")] + ".fifo"
        os.rename(tmp, self.path)
        self._on_notify = on_notify
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="durable-wakeup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._rfd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                os.read(self._rfd, 4096)
            except BlockingIOError:
                continue
            try:
                self._on_notify("")
            except Exception:
                log.exception("a wake-up handler failed")

    def stop(self) -> None:
        """Stop listening and remove the FIFO."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.path))  # the last listener of this log
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        for fd in (self._rfd, self._wfd, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
