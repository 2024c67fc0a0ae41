"""The ``durable`` command line (the console script is reserved; its commands come later).

Today it answers ``--help`` and ``--version``; ``worker``, ``start``, ``runs`` and the other
commands of API.md belong to the command-line issue and are refused with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``durable`` console script; returns the exit code."""
    from durable import __version__

    parser = argparse.ArgumentParser(
        prog="durable",
        description=(
            "Manage durable runs from a shell. This version has no commands yet: use the "
            "Python API (App, Client) documented in docs/concepts.md."
        ),
    )
    parser.add_argument("--version", action="version", version=f"durable {__version__}")
    parser.add_argument("command", nargs="?", help="not available in this version")
    args, _rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    print(
        f"durable: the {args.command!r} command is not available in this version", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
