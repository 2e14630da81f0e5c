"""One Dynamo graph's decision: which compiler runs it and with which FX rules, measured by the
engine, not assumed.

Inductor as torch.compile runs it is compiled first (what torch.compile costs anyway) and is
the baseline every contender is judged against, with the engine's one acceptance rule
(equivalent, and faster by MIN_GAIN with the whole 95% interval):

- the Inductor decision: ``decide()`` over the graph's FX rule sites (formats/fx: a policy
  takes or leaves them) with Inductor as the target, its weights frozen into the kernels for
  inference (the "frozen weights, no rules" candidate is judged too);
- the ONNX routes (torch/onnx_route.py): the graph converted to ONNX once and decided by the
  engine with OpenVINO, where it is installed and the inputs lie on the CPU, and with ORT, each
  then timed against Inductor as is and logged as one more evaluation.

Each is started only when its estimated cost fits what is left of the budget (core/budget.py
TorchBudget: the first call costs Inductor's compile plus at most the budget); one that does not
fit is named in ``left_out`` with the budget that would try it.

The fastest accepted one is kept; Inductor as is otherwise. Each kept contender is checked
against the graph run eagerly, on the real inputs and at a second size of each dynamic
dimension; one that fails to build or to match is left out with a warning naming it. A graph
that needs gradients gets Inductor with only the FX rules that keep gradients exact, checked
eagerly and not timed. A decision found in the cache is replayed: only its contender is built,
nothing is timed. Every slice of time is the TorchBudget's (core/budget.py).
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import logging
import time
import warnings

import torch

from graphopt.core import registry
from graphopt.core.budget import CONTENDER_MIN_S, Budget, TorchBudget
from graphopt.core.decide import Decision, decide
from graphopt.core.evaluation_log import MIN_GAIN, Evaluation, EvaluationLog
from graphopt.core.measure import interleaved
from graphopt.core.protocols import Candidate
from graphopt.core.verify import compare
from graphopt.formats.fx import run_eager
from graphopt.formats.fx.format import FxRules, feeds_of
from graphopt.formats.fx.resize import second_size
from graphopt.formats.fx.weights import weight_inputs
from graphopt.torch import onnx_route

log = logging.getLogger("graphopt.torch")
ROUTES = onnx_route.ROUTES
FROZEN_ONLY = "frozen weights, no rules"


@dataclasses.dataclass
class Contender:
    name: str  # "onnxruntime", "openvino", "inductor+freezing", "inductor+rules", "inductor"
    run: object  # called with the GraphModule's inputs
    fused: dict
    fired: dict  # rules that rewrote the graph -> sites
    record: dict  # what to store to replay it
    detail: str = ""  # the ONNX path's own reason
    applied: list = dataclasses.field(default_factory=list)  # the FX rule sites it rewrote
    kernels: int | None = None  # kernels in what runs, in its compiler's terms (Inductor's, ORT's nodes)

    @property
    def target(self) -> str:
        return self.name if self.name in ROUTES else "inductor"


@dataclasses.dataclass
class Choice:
    kept: Contender
    reason: str
    ratio: float | None = None  # kept against Inductor as is (timed), None when not timed
    ci95: tuple[float, float] | None = None
    timings: dict = dataclasses.field(default_factory=dict)  # contender -> (ratio, ci95) against Inductor
    left_out: dict = dataclasses.field(default_factory=dict)  # contender -> why
    log: EvaluationLog = dataclasses.field(default_factory=EvaluationLog)  # every evaluation of this graph
    sites: list = dataclasses.field(default_factory=list)  # the FX rule sites found in the graph
    replayed: bool = False  # built from a cached decision, nothing timed
    inductor_kernels: int | None = None  # kernels Inductor as is runs for this graph (what was judged against)


def needs_gradients(args) -> bool:
    return torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


def fx_rules(args, *, frozen: bool = False, names=None) -> FxRules:
    """The FX rules a graph may get: only gradient-exact ones when an input needs gradients, only
    those that still help frozen weights when ``frozen``; the named ones for a replay."""
    required = {"preserves_gradients": True} if needs_gradients(args) else {}
    if frozen:
        required["with_freezing"] = True
    rules = registry.rule_families("fx").all_rules(**required)
    return FxRules([r for r in rules if names is None or r.name in names])


def inductor_for(example_inputs):
    """Inductor as torch.compile runs it, bound to what Dynamo gave the backend."""
    return dataclasses.replace(registry.target_for("inductor-cpu"), example_inputs=tuple(example_inputs))


def plain_inductor(gm, example_inputs, target=None) -> Contender:
    compiled = (target or inductor_for(example_inputs)).compile(gm)
    record = {"target": "inductor", "rules": None}
    return Contender("inductor", compiled, dict(compiled.report.fused), {}, record, kernels=compiled.report.kernels)


def decide_graph(gm, args, settings: dict, remembered: dict | None = None, example_inputs=None) -> Choice:
    """Build, check and (unless gradients or a replay) judge the contenders for one graph; keep one."""
    example_inputs = list(example_inputs if example_inputs is not None else args)
    if remembered is not None and (replayed := _replayed(gm, args, settings, remembered, example_inputs)):
        return replayed  # a cached decision that fails its check is decided afresh below
    if needs_gradients(args):
        return _for_training(gm, args, example_inputs)
    if settings["target"] in ROUTES:
        return _route_only(gm, args, settings, example_inputs, settings["target"])
    start = time.monotonic()
    plain_target = inductor_for(example_inputs)
    plain = plain_inductor(gm, example_inputs, plain_target)
    if settings["target"] != "auto":  # asked for Inductor alone: the FX decision has the whole budget
        inductor_budget = Budget(settings["budget"], saves=False)
        ruled, decision, sites = _inductor_decision(gm, args, settings, plain_target, inductor_budget, {})
        return _judged(args, plain, _timed(ruled, decision), decision.log, sites, [], CONTENDER_MIN_S, {})
    budget = TorchBudget(settings["budget"], time.monotonic() - start)
    left_out: dict[str, str] = {}
    ruled, graph_log, sites = _inductor_within(gm, args, settings, plain_target, budget, left_out)
    built = _routes_within(gm, args, settings, auto_routes(args), budget, left_out)
    return _judged(args, plain, ruled, graph_log, sites, built, budget.contender_s, left_out)


def _inductor_within(gm, args, settings, plain_target, budget: TorchBudget, left_out: dict):
    """The Inductor decision when one frozen compile and its timing fit the budget; else its
    sites only, and why it was not tried in ``left_out``."""
    inductor_budget = budget.inductor_budget()
    if inductor_budget is not None:
        ruled, decision, sites = _inductor_decision(gm, args, settings, plain_target, inductor_budget, left_out)
        return _timed(ruled, decision), decision.log, sites
    name = "inductor+freezing" if weight_inputs(gm, args) else "inductor+rules"
    left_out[name] = _not_tried(budget.inductor_estimate_s, budget)
    return None, EvaluationLog(), fx_rules(args).sites(gm)


def _timed(ruled: Contender | None, decision: Decision):
    """The Inductor decision's contender with the timing that chose it, or None."""
    return None if ruled is None else (ruled, decision.chosen.final_timing)


