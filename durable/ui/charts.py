"""Small horizontal bar charts, laid out on the server for inline SVG."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Chart", "ChartBar", "bar_chart"]

ROW_H = 22.0
LABEL_W = 210.0
WIDTH = 520.0
VALUE_W = 80.0


@dataclass(frozen=True, slots=True)
class ChartBar:
    """One bar: its label, its value's text, its geometry."""

    label: str
    text: str
    y: float
    w: float
    tone: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart's title, bars and size."""

    title: str
    bars: list[ChartBar]
    width: float
    height: float
    label_w: float = LABEL_W
    row_h: float = ROW_H


def bar_chart(
    title: str,
    values: Sequence[tuple[str, float | None]],
    fmt: Callable[[float], str],
    *,
    top: float | None = None,
    tone: Callable[[float], str] | None = None,
) -> Chart:
    """One bar per ``(label, value)``; a ``None`` value draws no bar and reads ``-``.
    Bars are scaled to ``top`` (default: the largest value)."""
    known = [v for _, v in values if v is not None]
    scale = top if top is not None else max(known, default=0.0)
    span = WIDTH - LABEL_W - VALUE_W
    bars = []
    for i, (label, v) in enumerate(values):
        w = 0.0 if v is None or scale <= 0 else max(v / scale * span, 1.5 if v else 0.0)
        bars.append(
            ChartBar(
                label=label,
                text="-" if v is None else fmt(v),
                y=i * ROW_H,
                w=w,
                tone=tone(v) if (tone is not None and v is not None) else "plain",
            )
        )
    return Chart(title, bars, WIDTH, max(len(bars), 1) * ROW_H)
