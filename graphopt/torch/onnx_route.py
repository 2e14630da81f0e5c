"""The ONNX routes of ``torch.compile(model, backend="graphopt")``: a Dynamo graph converted to
ONNX (weights baked in as initializers, formats/onnx/from_fx.py), decided in memory by the engine
like any ONNX file (``decide`` with the ONNX rules the route's runtime reads), and run by that
runtime: ONNX Runtime through I/O binding (targets/onnxruntime/torch_binding.py), or OpenVINO,
compiled for the shapes the graph was first called with (targets/openvino/torch_binding.py).

A guard notices when the user changes a baked weight (in place or swapped) and the caller
compiles again. Weights are the module's parameters and the buffers the graph only reads
(formats/fx/weights.py), so BatchNorm's running statistics fold into the convolution. A decision
made before (the torch backend's cache) is replayed: the same rules, site classes left out and
session settings, nothing timed. Everything is reached through the registry and the protocols.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from graphopt.core import registry
from graphopt.core.budget import Budget
from graphopt.core.decide import Decision, bound, decide
from graphopt.core.protocols import Candidate, OpVocabulary, SearchContext
from graphopt.formats.fx.weights import WeightGuard, weight_inputs

ROUTES = ("onnxruntime", "openvino")  # the contenders' names


@dataclasses.dataclass
class OnnxRoute:
    """A compiled graph: call it with the GraphModule's inputs (parameters included)."""

    run: object  # the kept graph's compilation, bound to torch tensors
    compiled: object  # that compilation (the target's Compiled)
    guard: WeightGuard  # notices a baked weight changed
    decision: Decision | None
    record: dict  # what was decided, to replay it (rules, site classes left out, session settings)
    seconds: dict = dataclasses.field(default_factory=dict)  # "export" (0 when shared), "search"

    def weights_changed(self, args) -> bool:
        return self.guard.changed(args)

    def __call__(self, *args):
        return self.run(*args)


def target_name(route: str, args) -> str:
    """The route's target for where the inputs are: ORT's CUDA provider for CUDA tensors
    (untested here: no GPU); OpenVINO on the CPU, which takes CPU tensors only."""
    devices = {a.device.type for a in args if isinstance(a, torch.Tensor)}
    if route == "openvino":
        if devices - {"cpu"}:
            raise ValueError(f"the OpenVINO route takes CPU tensors; these lie on {', '.join(sorted(devices))}")
        return "openvino-cpu"
    return "ort-cuda" if "cuda" in devices else "ort-cpu"


def compile_graph(
    gm: torch.fx.GraphModule,
    inputs: list,
    budget_s: float,
    policy: str = registry.DEFAULT_POLICY,
    replay: dict | None = None,
    route: str = "onnxruntime",
    exports: dict | None = None,
) -> OnnxRoute:
    """Export (once per ``exports``, a dict the routes of one graph share), decide with graphopt's
    ONNX path on the route's runtime within ``budget_s`` (or replay a decision made before), and
    compile the kept graph. With no time to search (0), the learned policy's top prediction is
    taken unmeasured when it has weights for the runtime: the route's one timing against Inductor
    and its eager check (torch/choice.py) confirm it."""
    baked = weight_inputs(gm, inputs)
    started = time.monotonic()
    model, runtime = exported(gm, inputs, baked, {} if exports is None else exports)
    seconds = {"export": time.monotonic() - started}
    fmt, all_rules = registry.format_named("onnx")
    names = [v.name for v in model.graph.inputs]
    # (a replay on ORT needs none: bfloat16 tensors have no numpy form)
    feeds = [] if replay is not None and route == "onnxruntime" else [_numpy_feeds(inputs, names, runtime)]
    target = bound(registry.target_for(target_name(route, inputs)), feeds)
    prepared = fmt.copy(model)
    fmt.prepare(prepared)
    rules = fmt.rules(all_rules, model, runs_op=target.runs_op if isinstance(target, OpVocabulary) else None)
    if replay is not None:
        (graph, lever), decision, predicted = _replay(replay, prepared, rules, model, target), None, None
    else:
        started = time.monotonic()
        graph, lever, decision, predicted = _decided(fmt, prepared, rules, model, target, feeds, budget_s, policy)
        seconds["search"] = time.monotonic() - started  # (or the prediction standing in for one)
    compiled = (target.with_lever(lever) if lever else target).compile(graph, report=False)
    record = replay if replay is not None else _record(decision, predicted)
    return OnnxRoute(
        target.bind_torch(compiled, names, runtime), compiled, WeightGuard.of(inputs, baked), decision, record, seconds
    )


