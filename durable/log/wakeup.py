"""Wake-ups between processes that share one SQLite file: a FIFO per listening worker.

SQLite has no ``LISTEN/NOTIFY``. Every worker that listens makes a FIFO (a named pipe) in a
folder of the temp dir named after the log file's real path; a process that commits something
a worker should see at once (a run started, signalled, resumed or made due) writes one byte to
each FIFO there. A sender never blocks: a full pipe already holds a wake-up, and a FIFO with
no reader left (its worker died) is removed. Only a wake-up travels this way, never data: the
worker then reads the log as usual, and its poll remains the safety net.

Where FIFOs do not exist (Windows), :func:`fifo_dir` is ``None`` and workers poll.

Watchers of journals (``client.watch``) have a folder of their own, :func:`watch_dir`, so that
an append does not wake the workers: after each commit that appended events, the writer's
:class:`FolderWaker` writes the ids of the runs it appended to into each FIFO there (one
line per id). The folder's listing is cached by its modification time, so that a commit
with nobody watching costs one ``stat`` of a missing folder.
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
import time
import uuid
from collections.abc import Callable, Iterable

__all__ = ["ALL", "FifoListener", "FolderWaker", "fifo_dir", "wake_all", "watch_dir"]

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


def watch_dir(db_path: str) -> str | None:
    """The folder of the journal watchers' FIFOs of the log at ``db_path`` (``None`` where
    there are none): beside the workers' folder, never the same one."""
    folder = fifo_dir(db_path)
    return None if folder is None else folder + "-watch"


ALL = ""
"""The payload that means "any run may have changed" (a reconnect, a lost or overlong
wake-up): every watcher reads its run again."""

_MAX_MESSAGE = select.PIPE_BUF if hasattr(select, "PIPE_BUF") else 512
"""The longest write a pipe takes whole (atomically) or not at all."""

_FULL_AFTER = 65536 - 2 * 4096
"""A reader that drains this much at once may have made a sender find its pipe full (and
drop its message): it then reads every run again."""

_STALE = 0.05
"""Seconds: a folder modified this recently may change again within its clock tick without
a new modification time, so its listing is not cached."""


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


class FolderWaker:
    """Writes messages into every FIFO of one folder after a commit; the folder's listing
    is cached by its modification time (re-read only while it is younger than a clock
    tick), so that the cost when nobody listens is one failed ``stat``."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._mtime = -1
        self._names: list[str] = []

    def _fifos(self) -> list[str]:
        try:
            st = os.stat(self.folder)
        except OSError:
            return []
        with self._lock:
            if st.st_mtime_ns == self._mtime:
                return self._names
        if not _own_folder(self.folder):
            return []
        try:
            names = [
                os.path.join(self.folder, n)
                for n in os.listdir(self.folder)
                if n.endswith(".fifo")  # a .tmp one reads the log after it is set up
            ]
        except OSError:
            return []
        with self._lock:
            # Cached only if no change within the same clock tick can follow unseen.
            young = time.time() - st.st_mtime_ns / 1e9 < _STALE
            self._mtime, self._names = (-1 if young else st.st_mtime_ns), names
        return names

    def wake(self, run_ids: Iterable[str]) -> None:
        """Tell every listener that the journals of ``run_ids`` grew. Never raises (it runs
        after a commit, which a failed wake-up must not undo in its caller's eyes)."""
        paths = self._fifos()
        if not paths:
            return
        ids = sorted(set(run_ids))
        msg = "".join(f"{i}\n" for i in ids).encode()
        if len(msg) > _MAX_MESSAGE or any("\n" in i for i in ids):
            msg = b"\n"  # ALL: an empty line
        for path in paths:
            _wake_one(path, msg)


def _wake_one(path: str, msg: bytes = b"w") -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        # No reader: its listener is gone; a ``.tmp`` one is being set up (it opens it
        # for reading before renaming it), and is left alone.
        if exc.errno == errno.ENXIO and path.endswith(".fifo"):
            with contextlib.suppress(OSError):
                os.unlink(path)
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, msg)
    except OSError:
        pass  # full (wake-ups are pending already), or gone meanwhile
    finally:
        os.close(fd)


class FifoListener:
    """One listener's FIFO, read by a thread that calls ``on_notify("")`` per wake-up.

    With ``lines``, the FIFO carries :class:`FolderWaker` messages: ``on_notify`` gets the
    run ids read at once, one per line, or :data:`ALL`.
    """

    def __init__(
        self, folder: str, on_notify: Callable[[str], None], *, lines: bool = False
    ) -> None:
        self._lines = lines
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
            payload = self._drain() if self._lines else self._read_one()
            if payload is None:
                continue
            try:
                self._on_notify(payload)
            except Exception:
                log.exception("a wake-up handler failed")

    def _read_one(self) -> str | None:
        try:
            os.read(self._rfd, 4096)
        except BlockingIOError:
            return None
        return ALL

    def _drain(self) -> str | None:
        """Every message waiting: the distinct run ids, or ``ALL``."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self._rfd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            return None
        ids = {line for line in data.decode(errors="replace").split("\n") if line}
        if len(data) >= _FULL_AFTER or b"\n\n" in b"\n" + data:
            return ALL
        return "\n".join(sorted(ids))

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
