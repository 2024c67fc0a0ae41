"""Exit codes of the ``durable`` command, and how errors become one line and a code."""

from __future__ import annotations

import durable

__all__ = ["EXIT_CODES", "CliError", "exit_code_for"]

OK = 0
FAILED = 1
USAGE = 2
NOT_FOUND = 3
CANCELLED = 4
NONDETERMINISM = 5
DATABASE = 6
TIMEOUT = 7
INTERRUPTED = 130

EXIT_CODES = (
    (OK, "success (a waited or watched run completed)"),
    (FAILED, "a waited, watched or replayed run failed, check: a run would fail, or another error"),
    (USAGE, "usage: bad arguments, bad JSON, bad database URL, bad MODULE:APP"),
    (NOT_FOUND, "no run with that id or schedule of that name, or an unregistered workflow"),
    (CANCELLED, "a waited or watched run was cancelled"),
    (NONDETERMINISM, "replay, check: the code no longer matches a run's journal (it would block)"),
    (DATABASE, "the database cannot be reached, or is not a durable log"),
    (TIMEOUT, "--timeout passed before the run finished"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)
"""Every exit code with its meaning, as ``--help`` prints them."""


class CliError(Exception):
    """An error to print as one line, with the exit code to return."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an exception raised while a command ran."""
    if isinstance(exc, CliError):
        return exc.code
    for types, code in (
        (
            (durable.RunNotFoundError, durable.ScheduleNotFoundError, durable.UnknownWorkflowError),
            NOT_FOUND,
        ),
        ((durable.RunCancelledError,), CANCELLED),
        ((durable.NonDeterminismError,), NONDETERMINISM),
        ((durable.StoreError, durable.LogSchemaError), DATABASE),
        ((TimeoutError,), TIMEOUT),
        ((durable.SerializationError, durable.PayloadTooLargeError), USAGE),
        ((durable.IdConflictError,), USAGE),
    ):
        if isinstance(exc, types):
            return code
    return FAILED
