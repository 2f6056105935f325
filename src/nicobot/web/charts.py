"""The dashboard's chart, drawn as inline SVG on the server (no script, no CDN)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dashboard import DayFigures

WIDTH, HEIGHT = 720.0, 220.0
LEFT, RIGHT, TOP, BOTTOM = 56.0, 48.0, 22.0, 34.0
MOST_LABELS = 6


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    dot_x: float
    dot_y: float
    day: str
    messages: int
    conversations: int
    label: str | None
    label_x: float
    anchor: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: float
    height: float
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    #: The conversations' own scale, on the right.
    right_ticks: list[tuple[float, int]]
    line: str
    baseline: float
    left: float = LEFT
    right: float = WIDTH - RIGHT


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least ``value``."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def day_chart(days: list[DayFigures], label: dict[str, str]) -> Chart:
    """Bars for messages per day and a line for conversations per day, each on its own
    scale (left and right); ``label`` gives each day's short label (by ISO date)."""
    top = nice_ceiling(max([d.messages for d in days] + [1]))
    people_top = nice_ceiling(max([d.conversations for d in days] + [1]))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(days), 1)
    every = max(1, math.ceil(len(days) / MOST_LABELS))
    bars = []
    for i, day in enumerate(days):
        height = plot_height * day.messages / top
        dot_y = TOP + plot_height * (1 - day.conversations / people_top)
        key = day.day.isoformat()
        last = i == len(days) - 1
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.2, 1),
                y=round(TOP + plot_height - height, 1),
                width=round(slot * 0.6, 1),
                height=round(height, 1),
                dot_x=round(LEFT + i * slot + slot / 2, 1),
                dot_y=round(dot_y, 1),
                day=key,
                messages=day.messages,
                conversations=day.conversations,
                label=label[key] if (len(days) - 1 - i) % every == 0 or last else None,
                label_x=round(WIDTH - RIGHT if last else LEFT + i * slot + slot / 2, 1),
                anchor="end" if last else "middle",
            )
        )
    line = " ".join(f"{b.dot_x},{b.dot_y}" for b in bars)
    return Chart(
        WIDTH,
        HEIGHT,
        bars,
        _ticks(top, plot_height),
        _ticks(people_top, plot_height),
        line,
        TOP + plot_height,
    )


def _ticks(top: int, plot_height: float) -> list[tuple[float, int]]:
    fractions = (0.0, 0.5, 1.0) if top % 2 == 0 else (0.0, 1.0)
    return [(round(TOP + plot_height * (1 - f), 1), round(top * f)) for f in fractions]
