"""The documentation as users read it: complete, and free of what only this project's own
workplace knows.

- ``docs/api.md`` names every name of ``durable.__all__`` and, in the section of each public
  class, every public method and attribute of that class: a name added to the code without
  its line in the reference fails here.
- Nothing a user reads (README.md, CONTRIBUTING.md, CHANGELOG.md, docs/, examples/, the
  source text of the ``durable`` package, and ``durable --help`` with every command's
  ``--help``) points at the project's private design folder, a path of the machine it was
  written on, or an internal issue number.
- Every relative link between the pages leads to a file that exists.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import inspect
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.processes import run

import durable
from durable.cli.main import main as cli_main
from durable.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"

# -- the reference covers the public surface -------------------------------------------------

CLASSES: list[type] = [
    durable.App,
    durable.EmbeddedWorker,
    durable.Client,
    durable.AsyncClient,
    durable.RunHandle,
    durable.AsyncRunHandle,
    durable.RunInfo,
    durable.LogEvent,
    durable.Status,
    durable.CancelOutcome,
    durable.EventType,
    durable.WorkerEvent,
    durable.WorkerEventInfo,
    durable.WorkerInfo,
    durable.ScheduleInfo,
    durable.Retry,
    durable.Consumer,
    durable.QueueConfig,
    durable.Retention,
    durable.WorkflowStats,
    durable.CheckReport,
    durable.RunCheck,
    durable.WorkflowCheck,
    durable.SequenceFailure,
    durable.StepOutputs,
    durable.ChildHandle,
]
"""The classes whose members the reference lists, each in a section headed by its name."""

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_CODE = re.compile(r"```.*?```|`(?:[^`\n]|\n(?!\s*\n))+`", re.S)
"""Code blocks, and code spans (which may run over a line break, not over a blank line)."""


def _sections(text: str) -> dict[str, str]:
    """``{heading text: the section's body}``; a section runs to the next heading of the same
    or a higher level."""
    lines = text.splitlines()
    heads = [(i, len(m.group(1)), m.group(2)) for i, m in _iter_headings(lines)]
    out: dict[str, str] = {}
    for k, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[k + 1 :] if lv <= level), len(lines))
        out[title] = "\n".join(lines[i + 1 : end])
    return out


def _iter_headings(lines: list[str]) -> Iterator[tuple[int, re.Match[str]]]:
    fenced = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        m = _HEADING.match(line)
        if m and not fenced:
            yield i, m


def _code_words(text: str) -> set[str]:
    """The identifiers that appear inside code spans and code blocks of ``text``."""
    words: set[str] = set()
    for span in _CODE.findall(text):
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return words


def _class_section(cls: type) -> str:
    sections = _sections(API.read_text(encoding="utf-8"))
    for title, body in sections.items():
        if f"`{cls.__name__}`" in title:
            return body
    raise AssertionError(f"docs/api.md has no section headed `{cls.__name__}`")


def _own_public(cls: type) -> set[str]:
    """Public names defined by ``cls`` and its bases inside ``durable``: methods, properties,
    dataclass fields, enum members, slots."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("durable"):
            continue
        names.update(n for n in vars(klass) if not n.startswith("_"))
        names.update(n for n in getattr(klass, "__slots__", ()) if not n.startswith("_"))
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))
    if issubclass(cls, enum.Enum):
        names.update(cls.__members__)
    return names


def _instance_public(cls: type) -> set[str]:
    """Public attributes an instance sets on itself (built without touching a database)."""
    if cls is durable.App:
        obj: object = durable.App("docs-check", database="sqlite:///never-opened.db")
    else:
        return set()
    return {n for n in vars(obj) if not n.startswith("_")}


def test_every_name_of_durable_all_is_in_the_reference() -> None:
    words = _code_words(API.read_text(encoding="utf-8"))
    missing = sorted(n for n in durable.__all__ if n not in words)
    assert not missing, f"docs/api.md does not name: {missing}"


