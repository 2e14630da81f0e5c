"""``decide``: the straight line, in memory, for any format, compiler and policy.

    sites (RuleSet) -> Policy proposes -> rewrite -> Target compiles and reports what fused ->
    verify -> measure -> keep the best or none -> the compiler's levers on the kept graph

The input is a graph already loaded and the inputs to verify on; the output is a Decision: every
evaluation (the log), what the search chose, whether a second timing confirmed it, the graph to
hand back (or none, with the reason), and the recommended compiler setting with its
measurement. Nothing here reads or writes a file: `graphopt optimize`, `torch.compile(...,
backend="graphopt")` and `graphopt.jax.optimize` are layers over it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from graphopt.core import judge, memory
from graphopt.core.budget import MEASURE_MAX_S, Budget
from graphopt.core.evaluation_log import Evaluation, EvaluationLog
from graphopt.core.progress import Reporter
from graphopt.core.protocols import (
    Candidate,
    Feeds,
    Graph,
    Policy,
    Prediction,
    RuleSet,
    SearchContext,
    ShapeBinding,
    Target,
    Tunable,
)


@dataclasses.dataclass
class Decision:
    baseline: judge.Baseline
    log: EvaluationLog
    selected: Evaluation | None = None  # what the graph search chose (confirmed, when it was timed again)
    chosen: Evaluation | None = None  # the graph to hand back; its ``final_timing`` is at the defaults
    unconfirmed: str | None = None  # why the search's choice was dropped when timed again
    lever: judge.LeverChoice = dataclasses.field(default_factory=judge.LeverChoice)
    reason: str = ""
    policy: str = ""
    target: str = ""  # the Target's name (ort-cpu, xla-cpu, ...)
    prediction: list[Prediction] = dataclasses.field(default_factory=list)  # the policy's first predictions, best first
    out_of_time: str | None = None  # why no candidate was judged, when the budget is the reason
    budget: Budget | None = None  # the budget the run kept to (an automatic one fitted to the model)
    compiled_with: Target | None = None  # the target as it compiled, bound to the feeds' shapes (ShapeBinding)
    standard_level: object = None  # the compiler's standard level the bar was set at (StandardLevels), or None

    @property
    def kept_original(self) -> bool:
        return self.chosen is None

    @property
    def lever_changed_choice(self) -> bool:
        """The lever step kept another graph than the one the search chose."""
        return self.chosen is not self.selected


def decide(
    graph: Graph,
    rules: RuleSet,
    target: Target,
    policy: Policy,
    feeds: list[Feeds],
    budget: Budget,
    progress: Reporter | None = None,
    extra: Iterable[Candidate] = (),
    baseline_graph: Graph | None = None,
    baseline_target: Target | None = None,
) -> Decision:
    """Judge the policy's candidates for ``graph`` (``extra`` ones after its first) and decide.
    ``baseline_graph`` is what they are judged against when it is not ``graph`` itself: the input
    as the user gave it, where ``graph`` carries what the rules need (names, inferred shapes).
    ``baseline_target`` compiles the baseline when it is not ``target``: the torch backend judges
    Inductor with frozen weights against Inductor as torch.compile runs it."""
    progress = progress or Reporter(None)
    target, baseline_target = (bound(t, feeds) for t in (target, baseline_target))
    budget = budget if isinstance(target, Tunable) else budget.without_levers()
    reference = graph if baseline_graph is None else baseline_graph
    target, baseline_target, level = judge.standard_level(reference, target, baseline_target, feeds)
    progress.stage(f"compiling the original with {(baseline_target or target).name}")
    plan = memory.plan(max(target.compiled_bytes(graph), (baseline_target or target).compiled_bytes(reference)))
    decision = Decision(judge.make_baseline(reference, baseline_target or target, feeds, plan), EvaluationLog())
    decision.standard_level = level
    decision.budget = budget = budget.fitted(decision.baseline.candidate_s(MEASURE_MAX_S))
    progress.extend(budget.end)
    context = SearchContext(feeds, decision.baseline.report, target.name)
    proposals = _after_first(policy.propose(graph, rules, decision.log, context), extra)
    decision.out_of_time = judge.search(proposals, decision.baseline, target, budget, decision.log, progress)
    decision.policy, decision.prediction = policy.name, list(policy.explanation)
    decision.target, decision.compiled_with = target.name, target
    chosen = decision.log.best()
    if chosen is not None:
        progress.stage("timing the best candidate again")
        decision.unconfirmed = judge.confirm(chosen, decision.log, decision.baseline, target, budget)
        chosen = None if decision.unconfirmed else chosen
    decision.selected = chosen
    progress.stage(f"timing {target.name}'s own fusions on the chosen graph")
    decision.chosen, decision.lever = _choose_lever(chosen, decision, target, budget)
    decision.reason = _reason(decision)
    return decision


def bound(target: Target | None, feeds: list[Feeds]) -> Target | None:
    """``target`` compiling for the shapes of the first feeds when it binds shapes (ShapeBinding)."""
    return target.bound_to(feeds[0]) if isinstance(target, ShapeBinding) and feeds else target


def _after_first(proposals, extra):
    """``proposals`` with ``extra`` after the policy's first (greedy) candidate."""
    first = next(proposals, None)
    if first is not None:
        yield first
    yield from extra
    yield from proposals


def _choose_lever(chosen: Evaluation | None, decision: Decision, target: Target, budget: Budget):
    """Levers for the chosen graph, and for the runner-up when the compiler fires fusions on it
    that it does not fire on the chosen one (a graphopt fusion and the compiler's own can make the
    same kernel; only the compiler-made one can be switched off, and that can be the faster pair).
    The pair whose combined measurement against the original is best wins; without one, the
    chosen graph at the defaults stays."""
    subjects = [chosen]
    if chosen is not None:
        others = sorted((e for e in decision.log if e.accepted and e is not chosen), key=lambda e: e.timing.ratio)
        subjects += [e for e in others if set(e.report.fired) - set(chosen.report.fired)][:1]
    best = (chosen, judge.LeverChoice())
    for subject in subjects:
        graph = subject.candidate.graph if subject else decision.baseline.graph
        report = subject.report if subject else decision.baseline.report
        choice = judge.choose_lever(graph, report, decision.baseline, target, budget)
        if choice.timing is not None and (best[1].timing is None or choice.timing.ratio < best[1].timing.ratio):
            best = (subject, choice)
        elif subject is chosen:
            best = (best[0], dataclasses.replace(best[1], tried=best[1].tried + choice.tried))
    return best


def _reason(decision: Decision) -> str:
    """The headline: the graph handed back against the original, both at the compiler's defaults
    (or at the standard level the bar was set at)."""
    chosen = decision.chosen
    if chosen is not None:
        t = chosen.final_timing
        level = decision.standard_level
        where = f"at the compiler's standard level ({level.label()})" if level else "at the compiler's defaults"
        return (
            f"kept candidate '{chosen.candidate.label}': {t.speedup:.3f}x faster {where} "
            f"(ratio {t.ratio:.3f}, 95% CI [{t.ci_low:.3f}, {t.ci_high:.3f}])"
        )
    if decision.unconfirmed:
        return decision.unconfirmed
    if not len(decision.log):
        return decision.out_of_time or "no rule applies to this model"
    return "; ".join(f"{e.candidate.label}: {e.rejected or 'faster, but not kept'}" for e in decision.log)
