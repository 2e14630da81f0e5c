"""``torch.compile(model, backend="graphopt")``: found by name through the
``torch_dynamo_backends`` entry point (this module must not also call ``register_backend``).

A backend is ``(GraphModule, example_inputs) -> callable``. Each Dynamo graph (a graph break
gives several, each decided on its own) is decided on its first call, with real inputs
(graphopt/torch/choice.py) by the engine: ``decide()`` over the graph's FX rule sites with
Inductor (weights frozen for inference) and, under ``auto``, the ONNX routes (ONNX Runtime, and
OpenVINO where installed), each judged
against Inductor as is with the engine's acceptance rule; the fastest accepted one runs it from
then on, and every evaluation is in the graph's log (``GraphDecision.evaluations``). A graph that needs gradients goes
to Inductor (through aot_autograd) with only the FX rules that keep gradients exact, never to an
inference session. A graph compiled for dynamic sizes is exported with symbolic axes, so new
sizes need no new session; Dynamo's own recompiles are the only ones.

Options (``torch.compile(..., options={...})``): ``target`` ("auto": measure; "onnxruntime";
"openvino"; "inductor"), ``budget`` (seconds graphopt may add to Inductor's compile of one graph,
default 10: each step starts only when its estimate fits, core/budget.py TorchBudget; 0 = no ONNX
search), ``verify`` (default True), ``policy`` ("learned", default, "search" or "greedy"), ``cache_dir`` (a folder
for decisions: a graph decided before, at the same input shapes, options and library versions,
is compiled the same way without timing anything; by default the user's cache folder, moved or
turned off by ``GRAPHOPT_CACHE_DIR`` (graphopt/torch/cache.py); ``None``: no cache), ``log`` (a
JSON-lines file each graph's decision and evaluation log is appended to). Each graph's decision is logged (logger
``graphopt.torch``) and kept in ``DECISIONS``; ``graphopt.torch.explain(model, *args)`` returns
those of one call, with the FX rule sites taken and left.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import torch

from graphopt.core import registry

log = logging.getLogger("graphopt.torch")


@dataclasses.dataclass(frozen=True)
class GraphDecision:
    """What the backend did with one Dynamo graph (see ``explain``)."""

    nodes: int
    target: str  # "onnxruntime", "openvino" or "inductor"
    reason: str
    seconds: float  # spent deciding and compiling
    ratio: float | None = None  # the kept contender against Inductor as is (timed), None when not timed
    ci95: tuple[float, float] | None = None
    fused: dict = dataclasses.field(default_factory=dict)  # fused kernels in what runs
    rules: dict = dataclasses.field(default_factory=dict)  # graphopt rules that rewrote the graph -> sites
    contender: str = ""  # "onnxruntime", "openvino", "inductor+freezing", "inductor+rules" or "inductor"
    timings: dict = dataclasses.field(default_factory=dict)  # each contender against Inductor: (ratio, ci95)
    left_out: dict = dataclasses.field(default_factory=dict)  # contender -> why it was left out
    cached: bool = False
    evaluations: list = dataclasses.field(default_factory=list)  # the graph's evaluation log (EvaluationLog.records())
    sites_taken: list = dataclasses.field(default_factory=list)  # FX rule sites ("rule@node") in what runs
    sites_left: list = dataclasses.field(default_factory=list)  # FX rule sites found and not taken
    kernels: int | None = None  # kernels in what runs (Inductor's generated kernels; ORT's nodes on a route)
    inductor_kernels: int | None = None  # kernels Inductor as is runs for the graph, in the same report's terms


DECISIONS: list[GraphDecision] = []  # every graph decided in this process, in order


def explain(model, *args, **kwargs) -> list[GraphDecision]:
    """Compile ``model`` with this backend, call it once on ``args`` (inference), and return
    what was decided for each of its graphs: target, ratio with interval, fusions, time."""
    torch._dynamo.reset()
    before = len(DECISIONS)
    options = kwargs.pop("options", None)
    with torch.no_grad():
        torch.compile(model, backend="graphopt", options=options)(*args, **kwargs)
    return DECISIONS[before:]


DEFAULTS = {
    "target": "auto",
    "budget": 10.0,
    "verify": True,
    "policy": registry.DEFAULT_POLICY,
    "cache_dir": "default",  # graphopt/torch/cache.py: the user's cache folder, or GRAPHOPT_CACHE_DIR
    "log": None,
}
TARGETS = ("auto", "onnxruntime", "openvino", "inductor")


def graphopt_backend(gm: torch.fx.GraphModule, example_inputs, options: dict | None = None, **kwargs):
    settings = DEFAULTS | dict(options or {}) | kwargs
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(
            f"graphopt backend: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}"
        )
    if settings["target"] not in TARGETS:
        raise ValueError(f"graphopt backend: target {settings['target']!r}; choose from {', '.join(TARGETS)}")
    if settings["policy"] not in registry.POLICIES:
        raise ValueError(f"graphopt backend: policy {settings['policy']!r}; choose from {', '.join(registry.POLICIES)}")
    return _Graph(gm, list(example_inputs), settings)


class _Graph:
    """One Dynamo graph: decided on its first call, again if a weight baked into a session changes."""

    def __init__(self, gm, example_inputs, settings):
        self.gm, self.example_inputs, self.settings = gm, example_inputs, settings
        self.run = None

    def __call__(self, *args):
        if self.run is None or _weights_changed(self.run, args):
            self.run = self._decide(list(args))
        return self.run(*args)

    def _decide(self, args):
        from graphopt.torch.cache import DecisionCache, folder_for
        from graphopt.torch.choice import decide_graph

        start = time.monotonic()
        folder = folder_for(self.settings["cache_dir"])
        cache = DecisionCache.for_graph(folder, self.gm, args, self.settings) if folder else None
        remembered = cache.load() if cache else None
        choice = decide_graph(self.gm, args, self.settings, remembered, self.example_inputs)
        if cache and not choice.replayed:  # decided now (or a cached record that failed its check: replaced)
            cache.store(choice.kept.record)
        kept = choice.kept
        taken, left = _sites(choice)
        decision = GraphDecision(
            len(self.gm.graph.nodes),
            kept.target,
            _reason(choice),
            time.monotonic() - start,
            choice.ratio,
            choice.ci95,
            kept.fused,
            kept.fired,
            kept.name,
            choice.timings,
            choice.left_out,
            choice.replayed,
            choice.log.records(),
            taken,
            left,
            kept.kernels,
            choice.inductor_kernels,
        )
        _record(decision, self.settings["log"])
        return kept.run


def _weights_changed(run, args) -> bool:
    changed = getattr(run, "weights_changed", None)
    return bool(changed and changed(args))


def _sites(choice) -> tuple[list[str], list[str]]:
    """The FX rule sites found in the graph, split into those the kept contender rewrote and the rest."""
    taken = sorted(f"{s.rule}@{s.anchor}" for s in choice.kept.applied)
    return taken, [found for s in choice.sites if (found := f"{s.rule}@{s.anchor}") not in taken]


def _reason(choice) -> str:
    detail = f" ({choice.kept.detail})" if choice.kept.detail else ""
    return f"{choice.reason}{detail}"


def _record(decision: GraphDecision, log_path=None) -> None:
    """Kept in DECISIONS, logged, and (with the ``log`` option) appended to a JSON-lines file."""
    if log_path is not None:
        import json

        with open(log_path, "a") as handle:
            handle.write(json.dumps(dataclasses.asdict(decision), default=str) + "\n")
    DECISIONS.append(decision)
    log.info(
        "graphopt: graph of %d nodes to %s in %.1f s: %s",
        decision.nodes,
        decision.contender,
        decision.seconds,
        decision.reason,
    )
