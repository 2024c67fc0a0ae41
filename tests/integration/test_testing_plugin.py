"""The pytest plugin of ``durable.testing``: the ``durable_env`` fixture, in a pytest run of
its own (a subprocess), as a user's test suite would use it."""

from __future__ import annotations

import sys
import textwrap
import tomllib
from pathlib import Path

from harness.processes import ROOT, run

USER_TESTS = textwrap.dedent(
    """
    import durable
    from durable import App

    app = App("shop", database="sqlite:///never-opened.db")
    kept = {}


    @app.workflow()
    def checkout(order: str) -> str:
        durable.sleep(30 * 86400)
        return f"shipped {order}"


    def test_checkout(durable_env):
        t = durable_env(app)
        assert t.client.start(checkout, "o-1").result(timeout=10) == "shipped o-1"
        kept["env"] = t


    def test_the_env_was_closed_at_the_end_of_the_test(durable_env):
        assert kept["env"]._client is None
        two = durable_env(app), durable_env(app)
        assert two[0].database != two[1].database
    """
)


def test_the_durable_env_fixture_in_a_users_suite(tmp_path: Path) -> None:
    (tmp_path / "test_shop.py").write_text(USER_TESTS)
    # The plugin named explicitly, and entry points off: the installed copy of the package
    # may not be this tree's (an editable install elsewhere), and its entry point with it.
    done = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "durable.testing.plugin",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path / "test_shop.py"),
        ],
        cwd=tmp_path,
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.describe()
    assert "2 passed" in done.stdout, done.describe()
    assert not (tmp_path / "never-opened.db").exists()


def test_the_plugin_is_registered_by_an_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"durable": "durable.testing.plugin"}
