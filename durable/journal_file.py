"""Exported journals: one run of a log as a JSON document, and such a document read back.

``client.export_run(run_id)`` (``durable runs export ID``) writes the run's row and every
event of its journal; :func:`read_export` gives back, from the file, the same
:class:`~durable.log.store.RunRow` and :class:`~durable.log.store.JournalRow` values the
log gave, so that a replay of the file reads exactly what a replay of the log reads
(``durable.testing.assert_replays``). Each encoded value is kept as ``payload`` (base64 of
the stored msgpack bytes: what is read back) beside ``data`` (the same value decoded, for
people and diffs: never read back). The format is described in ``docs/testing.md``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from durable.errors import DurableError, RunNotFoundError
from durable.events import EventType
from durable.log.schema import SCHEMA_VERSION
from durable.log.store import JournalRow, RunRow, Store
from durable.states import Status

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ExportedRun",
    "JournalFileError",
    "dumps",
    "export_run",
    "read_export",
]

FORMAT = "durable-journal"
"""The value of an export's ``format`` key."""
FORMAT_VERSION = 1
"""The version of the export format this durable writes, and the newest it reads."""


class JournalFileError(DurableError, ValueError):
    """A file that is not a journal export this durable can read (the message names the
    file and, where one is at fault, the event)."""


@dataclass(frozen=True, slots=True)
class ExportedRun:
    """A journal export read back: the run's row and its journal, as the log gave them."""

    path: Path
    row: RunRow
    events: list[JournalRow]


# -- writing --------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _readable(raw: bytes) -> Any:
    """A stored msgpack value as JSON values (bytes as base64, instants as ISO text), or
    ``None`` where it does not decode or has no JSON form."""
    try:
        return msgspec.json.decode(msgspec.json.encode(msgspec.msgpack.decode(raw)))
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError, ValueError):
        return None


def _encoded(raw: bytes | None) -> dict[str, Any] | None:
    return None if raw is None else {"data": _readable(raw), "payload": _b64(raw)}


def _run_doc(row: RunRow) -> dict[str, Any]:
    return {
        "attempt": row.attempt,
        "created_at": row.created_at,
        "deadline_at": row.deadline_at,
        "epoch": row.lease_epoch,
        "error_message": row.error_message,
        "error_type": row.error_type,
        "finished_at": row.finished_at,
        "id": row.id,
        "input": _encoded(row.input),
        "last_seq": row.last_seq,
        "options": _encoded(row.options),
        "output": _encoded(row.output),
        "parent_id": row.parent_id,
        "priority": row.priority,
        "progress": row.progress,
        "queue": row.queue,
        "stage": row.stage,
        "started_at": row.started_at,
        "status": row.status.value,
        "steps_completed": row.steps_completed,
        "timeout": row.timeout,
        "updated_at": row.updated_at,
        "version": row.version,
        "workflow": row.workflow,
    }


def _event_doc(ev: JournalRow) -> dict[str, Any]:
    return {
        "at": ev.at,
        "attempt": ev.attempt,
        "data": _readable(ev.data),
        "epoch": ev.epoch,
        "name": ev.name,
        "payload": _b64(ev.data),
        "position": ev.position,
        "seq": ev.seq,
        "type": str(ev.type),
    }


def export_run(store: Store, run_id: str) -> dict[str, Any]:
    """The export document of ``run_id``: its row and its journal up to the row's
    ``last_seq``, read as one consistent state even while a worker appends to it.

    Raises:
        RunNotFoundError: no run has that id (or it was deleted while being read).
    """
    from durable import __version__

    row = store.get_run(run_id)
    if row is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    events = [ev for ev in store.read_journal(run_id) if ev.seq <= row.last_seq]
    if len(events) < row.last_seq:
        raise RunNotFoundError(f"run {run_id!r} was deleted while it was being exported")
    return {
        "durable_version": __version__,
        "events": [_event_doc(ev) for ev in events],
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run": _run_doc(row),
        "schema_version": SCHEMA_VERSION,
    }


