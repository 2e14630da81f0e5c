"""One Dynamo graph's decision: which compiler runs it, measured, not assumed.

The contenders are the ONNX Runtime route (graphopt's ONNX path, then one ORT session), Inductor
with graphopt's FX rules and (inference) its weights frozen into the kernels, and Inductor as is. Each is built and checked against the GraphModule
run eagerly, on the real inputs and at a second size of each dynamic dimension; one that fails
to build or to match is left out with a warning naming it (an FX rule that changes outputs is
named and left out before Inductor compiles). Under ``auto`` the survivors are timed interleaved
against Inductor as is, and the fastest is kept; Inductor as is wins ties (within MIN_GAIN).
A decision found in the cache is replayed: only its contender is built, nothing is timed.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import logging
import time
import warnings

import torch

from graphopt.budget import contender_timing_s, inductor_reserve_s
from graphopt.evaluation_log import MIN_GAIN
from graphopt.formats.fx import run_eager
from graphopt.formats.fx.resize import second_size
from graphopt.formats.fx.weights import weight_inputs
from graphopt.measure import interleaved
from graphopt.targets.inductor import fx_rules
from graphopt.verify import compare

log = logging.getLogger("graphopt.torch")
ORT_ROUTE = "graphopt.targets.onnxruntime.torch_route"  # imported on first use (onnx, onnxruntime)


@dataclasses.dataclass
class Contender:
    name: str  # "onnxruntime", "inductor+freezing", "inductor+rules", "inductor"
    run: object  # called with the GraphModule's inputs
    fused: dict
    fired: dict  # rules that rewrote the graph -> sites
    record: dict  # what to store to replay it
    detail: str = ""  # the ONNX path's own reason, FX rules left out

    @property
    def target(self) -> str:
        return "onnxruntime" if self.name == "onnxruntime" else "inductor"


@dataclasses.dataclass
class Choice:
    kept: Contender
    reason: str
    ratio: float | None = None  # kept against Inductor as is (timed), None when not timed
    ci95: tuple[float, float] | None = None
    timings: dict = dataclasses.field(default_factory=dict)  # contender -> (ratio, ci95) against Inductor
    left_out: dict = dataclasses.field(default_factory=dict)  # contender -> why


def build_ort(gm, args, settings, budget_s, replay=None, deadline=None) -> Contender:
    route = importlib.import_module(ORT_ROUTE).compile_graph(gm, args, budget_s, settings["policy"], replay, deadline)
    chosen = route.decision.chosen if route.decision else None
    fused = dict(chosen.report.fused) if chosen and chosen.report else {}
    fired = dict(collections.Counter(site.rule for site in chosen.candidate.applied)) if chosen else {}
    return Contender("onnxruntime", route, fused, fired, {"target": "onnxruntime", "onnx": route.record}, route.record["reason"])


def build_inductor(gm, args, rules, example_inputs=None, *, freeze: bool = False, only_if_changed: bool = False) -> Contender | None:
    """Inductor with ``rules`` (each checked eagerly, a wrong one left out by name) and, with
    ``freeze`` (inference), the weights frozen into the kernels; None when ``only_if_changed``
    and neither happened (it would be Inductor as is again)."""
    from graphopt.targets.inductor import compile_rewritten, rewritten

    graph, fired, dropped = rewritten(gm, args, list(rules)) if rules else (gm, {}, {})
    for rule, why in dropped.items():
        warnings.warn(f"graphopt: FX rule {rule} left out of a graph of {len(gm.graph.nodes)} nodes: {why}", stacklevel=2)
    if only_if_changed and not fired and not (freeze and weight_inputs(gm, args)):
        return None
    compiled = compile_rewritten(graph, fired, dropped, example_inputs if example_inputs is not None else args, args if freeze else None)
    frozen = compiled.guard is not None
    name = "inductor+freezing" if frozen else "inductor+rules" if compiled.fired else "inductor"
    detail = "; ".join(f"{rule} left out: {why}" for rule, why in compiled.dropped.items())
    record = {"target": "inductor", "fx_rules": sorted(compiled.fired), "freezing": frozen}
    return Contender(name, compiled, dict(compiled.report.fused), compiled.fired, record, detail)


def check(gm, contender: Contender, args) -> str | None:
    """Why ``contender`` is not equivalent to eager (on ``args`` and at a second size), or None."""
    for trial in (args, second_size(gm, args)):
        if trial is None:
            continue
        expected = [t.detach().cpu().numpy() for t in run_eager(gm, trial)]
        with torch.no_grad():
            outputs = contender.run(*trial)
        actual = [t.detach().cpu().numpy() for t in (outputs if isinstance(outputs, (list, tuple)) else [outputs]) if isinstance(t, torch.Tensor)]
        if len(actual) != len(expected):
            return f"{len(actual)} outputs where eager gives {len(expected)}"
        verdict = compare([f"output_{i}" for i in range(len(expected))], expected, actual)
        if not verdict.ok:
            size = "" if trial is args else " (at a second size)"
            return f"output {verdict.first_failure().name}{size}: {verdict.first_failure().reason}"
    return None


def time_against(reference: Contender, others: list[Contender], args, seconds: float) -> dict:
    """Each contender against ``reference``, interleaved: name -> Comparison."""
    results = {}
    with torch.no_grad():
        for other in others:
            results[other.name] = interleaved(lambda: reference.run(*args), lambda o=other: o.run(*args), budget_s=seconds)
    return results


def pick(reference: Contender, others: list[Contender], timings: dict) -> tuple[Contender, str]:
    """The fastest by median ratio; Inductor as is unless a contender beats it by MIN_GAIN with
    the whole 95% interval below 1 (a short timing's lucky median is not a reason to switch)."""
    best = min(others, key=lambda c: timings[c.name].ratio, default=None)
    if best is None or timings[best.name].ratio > 1 - MIN_GAIN or timings[best.name].ci_high >= 1.0:
        return reference, "no contender beat Inductor as is by more than the noise"
    t = timings[best.name]
    return best, f"{best.name} {t.ratio:.3f}x Inductor's time [{t.ci_low:.3f}, {t.ci_high:.3f}]"


def needs_gradients(args) -> bool:
    return torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


def decide_graph(gm, args, settings: dict, remembered: dict | None = None, example_inputs=None) -> Choice:
    """Build, check and (under ``auto``) time the contenders for one graph; keep one."""
    if remembered is not None:
        return _replayed(gm, args, settings, remembered, example_inputs)
    if needs_gradients(args) or settings["target"] == "inductor":
        why = "it needs gradients (FX rules that keep gradients exact only)" if needs_gradients(args) else "asked for"
        return Choice(build_inductor(gm, args, fx_rules(args), example_inputs), why)
    if settings["target"] == "auto":
        return _measured(gm, args, settings, example_inputs)
    left_out: dict[str, str] = {}
    ort = _checked(gm, args, settings, left_out, "onnxruntime", lambda: build_ort(gm, args, settings, settings["budget"]))
    kept = ort or build_inductor(gm, args, [], example_inputs)
    return Choice(kept, ort.detail if ort else "the ONNX Runtime route was left out", left_out=left_out)


def _measured(gm, args, settings, example_inputs) -> Choice:
    """``auto``: Inductor as is first (what torch.compile costs anyway); the budget then covers
    everything graphopt adds: the ORT route's export and search, Inductor with rules and frozen
    weights (about one more Inductor compile is kept back for it), and timing each contender."""
    left_out: dict[str, str] = {}
    start = time.monotonic()
    plain = build_inductor(gm, args, [], example_inputs)
    plain_s = time.monotonic() - start
    deadline = time.monotonic() + settings["budget"]
    log.debug("graphopt: inductor as is compiled in %.1f s", plain_s)
    per_contender = contender_timing_s(settings["budget"])
    ort_deadline = deadline - 2 * per_contender - inductor_reserve_s(settings["budget"], plain_s)
    ort = _checked(gm, args, settings, left_out, "onnxruntime", lambda: build_ort(gm, args, settings, settings["budget"], deadline=ort_deadline))
    log.debug("graphopt: onnxruntime route %s, %.1f s of the budget left", "built" if ort else "left out", deadline - time.monotonic())
    ruled = _inductor_contender(gm, args, settings, left_out, example_inputs)
    log.debug("graphopt: %s, %.1f s of the budget left", ruled.name if ruled else "no other Inductor contender", deadline - time.monotonic())
    others = [c for c in (ort, ruled) if c is not None]
    if not others:
        return Choice(plain, "no other contender was left", left_out=left_out)
    timings = time_against(plain, others, args, per_contender)
    kept, reason = pick(plain, others, timings)
    ratios = {name: (t.ratio, (t.ci_low, t.ci_high)) for name, t in timings.items()}
    timed = timings.get(kept.name)
    return Choice(kept, reason, timed.ratio if timed else None, (timed.ci_low, timed.ci_high) if timed else None, ratios, left_out)


def _inductor_contender(gm, args, settings, left_out: dict, example_inputs) -> Contender | None:
    """Inductor with the FX rules and its weights frozen (inference); with rules alone when
    freezing fails; None when neither changes anything."""
    with_freezing = fx_rules(args, frozen=True)
    frozen = _checked(gm, args, settings, left_out, "inductor+freezing",
                      lambda: build_inductor(gm, args, with_freezing, example_inputs, freeze=True, only_if_changed=True))  # fmt: skip
    if frozen is not None or "inductor+freezing" not in left_out:
        return frozen
    return _checked(gm, args, settings, left_out, "inductor+rules", lambda: build_inductor(gm, args, fx_rules(args), example_inputs, only_if_changed=True))


def _checked(gm, args, settings, left_out: dict, name: str, build) -> Contender | None:
    """The contender ``build`` makes, or None (with the reason in ``left_out`` and a warning)."""
    try:
        contender = build()
        if contender is None:  # nothing to offer (no FX rule fired): not a failure
            return None
        problem = check(gm, contender, args) if settings["verify"] else None
    except Exception as error:  # an export or compile failure leaves this contender out, never the user's call
        problem = f"it failed: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
    if problem is None:
        return contender
    left_out[name] = problem
    warnings.warn(f"graphopt: falling back to Inductor for a graph of {len(gm.graph.nodes)} nodes: {name} left out: {problem}", stacklevel=3)
    return None


def _replayed(gm, args, settings, remembered: dict, example_inputs) -> Choice:
    """A decision from the cache, built again without timing (still checked against eager)."""
    if remembered["target"] == "onnxruntime":
        left_out: dict[str, str] = {}
        ort = _checked(gm, args, settings, left_out, "onnxruntime", lambda: build_ort(gm, args, settings, 0, remembered["onnx"]))
        if ort is not None:
            return Choice(ort, "a cached decision (not timed again)")
        return Choice(build_inductor(gm, args, [], example_inputs), "a cached decision failed its check", left_out=left_out)
    freeze = remembered.get("freezing", False) and not needs_gradients(args)
    rules = fx_rules(args, remembered.get("fx_rules", []), frozen=freeze)
    return Choice(build_inductor(gm, args, rules, example_inputs, freeze=freeze), "a cached decision (not timed again)")


__all__ = ["Choice", "Contender", "decide_graph"]