def _decided(fmt, prepared, rules, model, target, feeds, budget_s: float, policy: str):
    """(graph, lever, decision, prediction): the search's choice within ``budget_s``, or with no
    time to search the learned policy's top prediction (the export as is without one)."""
    if budget_s <= 0:
        predicted = top_prediction(fmt, prepared, rules, model, target, feeds) if policy == "learned" else None
        return (predicted.graph if predicted is not None else model), None, None, predicted
    searcher = registry.policy_for(policy, fmt, target)
    decision = decide(prepared, rules, target, searcher, feeds, Budget(budget_s), baseline_graph=model)
    graph = decision.chosen.candidate.graph if decision.chosen else model
    return graph, decision.lever.lever, decision, None


def exported(gm: torch.fx.GraphModule, inputs: list, baked: list[int], exports: dict):
    """The graph as ONNX (model, runtime input positions), exported once per ``exports``: each
    route gets its own copy (a route's preparation and rewrites never reach another's)."""
    fmt, _ = registry.format_named("onnx")
    if "model" not in exports:
        exports["model"], exports["runtime"] = registry.converter("fx", "onnx")(gm, inputs, baked)
    return fmt.copy(exports["model"]), exports["runtime"]


def _numpy_feeds(inputs: list, names: list[str], runtime: list[int]) -> dict:
    return {name: inputs[i].detach().cpu().numpy() for name, i in zip(names, runtime)}


def _replay(remembered: dict, prepared, rules, model, target):
    """A decision applied again: the same rules, the same site classes left out (the rewrite is
    deterministic, so the same graph), and the same session settings."""
    graph = model
    if remembered.get("rules") is not None:
        excluded = frozenset(tuple(c) for c in remembered["excluded"])
        graph = rules.rewrite(remembered["label"], prepared, remembered["rules"], excluded).graph
    return graph, target.lever_from_record(remembered.get("lever"))


def top_prediction(fmt, prepared, rules, model, target, feeds):
    """The learned policy's best-predicted candidate for ``model`` on ``target``, not measured
    (None without weights for the target, or when no rule applies or the ranker cannot tell)."""
    from graphopt.policies import learned_policy

    learned = learned_policy(fmt, target)  # the Learned class itself
    if learned.ranker is None or not feeds:
        return None
    context = SearchContext(feeds, target.compile(model).report, target.name)
    candidate = next(learned.propose(prepared, rules, None, context), None)
    return candidate if learned.explanation else None  # no explanation: the search's order, not a prediction


def _record(decision: Decision | None, predicted: Candidate | None = None) -> dict:
    chosen = decision.chosen.candidate if decision and decision.chosen else predicted
    lever = decision.lever.lever if decision else None
    reason = "no search (budget 0): the exported graph as is"
    if predicted is not None:
        reason = f"no time to search: the learned policy's top prediction '{predicted.label}', timed as the route"
    return {
        "label": chosen.label if chosen else None,
        "rules": list(chosen.rules) if chosen else None,
        "excluded": [list(c) for c in chosen.excluded] if chosen else [],
        "lever": lever.record() if lever else None,
        "reason": decision.reason if decision else reason,
    }
