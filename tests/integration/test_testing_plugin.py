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


def _pytest(tmp_path: Path, *args: str, env: dict[str, str | None], path: list[Path]) -> str:
    done = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            *args,
            str(tmp_path / "test_shop.py"),
        ],
        cwd=tmp_path,
        path=path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.describe()
    assert "2 passed" in done.stdout, done.describe()
    return done.stdout


def test_the_durable_env_fixture_named_explicitly(tmp_path: Path) -> None:
    (tmp_path / "test_shop.py").write_text(USER_TESTS)
    # Entry points off: the plugin loads because it is named.
    _pytest(
        tmp_path,
        "-p",
        "durable.testing.plugin",
        path=[],
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert not (tmp_path / "never-opened.db").exists()


def _entry_points() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    table: dict[str, str] = project["entry-points"]["pytest11"]
    return table


def test_the_durable_env_fixture_through_the_declared_entry_point(tmp_path: Path) -> None:
    """The entry point as pyproject declares it, installed as distribution metadata on the
    child's path (the package installed in the environment may be another tree's), loaded
    by pytest on its own; and once only beside ``-p`` and ``pytest_plugins``."""
    (tmp_path / "test_shop.py").write_text(USER_TESTS)
    site = tmp_path / "site"
    info = site / "durable_plugin_check-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: durable-plugin-check\nVersion: 0\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in _entry_points().items())
    (info / "entry_points.txt").write_text(f"[pytest11]\n{lines}")
    auto = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": None}
    _pytest(tmp_path, path=[site], env=auto)
    _pytest(tmp_path, "-p", "durable.testing.plugin", path=[site], env=auto)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["durable.testing.plugin"]\n')
    _pytest(tmp_path, path=[site], env=auto)


def test_the_plugin_is_registered_by_an_entry_point() -> None:
    assert _entry_points() == {"durable.testing.plugin": "durable.testing.plugin"}
