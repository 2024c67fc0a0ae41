"""``main``: parse, run one command, turn any error into one line and an exit code."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Sequence

from durable.cli.context import Context
from durable.cli.errors import INTERRUPTED, exit_code_for
from durable.cli.parser import build_parser
from durable.redact import scrub

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``durable`` console script; returns the exit code.

    Errors are printed as one line on stderr (``DURABLE_DEBUG=1`` adds the traceback), with
    the password of any database URL hidden.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    ctx = Context(args)
    try:
        code: int = args.handler(ctx)
        return code
    except KeyboardInterrupt:
        print("durable: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        if os.environ.get("DURABLE_DEBUG"):
            print(scrub(traceback.format_exc(), *ctx.urls), end="", file=sys.stderr)
        message = scrub(str(exc) or type(exc).__name__, *ctx.urls)
        print(f"durable: {message.splitlines()[0]}", file=sys.stderr)
        return exit_code_for(exc)
    finally:
        with contextlib.suppress(Exception):  # closing must not hide the command's outcome
            ctx.close()
