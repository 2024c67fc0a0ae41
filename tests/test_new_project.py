"""``durable new NAME``: the project it writes runs its own test as generated (installing
nothing), its Dockerfile runs a worker on a slim official Python image, and bad names or a
folder that is not empty are refused with one line, exit 2 and nothing written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from harness.processes import Finished, run

from durable.cli.new import FILES

COMMAND = [sys.executable, "-m", "durable.cli"]


def durable_new(*args: str, cwd: Path) -> Finished:
    return run([*COMMAND, "new", *args], cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project generated once for this module: ``shop_worker`` in ``./shop``."""
    here = tmp_path_factory.mktemp("new")
    done = durable_new("shop_worker", "--dir", "shop", cwd=here)
    assert done.returncode == 0, done.describe()
    assert "durable worker shop_worker.app:app" in done.stdout
    return here / "shop"


def test_the_project_holds_every_file(project: Path) -> None:
    written = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert written == {target.format(name="shop_worker") for _, target in FILES}
    for path in project.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(encoding="utf-8"), path


def test_the_generated_test_passes_as_generated(project: Path) -> None:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    done = run(argv, cwd=project, timeout=120)
    assert done.returncode == 0, done.describe()
    assert "1 passed" in done.stdout, done.describe()


def test_the_dockerfile_runs_a_worker_on_a_slim_official_python_image(project: Path) -> None:
    text = (project / "Dockerfile").read_text(encoding="utf-8")
    instructions = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert re.fullmatch(r"FROM python:3\.1[1-9]-slim", instructions[0]), instructions[0]
    assert sum(ln.startswith("FROM ") for ln in instructions) == 1
    assert re.search(r"^RUN pip install \.", text, re.M), text
    assert "COPY shop_worker ./shop_worker" in text
    assert "DURABLE_DATABASE_URL" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the worker runs as root"
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None, text
    assert cmd.group(1).startswith('["durable", "worker", "shop_worker.app:app"')
    assert "STOPSIGNAL SIGTERM" in text


def test_the_project_installs_durable_and_its_package(project: Path) -> None:
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert 'name = "shop-worker"' in text
    assert re.search(r'"durable-pipelines>=\d', text)
    assert 'packages = ["shop_worker"]' in text
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "durable worker shop_worker.app:app" in readme and "docker build" in readme


def test_a_folder_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    done = durable_new("shop", "--dir", "busy", cwd=tmp_path)
    assert done.returncode == 2, done.describe()
    assert done.stderr.startswith("durable: the folder 'busy' is not empty"), done.stderr
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    (tmp_path / "afile").write_text("x")
    done = durable_new("shop", "--dir", "afile", cwd=tmp_path)
    assert done.returncode == 2 and "not a folder" in done.stderr, done.describe()


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = durable_new("shop", "--dir", "empty", cwd=tmp_path)
    assert done.returncode == 0, done.describe()
    assert (tmp_path / "empty" / "shop" / "app.py").is_file()


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("My-Worker", "try 'my_worker'"),
        ("9lives", "not starting with a digit"),
        ("shop.worker", "must be a Python package name"),
        ("class", "is a Python keyword"),
        ("durable", "would shadow the module 'durable'"),
        ("json", "would shadow the module 'json'"),
    ],
)
def test_bad_names_are_refused(name: str, says: str, tmp_path: Path) -> None:
    done = durable_new(name, cwd=tmp_path)
    assert done.returncode == 2, done.describe()
    assert done.stderr.startswith("durable: ") and says in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_hint_is_only_a_name_that_works(tmp_path: Path) -> None:
    hinted = durable_new("My-Worker", cwd=tmp_path)
    assert "(try 'my_worker')" in hinted.stderr, hinted.stderr
    for name in ("Class", "JSON"):  # lowercased, a keyword or a module: no hint
        done = durable_new(name, cwd=tmp_path)
        assert done.returncode == 2 and "(try" not in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_explains_the_command(tmp_path: Path) -> None:
    done = run([*COMMAND, "new", "--help"], cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.describe()
    for word in ("NAME", "--dir", "Dockerfile", "durable worker", "not", "empty"):
        assert word in done.stdout, word
    top = run([*COMMAND, "--help"], cwd=tmp_path, timeout=60)
    assert re.search(r"^\s+new\s+write a new project", top.stdout, re.M), top.stdout