def _routes_within(gm, args, settings, routes: list[str], budget: TorchBudget, left_out: dict) -> list:
    """The ONNX routes, in order, each built when it and the timings owed fit the budget; they
    share one export, and a later route's estimate is what the earlier ones took beyond it."""
    built, session_s, exports = [], None, {}
    for position, route in enumerate(routes):
        if not budget.route_fits(session_s, len(built)):
            left_out[route] = _not_tried(budget.route_estimate_s(session_s), budget)
            continue
        search_s = budget.route_search_s(len(built), len(routes) - position - 1)
        started = time.monotonic()
        build = lambda r=route, s=search_s: build_route(gm, args, settings, s, route=r, exports=exports)  # noqa: E731
        contender = _checked(gm, args, settings, left_out, route, build)
        if contender is not None:
            spent = time.monotonic() - started - sum(getattr(contender.run, "seconds", {}).values())
            session_s = max(session_s or 0.0, spent)
            built.append(contender)
        log.debug("graphopt: %s route %s", route, "built" if contender else "left out")
    return built


def _not_tried(estimate_s: float, budget: TorchBudget) -> str:
    return (
        f"not tried: it needs about {estimate_s:.0f} s and {max(budget.left_s(), 0):.0f} s of the "
        f"{budget.total_s:.0f} s budget were left (a larger budget tries it)"
    )


