"""``durable new NAME``: write a small project of durable workflows, ready to test and deploy.

The files come from the templates in ``templates/new`` (package data), with ``{{name}}``,
``{{dist_name}}`` and ``{{durable_version}}`` filled in. Every file is rendered before the
first is written, and a refused or failed command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shutil
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

from durable.cli.context import Context
from durable.cli.errors import USAGE, CliError

__all__ = ["FILES", "check_name", "new", "register", "render"]

FILES: tuple[tuple[str, str], ...] = (
    ("app.py.tmpl", "{name}/app.py"),
    ("init.py.tmpl", "{name}/__init__.py"),
    ("test_app.py.tmpl", "tests/test_app.py"),
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("Dockerfile.tmpl", "Dockerfile"),
    ("dockerignore.tmpl", ".dockerignore"),
    ("README.md.tmpl", "README.md"),
)
"""(template, path in the project) of every file ``durable new`` writes."""

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_TAKEN = frozenset({"durable", "tests", "test"})


def check_name(name: str) -> str:
    """``name`` if it can be the project's package (a lowercase Python identifier that is no
    keyword and does not shadow ``durable``, the tests or the standard library).

    Raises:
        CliError: it cannot, with what to write instead when that is clear.
    """
    hint = ""
    if re.fullmatch(r"[A-Za-z0-9_-]+", name) and not name[:1].isdigit():
        fixed = name.lower().replace("-", "_")
        if fixed != name and _NAME.match(fixed) and _free(fixed):
            hint = f" (try {fixed!r})"
    if not _NAME.match(name):
        raise CliError(
            f"the project's name {name!r} must be a Python package name: lowercase letters, "
            f"digits and _, not starting with a digit{hint}",
            USAGE,
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise CliError(f"the project's name {name!r} is a Python keyword", USAGE)
    if name in _TAKEN or name in sys.stdlib_module_names:
        raise CliError(
            f"the project's name {name!r} would shadow the module {name!r}: choose another",
            USAGE,
        )
    return name


def _free(name: str) -> bool:
    """``name`` is no keyword and shadows no module (a hint must be a name that works)."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return False
    return name not in _TAKEN and name not in sys.stdlib_module_names


def render(name: str) -> dict[str, str]:
    """``{path in the project: text}`` of every file, for the package name ``name``."""
    from durable import __version__

    values = {
        "name": name,
        "dist_name": name.replace("_", "-").strip("-") or name,
        "durable_version": __version__,
    }
    folder = resources.files("durable.cli").joinpath("templates", "new")
    out: dict[str, str] = {}
    for template, target in FILES:
        text = folder.joinpath(template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out[target.format(name=name)] = text
    return out


def _target(name: str, directory: str | None) -> Path:
    path = Path(directory) if directory else Path(name)
    if path.exists() and not path.is_dir():
        raise CliError(f"{str(path)!r} exists and is not a folder: nothing written", USAGE)
    if path.is_dir() and any(path.iterdir()):
        raise CliError(
            f"the folder {str(path)!r} is not empty: nothing written "
            "(choose another --dir, or empty it first)",
            USAGE,
        )
    return path


def new(ctx: Context) -> int:
    """``new``: write the project, then say what to do next."""
    name = check_name(ctx.args.name)
    root = _target(name, ctx.args.dir)
    files = render(name)
    existed = root.exists()
    try:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        if existed:
            for child in root.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(root, ignore_errors=True)
        raise CliError(f"cannot write the project into {str(root)!r}: {exc}") from None
    print(f"wrote the project {name!r} into {root}:")
    for rel in files:
        print(f"  {rel}")
    image = name.replace("_", "-")
    steps = [
        (f"cd {root}", ""),
        ("pip install -e '.[test]' && pytest", "runs the workflow on a temporary log"),
        (f"durable worker {name}.app:app", "a worker on $DURABLE_DATABASE_URL"),
        (f"docker build -t {image} .", "the worker's image"),
    ]
    width = max(len(cmd) for cmd, _ in steps)
    print("\nnext:")
    for cmd, why in steps:
        print(f"  {cmd:<{width}}  # {why}" if why else f"  {cmd}")
    return 0


def register(sub: Any) -> None:
    """Add the ``new`` sub-command to the parser's sub-commands ``sub``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "new",
        help="write a new project: an App, a test, a Dockerfile for its worker",
        description=textwrap.fill(
            "Write a small project of durable workflows into DIR (default: ./NAME): the "
            "package NAME with NAME/app.py (an App, a workflow of two stages, its steps), "
            "tests/test_app.py (runs the workflow on a temporary SQLite log with pytest), a "
            "Dockerfile for a worker (python:3.11-slim; runs `durable worker NAME.app:app` on "
            "the log named by $DURABLE_DATABASE_URL), a pyproject.toml and a README. Refuses "
            "a folder that is not empty; writes nothing then.",
            88,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="the project's package name: lowercase letters, digits and _ (e.g. shop_worker)",
    )
    p.add_argument("--dir", metavar="DIR", help="the folder to write into (default: ./NAME)")
    p.set_defaults(handler=new, creates=False)
