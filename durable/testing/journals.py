"""``assert_replays(app, path)``: exported journals (golden journals) still replay against
today's code of an App.

Each export (``durable runs export ID -o FILE``) is read back into the run's row and its
journal as the log held them, and replayed by the engine's own replay
(:func:`~durable.engine.replaying.check_replay`, what ``client.replay`` uses), executing
no step and writing nothing. The replay reads nothing else: a child run that the journal
shows started but not ended is taken as still running (the export holds one run), and the
App's own log is never opened (an empty temporary log answers the replay's look-ups).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from durable.engine.replay import HINT, Journal
from durable.engine.replaying import ReplayVerdict, check_replay
from durable.errors import CorruptJournalError
from durable.journal_file import ExportedRun, JournalFileError, read_export
from durable.log import open_store
from durable.log.store import Store
from durable.states import Status

if TYPE_CHECKING:
    from durable.app import App

__all__ = ["assert_replays", "journal_files"]


def journal_files(path: str | os.PathLike[str]) -> list[Path]:
    """The export files ``path`` names: itself if it is a file, else every ``*.json`` under
    it (recursively), sorted.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        JournalFileError: a folder without any ``*.json`` file.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"assert_replays: {p} does not exist (no file or folder)")
    found = sorted(f for f in p.rglob("*.json") if f.is_file())
    if not found:
        raise JournalFileError(
            f"{p}: holds no exported journal (*.json): a check of no journal checks nothing; "
            "export runs into it with `durable runs export ID -o FILE`"
        )
    return found


@contextmanager
def _scratch_log() -> Iterator[Store]:
    """An empty temporary log, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="durable-replay-") as folder:
        store = open_store("sqlite:///" + os.path.join(folder, "scratch.db"), synchronous="NORMAL")
        try:
            yield store
        finally:
            store.close()


def _short(text: str) -> str:
    """A mismatch's message without the sentence that ends every one."""
    return text.replace(" " + HINT, "").replace(HINT, "").strip()


def _problem(app: App, export: ExportedRun, store: Store) -> str | None:
    """Why ``export`` does not replay against ``app``'s code, or ``None`` if it does."""
    row = export.row
    where = f"{export.path}: run {row.id!r} of workflow {row.workflow!r}"
    wf = app.registry.workflows.get(row.workflow)
    if wf is None:
        return f"{where}: App {app.name!r} registers no workflow of that name (renamed or removed?)"
    try:
        journal = Journal(row.id, export.events)
    except CorruptJournalError as exc:
        raise JournalFileError(f"{export.path}: {exc}") from None
    verdict: ReplayVerdict = check_replay(
        wf, row, journal, registry=app.registry, codec=app.codec, store=store
    )
    if verdict.mismatch is not None:
        m = verdict.mismatch
        if m.position is not None and m.called and m.recorded:
            return (
                f"{where}, at position {m.position}: the code calls {m.called}, "
                f"the journal holds {m.recorded}"
            )
        return f"{where}: {_short(str(m))}"
    failure = verdict.failure
    if failure is None:
        return None
    if row.status is Status.FAILED and failure.error_type == row.error_type:
        return None  # it fails again, as the run did
    raised = f"the replayed code raises {failure.error_type}: {failure.error_message}"
    if row.status is Status.FAILED:
        return f"{where}: {raised}, where the run failed with {row.error_type}"
    return f"{where}: {raised}, where the run is {row.status.value}"


def assert_replays(app: App, path: str | os.PathLike[str]) -> int:
    """Check that every journal exported under ``path`` still replays against today's code
    of ``app``; return how many were checked.

    ``path`` is an export file or a folder of them (every ``*.json`` under it, recursively).
    Each run is replayed as a worker of this code would replay it, executing no step and
    writing nothing; ``app``'s own log is not opened.

    Raises:
        AssertionError: some journals do not replay; the message lists each: the file, the
            run id, the workflow, and the position, what the code calls there and what the
            journal holds (or why else: a workflow the App does not register, recorded
            arguments that no longer decode, a replay that raises where the run did not).
        JournalFileError: a file is not a journal export this durable reads (truncated,
            not an export, of a newer format or schema version), or the folder holds none.
        FileNotFoundError: ``path`` does not exist.
        TypeError: ``app`` is not a :class:`durable.App`.
    """
    __tracebackhide__ = True  # pytest: the report is the message, not this function's frames
    from durable.app import App

    if not isinstance(app, App):
        raise TypeError(f"assert_replays takes a durable.App, not {type(app).__name__}")
    try:
        exports = [read_export(f) for f in journal_files(path)]
        with _scratch_log() as store:
            problems = [p for e in exports if (p := _problem(app, e, store)) is not None]
    except (JournalFileError, FileNotFoundError) as exc:
        raise exc.with_traceback(None) from None
    if problems:
        k, n = len(problems), len(exports)
        lines = [
            f"{k} of {n} exported journal{'s' if n > 1 else ''} no longer "
            f"replay{'s' if k == 1 else ''} against the code of App {app.name!r}:",
            *(f"- {p}" for p in problems),
            "A worker of this code would not finish such runs: keep the recorded calls, or "
            "put the change behind durable.patched(change_id) so that runs recorded before "
            "it replay the old code.",
        ]
        raise AssertionError("\n".join(lines))
    return len(exports)