def auto_routes(args) -> list[str]:
    """The ONNX routes ``auto`` tries, in order: OpenVINO where it is installed and every input is
    a CPU tensor numpy can hold (OpenVINO takes numpy arrays; bfloat16 has no numpy type), then
    ORT always. OpenVINO comes first because it is the more often faster one as is on CPUs (on
    this 2-core machine 10 of 14 zoo and corpus models, bench/results/openvino.md): when the
    budget holds one route, it is that one."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    openvino = importlib.util.find_spec("openvino") is not None and all(
        t.device.type == "cpu" and t.dtype != torch.bfloat16 for t in tensors
    )
    return (["openvino"] if openvino else []) + ["onnxruntime"]


def _judged(args, plain, ruled: tuple | None, graph_log, sites, routes, contender_s: float, left_out) -> Choice:
    """Each route timed against Inductor as is and logged; the fastest accepted contender kept."""
    accepted, timings = [ruled] if ruled is not None else [], {}
    for route in routes:
        evaluation = _route_evaluation(plain, route, args, contender_s)
        graph_log.append(evaluation)
        timings[route.name] = (evaluation.timing.ratio, (evaluation.timing.ci_low, evaluation.timing.ci_high))
        if evaluation.accepted:
            accepted.append((route, evaluation.timing))
    timings |= {c.name: (t.ratio, (t.ci_low, t.ci_high)) for c, t in accepted}
    if not accepted:
        why = (
            "; ".join(f"{e.candidate.label}: {e.rejected}" for e in graph_log if e.rejected) or "no contender to judge"
        )
        reason = f"no contender beat Inductor as is by {MIN_GAIN:.1%} with confidence ({why})"
        return Choice(plain, reason, None, None, timings, left_out, graph_log, sites, inductor_kernels=plain.kernels)
    kept, timing = min(accepted, key=lambda pair: pair[1].ratio)
    reason = f"{kept.name} {timing.ratio:.3f}x Inductor's time [{timing.ci_low:.3f}, {timing.ci_high:.3f}]"
    interval = (timing.ci_low, timing.ci_high)
    return Choice(
        kept, reason, timing.ratio, interval, timings, left_out, graph_log, sites, inductor_kernels=plain.kernels
    )


def _route_evaluation(plain: Contender, route: Contender, args, seconds: float) -> Evaluation:
    """A route against Inductor as is, interleaved, as an evaluation of the graph's log."""
    with torch.no_grad():
        timing = interleaved(lambda: plain.run(*args), lambda: route.run(*args), budget_s=seconds)
    evaluation = Evaluation(Candidate(f"{route.name} route", None, []), timing=timing)
    if not evaluation.accepted:
        evaluation.rejected = (
            f"not {MIN_GAIN:.1%} faster than Inductor as is with confidence "
            f"(ratio {timing.ratio:.3f}, 95% CI [{timing.ci_low:.3f}, {timing.ci_high:.3f}])"
        )
    return evaluation


