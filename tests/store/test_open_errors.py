"""A log that cannot be opened is one ``StoreOpenError`` whose message names the URL (its
password hidden) or the file, and the cause, whichever way it is opened (``open_store``,
``durable.Client``, ``App(database=...)``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.errors import DurableError, StoreError, StoreOpenError, StoreUnreachableError
from durable.log import open_store
from durable.redact import redact_url, scrub

SECRET = "hunter22"
POSTGRES_URL_ENV = "DURABLE_TEST_POSTGRES_URL"


def _via_open_store(url: str) -> Any:
    return open_store(url).close()


def _via_client(url: str) -> Any:
    return durable.Client(url).close()


def _via_app(url: str) -> Any:
    app = durable.App("opening", database=url)
    try:
        return app.store
    finally:
        app.close()


OPENERS = [_via_open_store, _via_client, _via_app]


def _refused(opener: Callable[[str], Any], url: str) -> str:
    with pytest.raises(StoreOpenError) as info:
        opener(url)
    err = info.value
    assert isinstance(err, StoreError) and isinstance(err, DurableError)
    assert isinstance(err, ValueError)  # as a bad URL always was
    message = str(err)
    assert SECRET not in message
    assert "\n" not in message and len(message) < 400, message  # one line, not a traceback
    assert "sqlalche.me" not in message
    return message


@pytest.mark.parametrize("opener", OPENERS)
def test_an_unsupported_scheme(opener: Callable[[str], Any]) -> None:
    message = _refused(opener, f"mysql://user:{SECRET}@db.example/shop")
    assert "mysql://user:***@db.example/shop" in message
    assert "unsupported database 'mysql'" in message


@pytest.mark.parametrize("opener", OPENERS)
def test_a_string_that_is_no_url(opener: Callable[[str], Any]) -> None:
    assert "not a database URL: 'not a url'" in _refused(opener, "not a url")


@pytest.mark.parametrize("opener", OPENERS)
def test_an_unreachable_server(opener: Callable[[str], Any]) -> None:
    message = _refused(opener, f"postgresql://user:{SECRET}@127.0.0.1:1/shop")
    assert message.startswith("cannot open the log at postgresql://user:***@127.0.0.1:1/shop: ")
    assert "refused" in message.lower(), message


@pytest.mark.parametrize("opener", OPENERS)
def test_a_sqlite_file_in_a_missing_folder(opener: Callable[[str], Any], tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "x.db"
    message = _refused(opener, f"sqlite:///{path}")
    assert message == (
        f"cannot open the SQLite log {path}: its folder {path.parent} does not exist"
    )
    assert not path.parent.exists()


@pytest.mark.parametrize("opener", OPENERS)
def test_a_password_that_does_not_parse(opener: Callable[[str], Any]) -> None:
    # An unencoded '@' in the password: the URL would name the host "ss@127.0.0.1".
    message = _refused(opener, f"postgresql://user:{SECRET}@x@127.0.0.1:1/shop")
    assert "postgresql://user:***@127.0.0.1:1/shop" in message
    assert "percent-encode" in message
    assert "x@127" not in message


@pytest.mark.parametrize("opener", OPENERS)
def test_a_port_that_is_no_number(opener: Callable[[str], Any]) -> None:
    message = _refused(opener, f"postgresql://user:{SECRET}@127.0.0.1:port/shop")
    assert "postgresql://user:***@127.0.0.1:port/shop" in message


def test_an_in_memory_sqlite_database() -> None:
    assert "in-memory" in _refused(_via_open_store, "sqlite://")


def test_a_refused_login_names_the_cause_and_hides_the_password() -> None:
    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        pytest.skip(f"Postgres: set {POSTGRES_URL_ENV} to run the Postgres tests")
    import sqlalchemy as sa

    u = sa.make_url(server)
    bad = u.set(username="durable_no_such_user", password=SECRET).render_as_string(False)
    message = _refused(_via_open_store, bad)
    assert "durable_no_such_user:***@" in message


def test_redact_url() -> None:
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://h/db?options=-csearch_path%3Dx") == (
        "postgresql://h/db?options=-csearch_path%3Dx"
    )
    assert redact_url("postgresql://u:p@s/s@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert redact_url("sqlite:///tmp/a@b/x.db") == "sqlite:///tmp/a@b/x.db"
    assert redact_url("not a url") == "not a url"


def test_scrub_hides_the_password_in_a_drivers_message() -> None:
    url = f"postgresql://u:{SECRET}@h/db"
    assert scrub(f"failed for {url} with {SECRET}", url) == (
        "failed for postgresql://u:***@h/db with ***"
    )


def test_an_unreachable_server_is_told_apart_from_a_bad_url() -> None:
    """A well-formed URL whose server is down is a ``StoreUnreachableError`` (worth a retry;
    the CLI's database exit code), still a ``StoreOpenError``; a malformed one is not."""
    with pytest.raises(StoreUnreachableError) as info:
        durable.Client("postgresql://app:pw@127.0.0.1:1/shop")
    assert "pw" not in str(info.value).replace("***", "")
    with pytest.raises(StoreOpenError) as bad:
        durable.Client("nonsense://")
    assert not isinstance(bad.value, StoreUnreachableError)