def test_every_public_class_of_durable_all_has_a_section_or_is_an_error() -> None:
    titles = " ".join(_sections(API.read_text(encoding="utf-8")))
    for name in durable.__all__:
        obj = getattr(durable, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        assert f"`{name}`" in titles, f"docs/api.md has no section headed `{name}`"
        assert obj in CLASSES, f"{name} is public: add it to CLASSES in this test"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_public_member_is_in_its_class_section(cls: type) -> None:
    words = _code_words(_class_section(cls))
    members = _own_public(cls) | _instance_public(cls)
    missing = sorted(m for m in members if m not in words)
    assert not missing, f"the `{cls.__name__}` section of docs/api.md does not name: {missing}"


def test_every_error_and_its_attributes_are_in_the_errors_section() -> None:
    words = _code_words(_sections(API.read_text(encoding="utf-8"))["Errors"])
    for name in durable.__all__:
        obj = getattr(durable, name)
        if not (inspect.isclass(obj) and issubclass(obj, BaseException)):
            continue
        assert name in words, f"the Errors section of docs/api.md does not name {name}"
        init = obj.__dict__.get("__init__")
        if init is None:
            continue
        params = [p for p in inspect.signature(init).parameters if p not in ("self", "message")]
        missing = [p for p in params if p not in words]
        assert not missing, f"the Errors section does not name {name}'s attributes {missing}"


def test_the_sections_check_finds_a_missing_member() -> None:
    """The checks above are not vacuous: a section without a member's name fails them."""
    body = "### `Thing`\n\n- `start(x)` starts.\n\n### `Other`\n\n`stop`\n"
    sections = _sections(body)
    assert _code_words(sections["`Thing`"]) >= {"start", "x"}
    assert "stop" not in _code_words(sections["`Thing`"])


# -- nothing a user reads points at the project's workplace ----------------------------------

FORBIDDEN = [
    (re.compile(r"\.\./shared\b"), "a link into ../shared"),
    (re.compile(r"\bshared/design\b"), "the private design folder"),
    (re.compile(r"(?<![\w.~-])/(?:work|farm|root|home)/"), "a machine path"),
    (re.compile(r"(?<![\w.~-])/tmp/\w"), "a path under /tmp"),
    (re.compile(r"\bissues?\s*#?\s*\d+\b", re.I), "an internal issue number"),
]


def _hits(text: str) -> list[tuple[int, str, str]]:
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        for pattern, what in FORBIDDEN:
            if pattern.search(line):
                out.append((no, what, line.strip()))
    return out


def _user_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "examples").rglob("*.py"))
    files += sorted(Path(durable.__file__).parent.rglob("*.py"))
    return [f for f in files if f.is_file()]


def test_the_forbidden_patterns_catch_what_they_must() -> None:
    bad = [
        "see ../shared/design/API.md",
        "the design in shared/design",
        "`/work/shared/design/GUARANTEES.md`",
        "built on /farm/x",
        "as issue 5 asks",
        "Issue #10",
        "issues 3 and 4",
        "written to /tmp/bench.db",
    ]
    good = [
        "the temp dir (`tempfile.gettempdir()`)",
        "python -m benchmarks --tmpdir DIR",
        "`sqlite:///durable.db`",
        "an issue with the network",
        "https://github.com/example/project/work/x",
    ]
    assert all(_hits(line) for line in bad), [line for line in bad if not _hits(line)]
    assert not any(_hits(line) for line in good), [line for line in good if _hits(line)]


@pytest.mark.parametrize(
    "path", _user_files(), ids=lambda p: str(p.relative_to(p.anchor)).replace("/", ".")
)
def test_no_user_facing_file_points_at_the_workplace(path: Path) -> None:
    hits = _hits(path.read_text(encoding="utf-8"))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    assert not hits, "\n".join(f"{where}:{no}: {what}: {line}" for no, what, line in hits)


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list:
    paths: list[tuple[str, ...]] = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, (*prefix, name))
    return paths


def _help(path: tuple[str, ...]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli_main([*path, "--help"])
    assert exit_.value.code == 0, path
    return out.getvalue()


def test_every_help_text_is_free_of_workplace_references() -> None:
    paths = _command_paths(build_parser())
    assert len(paths) > 10, paths  # the top level and every command, nested ones too
    for path in paths:
        text = _help(path)
        assert "usage: durable" in text, path
        hits = _hits(text)
        assert not hits, f"durable {' '.join(path)} --help: {hits}"


def test_the_installed_script_answers_help() -> None:
    done = run([sys.executable, "-m", "durable.cli", "--help"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: durable" in done.stdout
    assert not _hits(done.stdout)


# -- links between the pages lead somewhere --------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]
    return [p for p in [*pages, *sorted((ROOT / "docs").glob("*.md"))] if p.is_file()]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_headings_that_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: the link to {target} leads nowhere"
        if anchor and dest.suffix == ".md":
            anchors = {_anchor(m.group(2)) for _, m in _iter_headings(dest.read_text().split("\n"))}
            assert anchor in anchors, f"{page.name}: {target}: no such heading in {dest.name}"


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def test_the_docs_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"


def test_every_command_and_option_of_the_cli_is_in_cli_md() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    for path in _command_paths(parser)[1:]:
        assert f"durable {' '.join(path)}" in text, f"docs/cli.md does not show durable {path}"
        sub = parser
        for name in path:
            action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
            sub = action.choices[name]
        for action in sub._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            if not longs or longs[0] in ("--help", "--database", "--json"):
                continue
            assert longs[0] in text, f"docs/cli.md does not name {longs[0]} of durable {path}"


# -- durable.testing is in the reference too ------------------------------------------------


@pytest.mark.parametrize("name", ["TestEnv", "VirtualClock"])
def test_every_public_member_of_durable_testing_is_in_its_class_section(name: str) -> None:
    import durable.testing

    cls = getattr(durable.testing, name)
    words = _code_words(_class_section(cls))
    instance = {"clock"} if name == "TestEnv" else set()  # set in __init__
    missing = sorted(m for m in _own_public(cls) | instance if m not in words)
    assert not missing, f"the `{name}` section of docs/api.md does not name: {missing}"


def test_durable_testing_names_are_in_the_reference() -> None:
    import durable.testing

    words = _code_words(API.read_text(encoding="utf-8"))
    missing = sorted(n for n in [*durable.testing.__all__, "durable_env"] if n not in words)
    assert not missing, f"docs/api.md does not name: {missing}"
