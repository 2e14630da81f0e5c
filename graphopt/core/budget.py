"""The Budget: every time slice of a run, in one place.

A run has one budget (``--budget``, default 60 s) for everything: verifying and timing candidates,
timing the winner again, timing the compiler's levers, and saving. Its phases, in order:

- the graph search, until ``search_deadline``: each candidate gets at most ``measure_s`` of
  timing, and a candidate is not started unless the last one's cost fits;
- the confirmation of a winner chosen among several, ``confirm_s`` (skipped below its minimum);
- the compiler's levers on the chosen graph, the ``lever_share`` kept back from the search;
- saving, ``save_s`` kept back at the end (about 1 s per 200 MB of weights).

The budget is a promise: the run ends within it, saving included, give or take the phase that is
running when it runs out. When the user names none it is automatic: DEFAULT_S, raised once the
original is compiled (``fitted``) to what judging one candidate of this model takes, up to
AUTO_MAX_S (a 1 B-parameter decoder's sessions take 10-40 s each to create, and one candidate
needs five of them).
"""

from __future__ import annotations

import dataclasses
import time

# Timing slices (seconds). A pair's interleaved timing stops early once its interval clears the
# decision ratio, so these are ceilings; the floors are what a 95% interval needs on a small model.
MEASURE_MAX_S = 10.0  # one candidate against the original
MEASURE_MIN_S = 1.0
CONFIRM_MAX_S = 6.0  # the winner timed again
CONFIRM_MIN_S = 2.0  # below this the selection timing stands (it cleared the bar on its own)
LEVER_MAX_EXTRA_S = 4.0  # one lever against the same graph: LEVER_MIN_S plus up to this
LEVER_MIN_S = 2.0
LEVERS_COMBINED_MAX_S = 8.0  # the combination of winning levers against the original
LEVER_SHARE_MAX_S = 15.0  # kept back from the search for the levers, at most a quarter of the budget
SAVE_BASE_S = 1.0
SAVE_BYTES_PER_S = 200e6
DEFAULT_S = 60.0  # the automatic budget's floor
AUTO_MAX_S = 240.0  # the automatic budget's ceiling: a larger model needs --budget


@dataclasses.dataclass(frozen=True)
class Budget:
    total_s: float
    start: float = dataclasses.field(default_factory=time.monotonic)
    weight_bytes: int = 0  # what saving the result will have to write
    saves: bool = True  # False in memory (the torch backend, the JAX API): nothing to keep back for saving
    levers: bool = True  # False for a target without levers (protocols.Tunable): no share kept back for them
    auto: bool = False  # the user named no budget: ``fitted`` may raise it to what the model needs

    @classmethod
    def automatic(cls, start: float | None = None, weight_bytes: int = 0) -> Budget:
        return cls(DEFAULT_S, time.monotonic() if start is None else start, weight_bytes, auto=True)

    def fitted(self, candidate_s: float) -> Budget:
        """This budget, raised (when automatic, up to AUTO_MAX_S) so that one candidate that takes
        ``candidate_s`` to judge fits before the levers' share and saving. A budget the user named
        is kept; when one candidate fits in it only without the levers' share, the share goes to
        the candidate (levers then get what is left: a graph measured first, settings second)."""
        if not self.auto:
            before_levers = time.monotonic() - self.start + candidate_s + self.save_s
            if self.levers and before_levers <= self.total_s < before_levers + self.lever_share_s:
                return self.without_levers()
            return self
        needed = time.monotonic() - self.start + candidate_s + self.lever_share_s + self.save_s
        return dataclasses.replace(self, total_s=max(self.total_s, min(needed, AUTO_MAX_S)))

    @property
    def save_s(self) -> float:
        return SAVE_BASE_S + self.weight_bytes / SAVE_BYTES_PER_S if self.saves else 0.0

    @property
    def deadline(self) -> float:
        """When the work before saving must end (time.monotonic())."""
        return self.start + self.total_s - self.save_s

    @property
    def lever_share_s(self) -> float:
        return min(LEVER_SHARE_MAX_S, self.total_s / 4) if self.levers else 0.0

    def without_levers(self) -> Budget:
        """The same budget for a target that has no levers: the search gets their share."""
        return dataclasses.replace(self, levers=False)

    @property
    def search_deadline(self) -> float:
        return self.deadline - self.lever_share_s

    @property
    def end(self) -> float:
        """When the whole run is due, saving included."""
        return self.start + self.total_s

    @staticmethod
    def left(deadline: float) -> float:
        return deadline - time.monotonic()

    def measure_s(self) -> float:
        """Timing for the candidate about to be judged: half of what the search has left, capped."""
        return max(MEASURE_MIN_S, min(self.left(self.search_deadline) / 2, MEASURE_MAX_S))

    def confirm_s(self, pair_setup_s: float) -> float | None:
        """Timing for the confirmation, or None when there is no time for a meaningful one."""
        seconds = min((self.left(self.deadline) - pair_setup_s) / 2, CONFIRM_MAX_S)
        return seconds if seconds >= CONFIRM_MIN_S else None

    def lever_s(self, pair_setup_s: float) -> float | None:
        """Timing for one lever, leaving room for its pair and the final combined pair; None: stop."""
        remaining = self.left(self.deadline) - 2 * (pair_setup_s + LEVER_MIN_S)
        return None if remaining < 0 else LEVER_MIN_S + min(remaining / 3, LEVER_MAX_EXTRA_S)

    def combined_s(self, pair_setup_s: float) -> float | None:
        """Timing for the winning levers together against the original; None when it cannot fit."""
        remaining = self.left(self.deadline) - pair_setup_s
        return None if remaining < LEVER_MIN_S else min(remaining, LEVERS_COMBINED_MAX_S)


