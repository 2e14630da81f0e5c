"""``torch.compile(model, backend="graphopt")``: found by name through the
``torch_dynamo_backends`` entry point (this module must not also call ``register_backend``).

A backend is ``(GraphModule, example_inputs) -> callable``. Per graph:

- a graph that needs gradients goes to Inductor (``compile_fx``), never to an inference session;
- otherwise the ONNX Runtime route (targets/onnxruntime/torch_route.py): parameters baked in as
  initializers, graphopt's ONNX path decides the rewrites in memory, one ORT session runs it;
- the first call is checked against the GraphModule run eagerly; a graph that fails to export
  or to match falls back to Inductor with a warning that says why.

Options (``torch.compile(..., options={...})``): ``target`` ("auto" = "onnxruntime" for now, or
"inductor"), ``budget`` (seconds graphopt may spend deciding one graph, default 30; 0 = no
search, the exported graph as is), ``verify`` (default True), ``policy`` ("search" or "greedy"),
``cache_dir`` (a folder for decisions: a graph decided before, at the same input shapes and
library versions, is rewritten the same way without timing anything).
Each graph's decision is logged (logger ``graphopt.torch``) and kept in ``DECISIONS``;
``graphopt.torch.explain(model, *args)`` returns those of one call.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
import warnings

import torch

from graphopt.verify import compare

log = logging.getLogger("graphopt.torch")


@dataclasses.dataclass(frozen=True)
class GraphDecision:
    """What the backend did with one Dynamo graph (see ``explain``)."""

    nodes: int
    target: str  # "onnxruntime" or "inductor"
    reason: str
    seconds: float  # spent deciding and compiling
    ratio: float | None = None  # the kept ONNX graph against the exported one, both under ORT
    ci95: tuple[float, float] | None = None
    fused: dict = dataclasses.field(default_factory=dict)  # fused kernels in what ORT runs


DECISIONS: list[GraphDecision] = []  # every graph decided in this process, in order


def explain(model, *args, **kwargs) -> list[GraphDecision]:
    """Compile ``model`` with this backend, call it once on ``args`` (inference), and return
    what was decided for each of its graphs: target, ratio with interval, fusions, time."""
    torch._dynamo.reset()
    before = len(DECISIONS)
    with torch.no_grad():
        torch.compile(model, backend="graphopt", options=kwargs.pop("options", None))(*args, **kwargs)
    return DECISIONS[before:]
DEFAULTS = {"target": "auto", "budget": 30.0, "verify": True, "policy": "search", "cache_dir": None}
ROUTES = {"onnxruntime": "graphopt.targets.onnxruntime.torch_route"}  # imported on first use


def graphopt_backend(gm: torch.fx.GraphModule, example_inputs, options: dict | None = None, **kwargs):
    settings = DEFAULTS | dict(options or {}) | kwargs
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"graphopt backend: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    why = _inductor_only(gm, example_inputs, settings)
    if why:
        start = time.monotonic()
        compiled = _inductor(gm, example_inputs)
        _record(GraphDecision(len(gm.graph.nodes), "inductor", why, time.monotonic() - start))
        return compiled
    return _Guarded(gm, list(example_inputs), settings)


def _inductor_only(gm, inputs, settings) -> str | None:
    if settings["target"] == "inductor":
        return "asked for"
    if torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in inputs):
        return "it needs gradients"
    if not all(isinstance(t, torch.Tensor) for t in inputs):
        return "symbolic sizes among its inputs (dynamic shapes go to Inductor for now)"
    if any(t.device.type != "cpu" for t in inputs):
        return "inputs on a device the ORT route does not handle yet"
    return None


def _inductor(gm, inputs):
    from torch._inductor.compile_fx import compile_fx

    return compile_fx(gm, inputs)


class _Guarded:
    """Compiles on the first call (checking it against eager), again if a baked weight changes."""

    def __init__(self, gm, inputs, settings):
        self.gm, self.inputs, self.settings = gm, inputs, settings
        self.route = None
        self.fallback = None

    def __call__(self, *args):
        if self.fallback is not None:
            return self.fallback(*args)
        if self.route is None or self.route.weights_changed(args):
            self._compile(list(args))
            if self.fallback is not None:
                return self.fallback(*args)
        return self.route(*args)

    def _compile(self, args) -> None:
        start = time.monotonic()
        route = importlib.import_module(ROUTES["onnxruntime"])
        try:
            self.route = route.compile_graph(self.gm, args, self.settings["budget"], self.settings["policy"], self.settings["cache_dir"])
            problem = self._check(args) if self.settings["verify"] else None
        except Exception as error:  # an export or session failure is a fallback, not the user's crash
            problem = f"the ONNX Runtime route failed: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        nodes = len(self.gm.graph.nodes)
        if problem:
            warnings.warn(f"graphopt: falling back to Inductor for a graph of {nodes} nodes: {problem}", stacklevel=3)
            self.fallback = _inductor(self.gm, args)
            _record(GraphDecision(nodes, "inductor", f"fallback: {problem}", time.monotonic() - start))
            return
        decision = self.route.decision
        chosen = decision.chosen if decision else None
        timing = chosen.final_timing if chosen else None
        reason = decision.reason if decision else "a cached decision, or no search (budget 0)"
        _record(GraphDecision(nodes, "onnxruntime", reason, time.monotonic() - start,
                              timing.ratio if timing else None, (timing.ci_low, timing.ci_high) if timing else None,
                              dict(chosen.report.fused) if chosen else {}))  # fmt: skip

    def _check(self, args) -> str | None:
        """The route's outputs against the GraphModule run eagerly, at verify's fp32 tolerances."""
        with torch.no_grad():
            expected = [t.detach().cpu().numpy() for t in _flat(self.gm(*args))]
        actual = [t.numpy() for t in self.route(*args)]
        if len(actual) != len(expected):
            return f"{len(actual)} outputs where eager gives {len(expected)}"
        names = [f"output_{i}" for i in range(len(expected))]
        verdict = compare(names, expected, actual)
        return None if verdict.ok else f"output {verdict.first_failure().name}: {verdict.first_failure().reason}"


def _record(decision: GraphDecision) -> None:
    DECISIONS.append(decision)
    log.info("graphopt: graph of %d nodes to %s in %.1f s: %s", decision.nodes, decision.target, decision.seconds, decision.reason)


def _flat(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for t in outputs if isinstance(t, torch.Tensor)]
