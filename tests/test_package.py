"""The package as users get it: the sdist and the wheel that ``python -m build`` makes.

The sources are copied to a temporary folder first, so that the build leaves nothing in the
work tree. The wheel is built from the sdist (as ``python -m build`` does by default), so a
file missing from either shows here: every module and package data file of ``durable/``,
``py.typed`` (the package is typed), the ``durable`` console script, and the metadata.
``.ci/run`` goes further: it installs the wheel into a fresh virtual environment and runs the
quickstart and ``durable --help`` with it.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from harness.processes import run

import durable

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "durable"


def _package_files() -> set[str]:
    """Every file of ``durable/`` that belongs in the package, as a path in the wheel."""
    out = set()
    for path in SOURCE.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            out.add(path.relative_to(ROOT).as_posix())
    return out


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the sdist), built from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(SOURCE, src / "durable", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    # The build sees this process's own PYTHONPATH, not the work tree put in front of it.
    argv = [sys.executable, "-m", "build", "--outdir", out, src]
    done = run(argv, cwd=src, env={"PYTHONPATH": os.environ.get("PYTHONPATH")}, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = list(out.glob("*.whl"))
    sdists = list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return wheels[0], sdists[0]


def test_the_wheel_holds_every_module_and_data_file(built: tuple[Path, Path]) -> None:
    names = _wheel_names(built[0])
    expected = _package_files()
    assert "durable/py.typed" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    subpackages = {p.parent.relative_to(ROOT).as_posix() for p in SOURCE.rglob("__init__.py")}
    assert {"durable", "durable/log", "durable/engine", "durable/cli"} <= subpackages
    for pkg in subpackages:
        assert f"{pkg}/__init__.py" in names, pkg


def test_the_wheel_holds_no_tests_benchmarks_or_stray_files(built: tuple[Path, Path]) -> None:
    tops = {n.split("/", 1)[0] for n in _wheel_names(built[0])}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"durable"}, sorted(tops)


def test_the_wheel_metadata_and_console_script(built: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(built[0]) as zf:
        info = next(n.split("/")[0] for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(f"{info}/METADATA").decode())
        scripts = zf.read(f"{info}/entry_points.txt").decode()
    assert meta["Name"] == "durable-pipelines"
    assert meta["Version"] == durable.__version__
    assert meta["Requires-Python"] == ">=3.11"
    assert meta.get_payload().lstrip().startswith("# durable"), "the README is the description"
    assert "durable = durable.cli:main" in scripts
    assert "[pytest11]\ndurable.testing.plugin = durable.testing.plugin" in scripts


def test_the_sdist_holds_every_module_and_the_readme(built: tuple[Path, Path]) -> None:
    _, sdist = built
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    missing = (_package_files() | {"pyproject.toml", "README.md"}) - names
    assert not missing, f"missing from the sdist: {sorted(missing)}"