# torch.compile(backend="graphopt"), target auto: one graph's budget covers what graphopt adds
# to Inductor's own compile, spent in this order while each step's estimate fits what is left:
# the Inductor decision (FX rules and frozen weights, judged against Inductor as is), then the
# ONNX routes (OpenVINO, then ORT on the same export), then timing each route built against
# Inductor as is. A step that does not fit is not started (the first call stays within the
# budget); the estimates are shares of the plain compile, measured on this machine.
CONTENDER_MAX_S = 6.0
CONTENDER_MIN_S = 1.0
TIMING_OVERHEAD_S = 0.5  # a route's timing beyond its seconds: warm-up runs and the interval (0.4 s measured)
INDUCTOR_SHARE = 1 / 3  # of a budget larger than one frozen compile: the Inductor decision's part
FROZEN_COMPILE_SHARE = 0.5  # a frozen compile after the plain one (kernels cached): 0.44 MiniLM, 0.50 ConvNeXt-T
ROUTE_BUILD_SHARE = 0.3  # the first route's export, session and prediction: 0.29 MiniLM, 0.23 ConvNeXt-T
ROUTE_SESSION_RESERVE_S = 1.0  # kept back from a route's deadline for its final session
ROUTE_MIN_SEARCH_S = 8.0  # below this a route's search cannot judge even one candidate: none is run


@dataclasses.dataclass(frozen=True)
class TorchBudget:
    """One Dynamo graph's seconds, started once Inductor as is has compiled (what torch.compile
    costs anyway): the Inductor decision, the routes, then the routes' timings."""

    total_s: float
    plain_compile_s: float  # what compiling the graph with Inductor as is took
    start: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def contender_s(self) -> float:
        """Seconds to time one route against Inductor as is."""
        return max(CONTENDER_MIN_S, min(CONTENDER_MAX_S, self.total_s / 8))

    @property
    def timing_s(self) -> float:
        """What one route's timing costs, overhead included."""
        return self.contender_s + TIMING_OVERHEAD_S

    def left_s(self) -> float:
        return self.start + self.total_s - time.monotonic()

    @property
    def inductor_estimate_s(self) -> float:
        """One frozen-weights compile and its timing: the least the Inductor decision costs."""
        return FROZEN_COMPILE_SHARE * self.plain_compile_s + self.timing_s

    def inductor_budget(self) -> Budget | None:
        """The Inductor decision's Budget (a third of a larger budget), or None when not even one
        candidate fits."""
        if self.inductor_estimate_s > self.left_s():
            return None
        share = max(self.inductor_estimate_s, self.total_s * INDUCTOR_SHARE)
        return Budget(min(share, self.left_s()), saves=False, levers=False)

    def route_estimate_s(self, session_s: float | None) -> float:
        """A route's build and its timing: ``session_s`` is what the routes built so far took
        beyond their shared export and their searches (None before the first)."""
        build = ROUTE_BUILD_SHARE * self.plain_compile_s if session_s is None else session_s
        return build + self.timing_s

    def route_fits(self, session_s: float | None, timings_owed: int) -> bool:
        """Whether the next route, and the timings owed to the routes built before it, fit."""
        return self.route_estimate_s(session_s) + timings_owed * self.timing_s <= self.left_s()

    def route_search_s(self, timings_owed: int, routes_after: int) -> float:
        """Seconds the next route's search may take (0: no search): an equal share among the
        routes still to build of what is left once their sessions and every timing owed are kept
        back."""
        later = routes_after * (ROUTE_SESSION_RESERVE_S + self.timing_s)
        kept = ROUTE_SESSION_RESERVE_S + (timings_owed + 1) * self.timing_s + later
        share = (self.left_s() - kept) / (routes_after + 1)
        return share if share >= ROUTE_MIN_SEARCH_S else 0.0
