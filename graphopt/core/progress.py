"""Progress of a long run, as events: what is happening, how many candidates are done of how many
planned, and the deadline the budget sets. The library emits events; the CLI draws them (a rich
progress bar on a terminal, timestamped lines in a CI log).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Event:
    message: str
    done: int = 0  # candidates judged so far
    planned: int | None = None  # the policy's current estimate of how many it will propose
    deadline: float | None = None  # time.monotonic() by which the run ends

    @property
    def seconds_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


class Reporter:
    """Turns the library's calls into Events for ``callback`` (which may be None)."""

    def __init__(self, callback: Callable[[Event], None] | None, deadline: float | None = None):
        self._callback = callback
        self._deadline = deadline
        self._done = 0
        self._planned: int | None = None

    def stage(self, message: str) -> None:
        self._emit(message)

    def extend(self, deadline: float) -> None:
        """The run's deadline moved (an automatic budget fitted to the model)."""
        self._deadline = deadline

    def candidate(self, done: int, planned: int | None, message: str) -> None:
        """About to judge candidate number ``done + 1`` of an estimated ``planned``."""
        self._done = done
        self._planned = max(planned, done + 1) if planned is not None else None
        self._emit(message)

    def _emit(self, message: str) -> None:
        if self._callback is not None:
            self._callback(Event(message, self._done, self._planned, self._deadline))
