"""What every handler of one dashboard shares: the client, the settings, the templates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from durable import Client, Status, StepOutputs
from durable.ui import format as fmt
from durable.ui.config import UiConfig
from durable.ui.counts import CountCache

__all__ = ["STATIC_DIR", "Ui", "make_templates"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
STATUSES = [s.value for s in Status]


def make_templates() -> jinja2.Environment:
    """The template environment: every value escaped unless a template says otherwise."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=fmt.duration,
        clock=fmt.clock,
        stamp=fmt.stamp,
        ago=fmt.ago,
        short=fmt.short,
        pretty=fmt.pretty,
        compact=fmt.compact,
        call=fmt.call,
        why_blocked=fmt.why_blocked,
    )
    env.tests["step_outputs"] = lambda value: isinstance(value, StepOutputs)
    return env


@dataclass(frozen=True, slots=True)
class Ui:
    """One dashboard: its client, settings, templates and the counts it keeps a moment."""

    client: Client
    config: UiConfig
    templates: jinja2.Environment
    counts: CountCache

    def base(self, request: Request) -> str:
        """The path the app is mounted at (``""`` at the root)."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render a page template with the values every page uses."""
        html = self.templates.get_template(name).render(
            base=self.base(request),
            path=request.url.path,
            read_only=self.config.read_only,
            token=self.config.token if self.config.embed_token else "",
            statuses=STATUSES,
            now=dt.datetime.now(dt.UTC),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def render_fragment(self, name: str, **context: Any) -> str:
        """Render a partial template (for the live view)."""
        return self.templates.get_template(name).render(
            read_only=self.config.read_only, now=dt.datetime.now(dt.UTC), **context
        )