def dumps(doc: dict[str, Any]) -> str:
    """An export document as the text of its file: indented, keys sorted, one final
    newline (the same run exports to the same text)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


# -- reading --------------------------------------------------------------------------------


class _Encoded(msgspec.Struct):
    payload: str
    data: Any = None


class _Run(msgspec.Struct):
    id: str
    workflow: str
    queue: str
    status: str
    input: _Encoded
    created_at: float
    last_seq: int
    epoch: int
    attempt: int = 1
    priority: int = 0
    output: _Encoded | None = None
    options: _Encoded | None = None
    error_type: str | None = None
    error_message: str | None = None
    parent_id: str | None = None
    version: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    timeout: float | None = None
    deadline_at: float | None = None
    steps_completed: int = 0
    progress: float | None = None
    stage: str | None = None


class _Event(msgspec.Struct):
    seq: int
    type: str
    epoch: int
    at: float
    payload: str
    position: int | None = None
    name: str | None = None
    attempt: int | None = None
    data: Any = None


class _Document(msgspec.Struct):
    run: _Run
    events: list[_Event]


def _document(path: Path) -> dict[str, Any]:
    """The file's JSON object, checked to be an export of a format and schema this durable
    reads."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise JournalFileError(f"{path}: not a journal export (not UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JournalFileError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            "a truncated or damaged export?"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise JournalFileError(
            f'{path}: not a journal export (it has no "format": {json.dumps(FORMAT)}; '
            "write one with `durable runs export ID -o FILE`)"
        )
    for key, newest, what in (
        ("format_version", FORMAT_VERSION, "journal format"),
        ("schema_version", SCHEMA_VERSION, "log schema"),
    ):
        found = doc.get(key)
        if isinstance(found, bool) or not isinstance(found, int) or found < 1:
            raise JournalFileError(f"{path}: {key!r} must be a whole number from 1, not {found!r}")
        if found > newest:
            raise JournalFileError(
                f"{path}: exported by a newer durable ({what} version {found}; this durable "
                f"reads up to {newest}): upgrade durable to replay it"
            )
    return doc


def _bytes(path: Path, text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise JournalFileError(f"{path}: {where}: 'payload' is not base64") from None


def _row(path: Path, run: _Run) -> RunRow:
    try:
        status = Status(run.status)
    except ValueError:
        raise JournalFileError(f"{path}: the run's status {run.status!r} is unknown") from None

    def raw(value: _Encoded | None, name: str) -> bytes | None:
        return None if value is None else _bytes(path, value.payload, f"the run's {name}")

    return RunRow(
        id=run.id,
        workflow=run.workflow,
        queue=run.queue,
        status=status,
        priority=run.priority,
        input=_bytes(path, run.input.payload, "the run's input"),
        output=raw(run.output, "output"),
        error_type=run.error_type,
        error_message=run.error_message,
        parent_id=run.parent_id,
        due_at=None,
        wake_at=None,
        waiting_for=None,
        deadline_at=run.deadline_at,
        timeout=run.timeout,
        lease_owner=None,
        lease_epoch=run.epoch,
        lease_expires_at=None,
        last_seq=run.last_seq,
        attempt=run.attempt,
        progress=run.progress,
        stage=run.stage,
        steps_completed=run.steps_completed,
        stalls=0,
        trace_context=None,
        created_at=run.created_at,
        updated_at=run.updated_at if run.updated_at is not None else run.created_at,
        finished_at=run.finished_at,
        started_at=run.started_at,
        options=raw(run.options, "options"),
        version=run.version,
    )


def _event(path: Path, run_id: str, expected_seq: int, ev: _Event) -> JournalRow:
    if ev.seq != expected_seq:
        raise JournalFileError(
            f"{path}: event {expected_seq} has seq {ev.seq}: the journal must hold every "
            "event from seq 1, in order"
        )
    try:
        type_ = EventType(ev.type)
    except ValueError:
        raise JournalFileError(
            f"{path}: event seq {ev.seq} has type {ev.type!r}, which this durable does not know"
        ) from None
    return JournalRow(
        run_id=run_id,
        seq=ev.seq,
        type=type_,
        position=ev.position,
        name=ev.name,
        attempt=ev.attempt,
        epoch=ev.epoch,
        at=ev.at,
        data=_bytes(path, ev.payload, f"event seq {ev.seq}"),
    )


def read_export(path: Path) -> ExportedRun:
    """The run and journal of an export file, exactly as the log held them.

    Raises:
        JournalFileError: the file is not valid JSON (truncated), not a journal export, of
            a newer format or schema version, or its run or events are malformed; the
            message names the file and, where one is at fault, the event's seq.
        OSError: the file cannot be read.
    """
    doc = _document(path)
    try:
        parsed = msgspec.convert(doc, _Document)
    except msgspec.ValidationError as exc:
        raise JournalFileError(f"{path}: not a valid journal export: {exc}") from None
    row = _row(path, parsed.run)
    events = [_event(path, row.id, i, ev) for i, ev in enumerate(parsed.events, start=1)]
    if len(events) != row.last_seq:
        raise JournalFileError(
            f"{path}: the run's last_seq is {row.last_seq} but the file holds "
            f"{len(events)} events: a cut or edited export?"
        )
    return ExportedRun(path, row, events)
