"""What every command shares: the parsed arguments and one client, opened on first use."""

from __future__ import annotations

import argparse
import os

import durable
from durable.cli.errors import USAGE, CliError
from durable.cli.loading import load_app
from durable.errors import StoreUnreachableError

__all__ = ["DEFAULT_URL", "Context"]

DEFAULT_URL = "sqlite:///durable.db"


class Context:
    """The arguments of one command and the client it uses (closed by ``main``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._client: durable.Client | None = None
        self._app: durable.App | None = None

    @property
    def explicit_url(self) -> str | None:
        """The database named by ``--database`` or ``DURABLE_DATABASE_URL``, if any."""
        return getattr(self.args, "database", None) or os.environ.get("DURABLE_DATABASE_URL")

    @property
    def url(self) -> str:
        """The database this command uses."""
        return self.explicit_url or DEFAULT_URL

    @property
    def creates(self) -> bool:
        """Whether this command may create the log (``worker``, ``start``); the others refuse
        a log that does not exist rather than create an empty one."""
        return bool(getattr(self.args, "creates", False))

    @property
    def json(self) -> bool:
        """Whether to print JSON."""
        return bool(getattr(self.args, "json", False))

    def app(self, spec: str) -> durable.App:
        """The App named ``MODULE:APP``, on ``--database`` when one is given."""
        if self._app is None:
            app = load_app(spec)
            if getattr(self.args, "database", None):
                app.database = self.args.database
            app._create_log = self.creates
            self._app = app
        return self._app

    def client(self) -> durable.Client:
        """A client of the log: the App's (``--app``) when given, else one without code."""
        if self._client is None:
            spec = getattr(self.args, "app", None)
            try:
                self._client = (
                    self.app(spec).client()
                    if spec
                    else durable.Client(self.url, create=self.creates)
                )
            except StoreUnreachableError:
                raise  # a good URL whose database is down: the database exit code
            except ValueError as exc:
                raise CliError(f"bad database URL: {exc}", USAGE) from None
        return self._client

    @property
    def urls(self) -> tuple[str, ...]:
        """Every database URL this command knows: their passwords never appear in output."""
        found = [self.url, os.environ.get("DURABLE_DATABASE_URL") or ""]
        if self._app is not None:
            found.append(self._app.database)
        return tuple(u for u in found if u)

    def close(self) -> None:
        """Close the client and the App opened for this command."""
        if self._client is not None:
            self._client.close()
        if self._app is not None:
            self._app.close()
