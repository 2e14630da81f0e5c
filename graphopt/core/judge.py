"""Judge candidates with the target: compile, read the fusion report, verify, measure.

The order is cheapest-first so that a candidate is dropped as early as possible: a graph the
compiler refuses, or one that fires no fusion the original lacks and has no fewer kernels, is not
worth timing; a graph that is not equivalent is never timed at all. The measured latency decides.
Everything here works through the protocols (Target, Compiled) and the harness; the Budget
gives every timing its slice.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from graphopt.core import harness
from graphopt.core.budget import MEASURE_MIN_S, Budget
from graphopt.core.errors import GraphoptError, InputsDidNotRun
from graphopt.core.evaluation_log import MIN_GAIN, Evaluation, EvaluationLog
from graphopt.core.measure import Comparison
from graphopt.core.memory import MemoryPlan
from graphopt.core.protocols import (
    Candidate,
    CompileCache,
    Feeds,
    FusionReport,
    Graph,
    Lever,
    StandardLevels,
    Target,
    Tunable,
)


@dataclasses.dataclass
class Baseline:
    """The original graph compiled once, with its outputs on every verification input.

    The compilation itself is let go once those outputs are read: what is kept is its fusion
    report and output names (a 1 B-parameter model's ORT session holds its 4 GB of weights, and
    every timing compiles the original afresh anyway)."""

    graph: Graph
    report: FusionReport
    output_names: list[str]
    feeds: list[Feeds]
    target: Target  # what compiled it (the candidates' target, unless decide was given another)
    outputs: list[list[np.ndarray]]
    compile_s: float = 0.0  # one compilation of the original: what a timing pair's sessions cost
    memory: MemoryPlan | None = None  # how many compilations a timing may hold (None: the widest)
    recompile_s: float | None = None  # a second compilation of it, for a target that keeps what it compiled

    @property
    def alive(self) -> int:
        """Compilations alive at once in a timing (the memory plan's width)."""
        return self.memory.alive if self.memory else 4

    def candidate_s(self, measure_s: float = MEASURE_MIN_S) -> float:
        """About what judging one candidate costs: its compilation (with its report) and outputs,
        then a timing's fresh compilations and ``measure_s`` of timing (by default the least a
        timing gets)."""
        return self.compile_s + self.pair_setup_s + measure_s

    @property
    def pair_setup_s(self) -> float:
        """Seconds to create the fresh compilations one A/B timing needs (of graphs compiled
        before: loads, for a target that keeps what it compiled)."""
        each = self.compile_s if self.recompile_s is None else self.recompile_s
        return (self.memory.compilations_per_timing if self.memory else 4) * each

    def time_against(self, side: harness.Side, seconds: float) -> Comparison:
        """``side``'s latency over the original's on the first feed, within the memory plan."""
        return harness.time_pair(
            (self.target, self.graph), side, self.feeds[0], seconds, 1 - MIN_GAIN, alive=self.alive
        )


def make_baseline(graph: Graph, target: Target, feeds: list[Feeds], memory: MemoryPlan | None = None) -> Baseline:
    start = time.monotonic()
    compiled = target.compile(graph)
    compile_s = time.monotonic() - start
    kept, outputs = [], []
    for i, f in enumerate(feeds):
        try:
            outputs.append(compiled.run(f))
            kept.append(f)
        except Exception as error:  # the runtime's errors on bad inputs
            if i == 0:
                raise InputsDidNotRun(
                    f"{target.name} cannot run the model on the generated inputs: {str(error).splitlines()[0][:200]}"
                ) from None
            # a second binding the model cannot take (a recurrent state of fixed batch beside a
            # dynamic batch): candidates are verified on the bindings it does take
    baseline = Baseline(graph, compiled.report, compiled.output_names, kept, target, outputs, compile_s, memory)
    if isinstance(target, CompileCache):
        del compiled
        start = time.monotonic()
        target.compile(graph, report=False)
        baseline.recompile_s = time.monotonic() - start
    return baseline


def evaluate(candidate: Candidate, baseline: Baseline, target: Target, measure_s: float) -> Evaluation:
    result = Evaluation(candidate)
    try:
        compiled = target.compile(candidate.graph)
    except GraphoptError as error:
        result.rejected = f"{target.name} refuses it: {error}"
        return result
    result.report = compiled.report
    base_report = baseline.report
    if not result.report.gained_over(base_report) and result.report.kernels >= base_report.kernels:
        result.rejected = "no fusion gained and no kernel saved"
        return result
    try:
        result.equivalence = harness.equivalence(baseline.output_names, baseline.outputs, compiled, baseline.feeds)
    except Exception as error:  # a candidate that fails at run time is a rejected candidate
        result.rejected = f"fails at run time: {str(error).splitlines()[0][:200]}"
        return result
    if not result.equivalence.ok:
        bad = result.equivalence.first_failure()
        result.rejected = f"not equivalent: output {bad.name}: {bad.reason}"
        return result
    del compiled  # the timing compiles both sides afresh: no third copy of the weights alive meanwhile
    result.timing = baseline.time_against((target, candidate.graph), measure_s)
    if not result.timing.candidate_faster(MIN_GAIN):
        result.rejected = f"not {MIN_GAIN:.1%} faster with confidence ({_ratio(result.timing)})"
    return result


def _ratio(t: Comparison) -> str:
    return f"ratio {t.ratio:.3f}, 95% CI [{t.ci_low:.3f}, {t.ci_high:.3f}]"


def search(
    candidates, baseline: Baseline, target: Target, budget: Budget, log: EvaluationLog, progress=None
) -> str | None:
    """Judge proposed candidates until the budget's search deadline, appending each to ``log``
    (the policy reads it while it proposes). A candidate is not started (not even rewritten: the
    policy makes it lazily) unless what the last one cost fits, or, for the first, the least it
    can cost: one compilation like the original's and the shortest timing (its timing's fresh
    compilations may come from the compiler's cache, as Inductor's do, so they are not counted
    against it); the search deadline leaves the final timings and the save their share. Returns
    why no candidate was judged when the budget is the reason, else None. ``progress`` is a
    graphopt.core.progress.Reporter."""
    candidates = iter(candidates)
    last_cost = baseline.compile_s + MEASURE_MIN_S
    while True:
        started = time.monotonic()
        if started + last_cost > budget.search_deadline:
            return None if len(log) else _out_of_time(baseline, budget)
        candidate = next(candidates, None)
        if candidate is None:
            return None
        if progress:
            progress.candidate(
                len(log), candidate.planned, f"candidate '{candidate.label}' ({len(candidate.applied)} rewrites)"
            )
        log.append(evaluate(candidate, baseline, target, budget.measure_s()))
        last_cost = time.monotonic() - started


def _out_of_time(baseline: Baseline, budget: Budget) -> str:
    needed = time.monotonic() - budget.start + baseline.candidate_s() + (budget.end - budget.search_deadline)
    return (
        f"the budget ({budget.total_s:.0f} s) ends before one candidate can be judged: judging one takes about "
        f"{baseline.candidate_s():.0f} s on this model; a budget of {needed:.0f} s would allow one"
    )


# The best of several noisy timings is biased low (the winner's curse): a choice made among this
# many timed candidates is timed again, independently, before it is kept and reported.
CONFIRM_AFTER = 3


def confirm(chosen: Evaluation, log: EvaluationLog, baseline: Baseline, target: Target, budget: Budget) -> str | None:
    """Time ``chosen`` again when it was picked among several timed candidates; the second timing
    goes to ``chosen.confirmation``. Returns None when it holds (or there was no need or no
    time), else why not."""
    if log.timed() < CONFIRM_AFTER:
        return None
    seconds = budget.confirm_s(baseline.pair_setup_s)
    if seconds is None:
        return None  # no time to confirm: the selection timing stands (it cleared the bar itself)
    timing = baseline.time_against((target, chosen.candidate.graph), seconds)
    if not timing.candidate_faster(MIN_GAIN):
        return (
            f"best candidate '{chosen.candidate.label}' ({chosen.timing.ratio:.3f} when chosen among {len(log)}) "
            f"was not {MIN_GAIN:.1%} faster when timed again ({_ratio(timing)})"
        )
    chosen.confirmation = timing
    return None


@dataclasses.dataclass
class LeverChoice:
    """The compiler setting recommended for the output, and the measurements behind it."""

    lever: Lever | None = None  # None: the compiler's defaults
    timing: Comparison | None = None  # output with the lever vs the original at the defaults
    tried: list[tuple[Lever, Comparison]] = dataclasses.field(
        default_factory=list
    )  # each lever vs the same graph at defaults
    report: object = None  # the FusionReport of the output under the lever
    refused: list[tuple[Lever, str]] = dataclasses.field(default_factory=list)  # levers left out, and why


def choose_lever(graph: Graph, report, baseline: Baseline, target: Target, budget: Budget) -> LeverChoice:
    """Time each of the target's levers for ``graph`` against the same graph at the defaults; the
    winners, combined, are timed once more against the original and kept if faster with
    confidence. Some of a compiler's own fusions cost time on some shapes, and no graph change
    stops it firing them: only a setting does. A lever is first compiled and its outputs checked
    against the original's: one the compiler refuses (OpenVINO's SNIPPETS_MODE=IGNORE_CALLBACK on
    BERT-base: "Incorrect Loop by Brgemm dimension M") or whose outputs differ is left out."""
    choice = LeverChoice()
    if not isinstance(target, Tunable):
        return choice  # a compiler without levers: its defaults
    feeds = baseline.feeds[0]
    kept = []
    for lever in target.levers(report):
        seconds = budget.lever_s(baseline.pair_setup_s + baseline.compile_s)
        if seconds is None:
            break
        refusal = _lever_refusal(target.with_lever(lever), graph, baseline)
        if refusal is not None:
            choice.refused.append((lever, refusal))
            continue
        timing = harness.time_pair(
            (target, graph), (target.with_lever(lever), graph), feeds, seconds, 1 - MIN_GAIN, baseline.alive
        )
        choice.tried.append((lever, timing))
        if timing.candidate_faster(MIN_GAIN):
            kept.append((lever, timing))
    seconds = budget.combined_s(baseline.pair_setup_s)
    if not kept or seconds is None:
        return choice  # nothing won, or no time left to measure the winners against the original
    combined = target.combine([lever for lever, _ in sorted(kept, key=lambda kt: kt[1].ratio)])
    timing = baseline.time_against((target.with_lever(combined), graph), seconds)
    if timing.candidate_faster(MIN_GAIN):
        choice.lever, choice.timing = combined, timing
        choice.report = target.with_lever(combined).compile(graph).report
    return choice


def _lever_refusal(target: Target, graph: Graph, baseline: Baseline) -> str | None:
    """Why ``target`` (a lever applied) cannot stand in for the defaults on ``graph``, or None."""
    try:
        compiled = target.compile(graph, report=False)
        equivalence = harness.equivalence(baseline.output_names, baseline.outputs, compiled, baseline.feeds)
    except GraphoptError as error:
        return f"{target.name} refuses it: {error}"
    except Exception as error:  # a runtime's own error at run time
        return f"fails at run time: {str(error).splitlines()[0][:200]}"
    if not equivalence.ok:
        bad = equivalence.first_failure()
        return f"not equivalent: output {bad.name}: {bad.reason}"
    return None


STANDARD_LEVEL_S = 3.0  # timing of the original at one standard level against the defaults


def standard_level(graph: Graph, target: Target, baseline_target: Target | None, feeds: list[Feeds]):
    """(target, baseline target, the level) at the fastest standard level of the compiler for the
    original ``graph``, when one is faster than its defaults with confidence; else unchanged and None.
    A user of the compiler picks among its levels without graphopt: that is the bar to beat."""
    base = baseline_target or target
    if not isinstance(base, StandardLevels) or not feeds:
        return target, baseline_target, None
    best, best_ratio = None, 1.0
    for level in base.standard_levels():
        try:
            timing = harness.time_pair((base, graph), (base.with_lever(level), graph), feeds[0], STANDARD_LEVEL_S)
        except GraphoptError:
            continue  # a level the compiler refuses for this model is not a level its user has
        if timing.candidate_faster() and timing.ratio < best_ratio:
            best, best_ratio = level, timing.ratio
    if best is None:
        return target, baseline_target, None
    leveled = baseline_target.with_lever(best) if baseline_target is not None else None
    return target.with_lever(best), leveled, best
