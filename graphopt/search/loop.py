"""Judge candidates with the target: compile, read the fusion report, verify, measure.

The order is cheapest-first so that a candidate is dropped as early as possible: a graph ORT
refuses, or one that fires no fusion the original lacks and has no fewer kernels, is not worth
timing; a graph that is not equivalent is never timed at all. The measured latency decides.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import onnx_ir as ir

from graphopt.errors import GraphoptError
from graphopt.measure import Comparison, interleaved
from graphopt.search.policies import Candidate
from graphopt.search.session import SessionSettings, levers, time_pair
from graphopt.targets.onnxruntime import CompiledGraph, FusionReport, OrtTarget, ab_sessions
from graphopt.verify import Equivalence, compare

# Two sessions of the very same model differ by up to about 2% on this kind of machine (memory
# placement, thread scheduling: the ort-all row of bench/ measures it every run), however many
# rounds are timed. Timing alternates two sessions per side, which halves that, and a candidate
# must still beat the original by more than what is left to be kept.
MIN_GAIN = 0.015


@dataclasses.dataclass
class Baseline:
    """The original graph compiled once, with its outputs on every verification input."""

    model: ir.Model
    compiled: CompiledGraph
    feeds: list[dict[str, np.ndarray]]
    outputs: list[list[np.ndarray]]
    output_names: list[str]
    compile_s: float = 0.0  # one ORT session of the original: what a timing pair's sessions cost

    @property
    def pair_setup_s(self) -> float:
        """Seconds to create the four fresh sessions one A/B timing needs."""
        return 4 * self.compile_s


@dataclasses.dataclass
class Evaluation:
    candidate: Candidate
    report: FusionReport | None = None
    equivalence: Equivalence | None = None
    timing: Comparison | None = None
    rejected: str = ""  # why this candidate cannot be used, if it cannot
    selection_timing: Comparison | None = None  # when ``timing`` is a confirmation: the timing it was chosen on

    @property
    def accepted(self) -> bool:
        return not self.rejected and self.timing is not None and self.timing.candidate_faster(MIN_GAIN)


def make_baseline(model: ir.Model, target: OrtTarget, feeds: list[dict[str, np.ndarray]]) -> Baseline:
    start = time.monotonic()
    compiled = target.compile(model)
    compile_s = time.monotonic() - start
    try:
        outputs = [compiled.run(f) for f in feeds]
    except Exception as error:  # ORT's runtime errors on bad inputs
        raise GraphoptError(f"onnxruntime cannot run the model on the generated inputs: {str(error).splitlines()[0][:200]}") from None
    return Baseline(model, compiled, feeds, outputs, [o.name for o in compiled.session.get_outputs()], compile_s)


def evaluate(candidate: Candidate, baseline: Baseline, target: OrtTarget, measure_budget_s: float) -> Evaluation:
    result = Evaluation(candidate)
    try:
        compiled = target.compile(candidate.model)
    except GraphoptError as error:
        result.rejected = f"onnxruntime refuses it: {error}"
        return result
    result.report = compiled.report
    base_report = baseline.compiled.report
    if not result.report.gained_over(base_report) and result.report.kernels >= base_report.kernels:
        result.rejected = "no fusion gained and no kernel saved"
        return result
    try:
        equivalence = None
        for feeds, expected in zip(baseline.feeds, baseline.outputs):
            this = compare(baseline.output_names, expected, compiled.run(feeds))
            equivalence = this if equivalence is None else equivalence.merged(this)
    except Exception as error:  # a candidate that fails at run time is a rejected candidate
        result.rejected = f"fails at run time: {str(error).splitlines()[0][:200]}"
        return result
    result.equivalence = equivalence
    if not equivalence.ok:
        bad = equivalence.first_failure()
        result.rejected = f"not equivalent: output {bad.name}: {bad.reason}"
        return result
    feeds = baseline.feeds[0]
    a_sessions, b_sessions = ab_sessions(target, baseline.model, candidate.model)
    result.timing = interleaved(
        [runner(s, feeds) for s in a_sessions], [runner(s, feeds) for s in b_sessions],
        budget_s=measure_budget_s, decide_at=1 - MIN_GAIN,
    )  # fmt: skip
    if not result.timing.candidate_faster(MIN_GAIN):
        result.rejected = (
            f"not {MIN_GAIN:.1%} faster with confidence (ratio {result.timing.ratio:.3f}, "
            f"95% CI [{result.timing.ci_low:.3f}, {result.timing.ci_high:.3f}])"
        )
    return result


def runner(compiled: CompiledGraph, feeds):
    return lambda: compiled.run(feeds)


def search(candidates, baseline: Baseline, target: OrtTarget, deadline: float, on_progress=None, evaluations=None) -> list[Evaluation]:
    """Evaluate proposed candidates until ``deadline`` (time.monotonic()); ``on_progress`` is a
    graphopt.progress.Reporter. Returns every
    evaluation made, appended to ``evaluations`` when given (a policy may read that list while it
    proposes). The first candidate is always evaluated, however late; a later one is not
    started (not even rewritten: the policy makes it lazily) unless the last one's cost fits."""
    evaluations = [] if evaluations is None else evaluations
    candidates = iter(candidates)
    last_cost = 0.0
    while True:
        started = time.monotonic()
        if evaluations and started + last_cost > deadline:
            break
        candidate = next(candidates, None)
        if candidate is None:
            break
        remaining = deadline - time.monotonic()
        if on_progress:
            on_progress.candidate(len(evaluations), candidate.planned, f"candidate '{candidate.label}' ({len(candidate.applied)} rewrites)")
        evaluations.append(evaluate(candidate, baseline, target, measure_budget_s=max(1.0, min(remaining / 2, 10.0))))
        last_cost = time.monotonic() - started
    return evaluations


