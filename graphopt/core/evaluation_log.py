"""The evaluation log: every candidate judged in a run, appended in order, never edited.

A policy reads it while it proposes (the search refines the best candidate measured so far); the
run's report is drawn from it; saved as JSON lines it is the learned policy's training data: for
each candidate, the sites applied with their features, the compiler's fusion report, the
equivalence verdict and the timing with its interval.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

from graphopt.core.atomic import atomic_path
from graphopt.core.measure import Comparison
from graphopt.core.protocols import Candidate, FusionReport
from graphopt.core.verify import Equivalence

# Two compilations of the very same graph differ by up to about 2% on this kind of machine
# (memory placement, thread scheduling: the ort-all row of bench/ measures it every run), however
# many rounds are timed. Timing alternates two compilations per side, which halves that, and a
# candidate must still beat the original by more than what is left to be kept.
MIN_GAIN = 0.015


@dataclasses.dataclass
class Evaluation:
    candidate: Candidate
    report: FusionReport | None = None
    equivalence: Equivalence | None = None
    timing: Comparison | None = None
    rejected: str = ""  # why this candidate cannot be used, if it cannot
    confirmation: Comparison | None = None  # a second, independent timing of a chosen candidate

    @property
    def accepted(self) -> bool:
        """Equivalent and faster than the original by MIN_GAIN with confidence."""
        return not self.rejected and self.timing is not None and self.timing.candidate_faster(MIN_GAIN)

    @property
    def final_timing(self) -> Comparison | None:
        """The confirmation when there is one, else the timing it was judged on."""
        return self.confirmation or self.timing


class EvaluationLog:
    """Append-only: ``append`` and reading, nothing else."""

    def __init__(self) -> None:
        self._records: list[Evaluation] = []

    def append(self, evaluation: Evaluation) -> None:
        self._records.append(evaluation)

    def __iter__(self) -> Iterator[Evaluation]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def timed(self) -> int:
        return sum(1 for e in self._records if e.timing is not None)

    def best(self) -> Evaluation | None:
        """The accepted evaluation with the lowest ratio, or None."""
        accepted = [e for e in self._records if e.accepted]
        return min(accepted, key=lambda e: e.timing.ratio) if accepted else None

    def records(self) -> list[dict]:
        return [_record(e) for e in self._records]

    def save(self, path) -> None:
        """JSON lines, one evaluation each."""
        with atomic_path(Path(path)) as tmp:
            tmp.write_text("".join(json.dumps(r, default=float) + "\n" for r in self.records()))


def _timing(t: Comparison | None) -> dict | None:
    return None if t is None else dataclasses.asdict(t)


def _record(e: Evaluation) -> dict:
    return {
        "label": e.candidate.label,
        "sites": [dataclasses.asdict(s) for s in e.candidate.applied],
        "report": None
        if e.report is None
        else {"kernels": e.report.kernels, "fused": e.report.fused, "fired": e.report.fired},
        "equivalent": None if e.equivalence is None else e.equivalence.ok,
        "timing": _timing(e.timing),
        "confirmation": _timing(e.confirmation),
        "rejected": e.rejected or None,
    }
