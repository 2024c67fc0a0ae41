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
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable

__all__ = ["FifoListener", "fifo_dir", "wake_all"]

log = logging.getLogger("durable.log.wakeup")


def fifo_dir(db_path: str) -> str | None:
    """The folder of the FIFOs of the log at ``db_path`` (``None`` where there are none).

    One per user and log (processes of different users sharing a log file poll instead): a
    folder of the temp dir that only its owner may enter, named after the file's real path.
    """
    if not hasattr(os, "mkfifo") or not hasattr(os, "getuid"):
        return None
    key = hashlib.sha1(os.path.realpath(db_path).encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"durable-wake-{os.getuid()}-{key}")


def _own_folder(folder: str) -> bool:
    """Whether ``folder`` is a real folder of this user that nobody else may write to."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def wake_all(folder: str) -> None:
    """Write a wake-up into every FIFO of ``folder``; remove those nobody reads any more.

    Never raises: it runs after a commit, which a failed wake-up must not undo in the eyes
    of its caller (the workers' poll is the safety net).
    """
    try:
        if not _own_folder(folder):
            return
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.endswith((".fifo", ".tmp")):
            _wake_one(os.path.join(folder, name))


def _wake_one(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader: its worker is gone
            with contextlib.suppress(OSError):
                os.unlink(path)
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b"w")
    except OSError:
        pass  # full (wake-ups are pending already), or gone meanwhile
    finally:
        os.close(fd)


class FifoListener:
    """One worker's FIFO, read by a thread that calls ``on_notify("")`` per wake-up."""

    def __init__(self, folder: str, on_notify: Callable[[str], None]) -> None:
        tmp = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
        for _ in range(3):  # the last listener may remove the folder meanwhile
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
            if not _own_folder(folder):
                raise PermissionError(f"{folder} is not a private folder of this user")
            try:
                os.mkfifo(tmp, 0o600)
                break
            except FileNotFoundError:
                continue
        else:
            raise FileNotFoundError(folder)
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
