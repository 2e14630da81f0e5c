"""A Dynamo graph run by ONNX Runtime after graphopt's ONNX path: the `onnxruntime` route of
``torch.compile(model, backend="graphopt")``.

Dynamo hands the backend a GraphModule whose placeholders include the module's parameters. ORT
fuses and prepacks only what it sees as constant weights, so parameters are baked in as
initializers, as Inductor's ``freezing`` would for inference (no grad): the graph is exported
with torch's ONNX exporter with only the real inputs left as inputs. The exported model is
decided in memory (``decide``) like any ONNX file, and the kept graph runs in one ORT session.
A guard notices when the user changes a baked weight (its version counter moves) and the caller
compiles again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from graphopt.atomic import atomic_path
from graphopt.budget import Budget
from graphopt.decide import Decision, decide
from graphopt.formats.onnx import OnnxFormat
from graphopt.formats.onnx.adapter import prepare
from graphopt.passes.onnx import all_rules
from graphopt.search.policies import POLICIES
from graphopt.targets.onnxruntime.levers import SessionSettings
from graphopt.targets.onnxruntime.target import OrtTarget


class _Frozen(torch.nn.Module):
    """``gm`` with its parameter inputs held as buffers: exported, they become initializers."""

    def __init__(self, gm: torch.fx.GraphModule, inputs: list, baked: list[int]):
        super().__init__()
        self.gm = gm
        self.count = len(inputs)
        self.baked = baked
        for i in baked:
            self.register_buffer(f"baked_{i}", inputs[i].detach(), persistent=True)

    def forward(self, *runtime):
        runtime = iter(runtime)
        args = [getattr(self, f"baked_{i}") if i in self.baked else next(runtime) for i in range(self.count)]
        return tuple(self.gm(*args))


def baked_indices(inputs: list) -> list[int]:
    """The inputs that are the module's parameters (what Inductor's freezing would fold)."""
    return [i for i, t in enumerate(inputs) if isinstance(t, torch.nn.Parameter)]


def export(gm: torch.fx.GraphModule, inputs: list, baked: list[int]):
    """The graph as an onnx_ir model, parameters as initializers, real inputs named input_<i>."""
    runtime = tuple(t for i, t in enumerate(inputs) if i not in baked)
    names = [f"input_{i}" for i in range(len(inputs)) if i not in baked]
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Frozen(gm, inputs, baked).eval(), runtime, dynamo=True, input_names=names, optimize=True)
    return program.model


@dataclasses.dataclass
class OrtRoute:
    """A compiled graph: call it with the GraphModule's inputs (parameters included)."""

    compiled: object  # the ORT session of the kept graph (CompiledGraph)
    input_names: list[str]
    runtime: list[int]  # positions of the GraphModule's inputs that the session takes
    versions: list[tuple[int, int]]  # (position, version counter) of each baked weight
    decision: Decision | None

    def weights_changed(self, args) -> bool:
        return any(args[i]._version != version for i, version in self.versions)

    def __call__(self, *args):
        feeds = {name: args[i].detach().cpu().numpy() for name, i in zip(self.input_names, self.runtime)}
        return tuple(torch.from_numpy(np.asarray(o)) for o in self.compiled.run(feeds))


def compile_graph(gm: torch.fx.GraphModule, inputs: list, budget_s: float, policy: str = "search", cache_dir=None) -> OrtRoute:
    """Export, decide with graphopt's ONNX path (or reuse a cached decision), and make the ORT
    session of the kept graph."""
    baked = baked_indices(inputs)
    model = export(gm, inputs, baked)
    fmt, target = OnnxFormat(), OrtTarget()
    prepared = prepare(fmt.copy(model))
    rules = fmt.rules(all_rules(), model)
    runtime = [i for i in range(len(inputs)) if i not in baked]
    names = [v.name for v in model.graph.inputs]
    feeds = [{name: inputs[i].detach().cpu().numpy() for name, i in zip(names, runtime)}]
    cache = DecisionCache(cache_dir, fmt.fingerprint(prepared), feeds[0], budget_s, policy) if cache_dir else None
    remembered = cache.load() if cache else None
    decision = None
    if remembered is not None:
        graph, lever = _replay(remembered, prepared, rules, model)
    else:
        if budget_s > 0:
            decision = decide(prepared, rules, target, POLICIES[policy](), feeds, Budget(budget_s), baseline_graph=model)
        graph = decision.chosen.candidate.graph if decision and decision.chosen else model
        lever = decision.lever.lever if decision else None
        if cache and decision:
            cache.store(decision)
    compiled = (target.with_lever(lever) if lever else target).compile(graph, report=False)
    return OrtRoute(compiled, names, runtime, [(i, inputs[i]._version) for i in baked], decision)


def _replay(remembered: dict, prepared, rules, model):
    """The cached decision applied again: the same rules, the same site classes left out (the
    rewrite is deterministic, so the same graph), and the same session settings."""
    graph = model
    if remembered["rules"] is not None:
        excluded = frozenset(tuple(c) for c in remembered["excluded"])
        graph = rules.rewrite(remembered["label"], prepared, remembered["rules"], excluded).graph
    lever = SessionSettings(remembered["level"], tuple(remembered["disabled_optimizers"])) if remembered["level"] else None
    return graph, lever


@dataclasses.dataclass
class DecisionCache:
    """Decisions on disk, keyed by the exported graph's fingerprint, the input shapes and dtypes,
    the budget and policy, and the library versions: a second process does not measure again.
    Only the decision is stored (rules, site classes left out, session settings), never weights."""

    folder: object
    fingerprint: str
    feeds: dict
    budget_s: float
    policy: str

    @property
    def path(self) -> Path:
        import hashlib

        import onnxruntime

        shapes = sorted((name, tuple(a.shape), str(a.dtype)) for name, a in self.feeds.items())
        key = repr((self.fingerprint, shapes, self.budget_s, self.policy, torch.__version__, onnxruntime.__version__))
        return Path(self.folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def store(self, decision: Decision) -> None:
        chosen, lever = decision.chosen, decision.lever.lever
        record = {
            "label": chosen.candidate.label if chosen else None,
            "rules": list(chosen.candidate.rules) if chosen else None,
            "excluded": [list(c) for c in chosen.candidate.excluded] if chosen else [],
            "level": lever.level if lever else None,
            "disabled_optimizers": list(lever.disabled_optimizers) if lever else [],
            "reason": decision.reason,
        }
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