def best(evaluations: list[Evaluation]) -> Evaluation | None:
    accepted = [e for e in evaluations if e.accepted]
    return min(accepted, key=lambda e: e.timing.ratio) if accepted else None


# The best of several noisy timings is biased low (the winner's curse): a choice made among this
# many timed candidates is timed again, independently, before it is kept and reported.
CONFIRM_AFTER = 3


def confirm(chosen: Evaluation, evaluations: list[Evaluation], baseline: Baseline, target: OrtTarget, deadline: float) -> str | None:
    """Re-time ``chosen`` against the original when it was picked among several timed candidates.
    Returns None when it holds (``chosen.timing`` is then the confirmation), else why not."""
    if sum(1 for e in evaluations if e.timing is not None) < CONFIRM_AFTER:
        return None
    remaining = deadline - time.monotonic() - baseline.pair_setup_s
    budget = min(remaining / 2, 6.0)
    if budget < 2.0:
        return None  # no time to confirm: the selection timing stands (it cleared the bar itself)
    timing = time_pair((target, baseline.model), (target, chosen.candidate.model), baseline.feeds[0], budget, 1 - MIN_GAIN)
    if not timing.candidate_faster(MIN_GAIN):
        return (
            f"best candidate '{chosen.candidate.label}' ({chosen.timing.ratio:.3f} when chosen among "
            f"{len(evaluations)}) was not {MIN_GAIN:.1%} faster when timed again (ratio {timing.ratio:.3f}, "
            f"95% CI [{timing.ci_low:.3f}, {timing.ci_high:.3f}])"
        )
    chosen.selection_timing, chosen.timing = chosen.timing, timing
    return None


@dataclasses.dataclass
class SessionChoice:
    """The ORT session settings recommended for the output, and the measurements behind them."""

    settings: SessionSettings = dataclasses.field(default_factory=SessionSettings)
    timing: Comparison | None = None  # output with these settings vs the original at ORT defaults
    tried: list[tuple[SessionSettings, Comparison]] = dataclasses.field(default_factory=list)  # each lever vs the same graph at defaults
    report: FusionReport | None = None  # what ORT runs for the output under these settings


def choose_session(model: ir.Model, report: FusionReport, baseline: Baseline, target: OrtTarget, deadline: float) -> SessionChoice:
    """Time each lever of ``session.levers`` on ``model`` until ``deadline``; see session.py."""
    choice = SessionChoice()
    feeds = baseline.feeds[0]
    kept = []
    for lever in levers(report):
        # room for this lever's pair and for the final pair, each with at least 2 s of timing
        remaining = deadline - time.monotonic() - 2 * (baseline.pair_setup_s + 2.0)
        if remaining < 0:
            break
        timing = time_pair((target, model), (lever.apply(target), model), feeds, 2.0 + min(remaining / 3, 4.0), 1 - MIN_GAIN)
        choice.tried.append((lever, timing))
        if timing.candidate_faster(MIN_GAIN):
            kept.append((lever, timing))
    if not kept:
        return choice
    if any(lever.level != "all" for lever, _ in kept):  # a lower level subsumes disabling its fusions
        combined = min(kept, key=lambda kt: kt[1].ratio)[0]
    else:
        combined = SessionSettings(disabled_optimizers=tuple(name for lever, _ in kept for name in lever.disabled_optimizers))
    remaining = deadline - time.monotonic() - baseline.pair_setup_s
    if remaining < 2.0:
        return choice  # no time left to measure the combination against the original
    timing = time_pair((target, baseline.model), (combined.apply(target), model), feeds, min(remaining, 8.0), 1 - MIN_GAIN)
    if timing.candidate_faster(MIN_GAIN):
        choice.settings, choice.timing = combined, timing
        choice.report = combined.apply(target).compile(model).report
    return choice