def _inductor_decision(gm, args, settings, plain_target, budget: Budget, left_out: dict):
    """``decide()`` over the graph's FX rule sites with Inductor (weights frozen for inference)
    against Inductor as is: (the kept contender or None, the Decision, the sites found)."""
    fmt, _ = registry.format_named("fx")
    frozen = bool(weight_inputs(gm, args))
    target = plain_target.freezing(args) if frozen else plain_target
    rules = fx_rules(args, frozen=frozen)
    extra = [Candidate(FROZEN_ONLY, gm, [])] if frozen else []
    policy = registry.policy_for(settings["policy"], fmt, target)
    decision = decide(
        gm, rules, target, policy, [feeds_of(gm, args)], budget, extra=extra, baseline_target=plain_target
    )
    sites = rules.sites(gm)
    _warn_wrong_rules(gm, decision)
    if decision.chosen is None:
        return None, decision, sites
    candidate = decision.chosen.candidate
    compiled = target.compile(candidate.graph)
    name = "inductor+freezing" if frozen else "inductor+rules"
    fired = dict(collections.Counter(site.rule for site in candidate.applied))
    record = {
        "target": "inductor",
        "label": candidate.label,
        "rules": list(candidate.rules),
        "excluded": [list(c) for c in candidate.excluded],
        "freezing": frozen,
    }
    applied = list(candidate.applied)
    contender = Contender(
        name, compiled, dict(compiled.report.fused), fired, record, applied=applied, kernels=compiled.report.kernels
    )
    return _checked(gm, args, settings, left_out, name, lambda: contender), decision, sites


def _warn_wrong_rules(gm, decision: Decision) -> None:
    """A candidate whose outputs differ names the rules it applied (a wrong rule is a bug to report)."""
    for evaluation in decision.log:
        if evaluation.rejected.startswith(("not equivalent", "fails at run time")):
            rules = ", ".join(sorted({s.rule for s in evaluation.candidate.applied}))
            warnings.warn(
                f"graphopt: FX rule(s) {rules} left out of a graph of {len(gm.graph.nodes)} nodes: "
                f"'{evaluation.candidate.label}' {evaluation.rejected}",
                stacklevel=4,
            )


def build_route(gm, args, settings, budget_s, replay=None, route: str = "onnxruntime", exports=None) -> Contender:
    """One ONNX route (``route``: its runtime) as a contender (``exports``: onnx_route.compile_graph)."""
    routed = onnx_route.compile_graph(gm, args, budget_s, settings["policy"], replay, route, exports)
    chosen = routed.decision.chosen if routed.decision else None
    fused = dict(chosen.report.fused) if chosen and chosen.report else {}
    fired = dict(collections.Counter(site.rule for site in chosen.candidate.applied)) if chosen else {}
    record = {"target": route, "onnx": routed.record}
    report = chosen.report if chosen else (routed.decision.baseline.report if routed.decision else None)
    kernels = report.kernels if report else None
    return Contender(route, routed, fused, fired, record, routed.record["reason"], kernels=kernels)


def _route_only(gm, args, settings, example_inputs, route: str) -> Choice:
    """``target="onnxruntime"`` or ``"openvino"``: that route with the whole budget, Inductor as is
    when it fails."""
    left_out: dict[str, str] = {}
    built = _checked(
        gm, args, settings, left_out, route, lambda: build_route(gm, args, settings, settings["budget"], route=route)
    )
    kept = built or plain_inductor(gm, example_inputs)
    return Choice(kept, built.detail if built else f"the {route} route was left out", left_out=left_out)


def _for_training(gm, args, example_inputs) -> Choice:
    """Inductor (through aot_autograd) with every gradient-exact FX rule, the rewrite checked
    eagerly against the graph (not timed: a training step's speed is not one forward call's)."""
    rules = fx_rules(args)
    candidate = rules.rewrite("all rules", gm, [r.name for r in rules.rules])
    rewritten = Contender("FX rules, run eagerly", candidate.graph, {}, {}, {})
    problem = _problem(gm, rewritten, args) if candidate.applied else None
    if problem:
        warnings.warn(
            f"graphopt: FX rules left out of a training graph of {len(gm.graph.nodes)} nodes: {problem}", stacklevel=3
        )
    graph = gm if problem or not candidate.applied else candidate.graph
    compiled = inductor_for(example_inputs).compile(graph)
    fired = {} if graph is gm else dict(collections.Counter(site.rule for site in candidate.applied))
    record = {"target": "inductor", "label": candidate.label, "rules": sorted(fired), "excluded": [], "freezing": False}
    name = "inductor+rules" if fired else "inductor"
    return Choice(
        Contender(
            name,
            compiled,
            dict(compiled.report.fused),
            fired,
            record,
            applied=candidate.applied if fired else [],
            kernels=compiled.report.kernels,
        ),
        "it needs gradients (FX rules that keep gradients exact only)",
    )


