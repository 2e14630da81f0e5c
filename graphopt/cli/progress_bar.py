"""How the CLI shows progress: a rich progress bar on a terminal (candidates done of planned, time
left against the budget), plain timestamped lines when stderr is not a terminal (CI logs), so a
long run is never silent. Both read graphopt.core.progress.Event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from graphopt.core.progress import Event


@contextlib.contextmanager
def progress_display(console: Console, title: str) -> Iterator:
    """A callback taking Events, drawn for the kind of stream ``console`` writes to."""
    if not console.is_terminal:
        yield _LinePrinter(console, title)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[left]}"),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        yield _Bar(bar, bar.add_task(title, total=None, count="", left="", message="starting"))


def _count(event: Event) -> str:
    if event.planned is None:
        return ""
    return f"{event.done}/{event.planned} candidates"


def _left(event: Event) -> str:
    left = event.seconds_left
    return "" if left is None else f"{left:.0f} s left"


class _Bar:
    def __init__(self, bar: Progress, task):
        self._bar, self._task = bar, task

    def __call__(self, event: Event) -> None:
        total = event.planned
        self._bar.update(
            self._task,
            total=total,
            completed=event.done if total else None,
            count=_count(event),
            left=_left(event),
            message=event.message,
        )


class _LinePrinter:
    def __init__(self, console: Console, title: str):
        self._console, self._title = console, title

    def __call__(self, event: Event) -> None:
        parts = [part for part in (_count(event), _left(event)) if part]
        status = f" ({', '.join(parts)})" if parts else ""
        stamp = time.strftime("%H:%M:%S")
        self._console.print(
            f"[{stamp}] {self._title}{status}: {event.message}", markup=False, highlight=False, soft_wrap=True
        )