def _problem(gm, contender: Contender, args) -> str | None:
    """``check``, with a contender that fails to run counted as wrong (never the user's call failing)."""
    try:
        return check(gm, contender, args)
    except Exception as error:  # a rewrite or a compile that does not even run is a wrong one
        return f"it failed: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"


def check(gm, contender: Contender, args) -> str | None:
    """Why ``contender`` is not equivalent to eager (on ``args`` and at a second size), or None."""
    for trial in (args, second_size(gm, args)):
        if trial is None:
            continue
        expected = [t.detach().cpu().numpy() for t in run_eager(gm, trial)]
        with torch.no_grad():
            outputs = contender.run(*trial)
        actual = [
            t.detach().cpu().numpy()
            for t in (outputs if isinstance(outputs, (list, tuple)) else [outputs])
            if isinstance(t, torch.Tensor)
        ]
        if len(actual) != len(expected):
            return f"{len(actual)} outputs where eager gives {len(expected)}"
        verdict = compare([f"output_{i}" for i in range(len(expected))], expected, actual)
        if not verdict.ok:
            size = "" if trial is args else " (at a second size)"
            return f"output {verdict.first_failure().name}{size}: {verdict.first_failure().reason}"
    return None


def _checked(gm, args, settings, left_out: dict, name: str, build) -> Contender | None:
    """The contender ``build`` makes, or None (with the reason in ``left_out`` and a warning)."""
    try:
        contender = build()
    except Exception as error:  # an export or compile failure leaves this contender out, never the user's call
        contender, problem = (
            None,
            f"it failed: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}",
        )
    else:
        problem = _problem(gm, contender, args) if settings["verify"] else None
    if problem is None:
        return contender
    left_out[name] = problem
    warnings.warn(
        f"graphopt: falling back to Inductor for a graph of {len(gm.graph.nodes)} nodes: {name} left out: {problem}",
        stacklevel=3,
    )
    return None


def _replayed(gm, args, settings, remembered: dict, example_inputs) -> Choice | None:
    """A decision from the cache, built again without timing (still checked against eager); None
    when it fails its check or cannot be built (a record of another version): decided afresh."""
    left_out: dict[str, str] = {}
    route = remembered.get("target")
    if route in ROUTES:
        build = lambda: build_route(gm, args, settings, 0, remembered["onnx"], route)  # noqa: E731
        built = _checked(gm, args, settings, left_out, route, build)
        return Choice(built, "a cached decision (not timed again)", replayed=True) if built is not None else None
    if remembered.get("rules") is None:
        return Choice(plain_inductor(gm, example_inputs), "a cached decision (not timed again)", replayed=True)
    kept = _checked(gm, args, settings, left_out, "inductor", lambda: _rebuilt(gm, args, remembered, example_inputs))
    if kept is None:
        return None
    return Choice(kept, "a cached decision (not timed again)", replayed=True)


def _rebuilt(gm, args, remembered: dict, example_inputs) -> Contender:
    """The Inductor contender a cached record describes: the same rules, site classes left out
    and frozen weights (the rewrite is deterministic, so the same graph)."""
    freeze = remembered.get("freezing", False) and not needs_gradients(args)
    rules = fx_rules(args, frozen=freeze, names=remembered["rules"])
    excluded = frozenset(tuple(c) for c in remembered.get("excluded", []))
    candidate = rules.rewrite(remembered.get("label") or "cached", gm, remembered["rules"], excluded)
    target = inductor_for(example_inputs)
    compiled = (target.freezing(args) if freeze else target).compile(candidate.graph)
    fired = dict(collections.Counter(site.rule for site in candidate.applied))
    name = "inductor+freezing" if freeze else "inductor+rules" if fired else "inductor"
    applied = list(candidate.applied)
    fused = dict(compiled.report.fused)
    return Contender(name, compiled, fused, fired, remembered, applied=applied, kernels=compiled.report.kernels)


__all__ = ["Choice", "Contender", "decide_graph"]
