"""A Dynamo graph run by ONNX Runtime after graphopt's ONNX path: the `onnxruntime` route of
``torch.compile(model, backend="graphopt")``.

Dynamo hands the backend a GraphModule whose placeholders include the module's parameters. ORT
fuses and prepacks only what it sees as constant weights, so parameters are baked in as
initializers, as Inductor's ``freezing`` would for inference (no grad): the graph is exported
with torch's ONNX exporter with only the real tensor inputs left as inputs. A graph compiled
with dynamic shapes takes ``SymInt`` placeholders: they are read from the tensors' sizes inside
the exported module, and the tensors' symbolic dims are exported as symbolic axes, so one
session serves every size. The exported model is decided in memory (``decide``) like any ONNX
file, and the kept graph runs in one ORT session through I/O binding: inputs bound where the
tensors lie, outputs handed back as torch tensors through DLPack, nothing copied through numpy.
A guard notices when the user changes a baked weight (in place or swapped) and the caller
compiles again. Weights are the module's parameters and the buffers the graph only reads
(``formats/fx/weights.py``), so BatchNorm's running statistics fold into the convolution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import threading
import time
import warnings

import numpy as np
import torch

from graphopt.budget import Budget
from graphopt.decide import Decision, decide
from graphopt.formats.fx.graphs import symbol_sources, symbolic_dims
from graphopt.formats.fx.weights import WeightGuard, weight_inputs
from graphopt.formats.onnx import OnnxFormat
from graphopt.formats.onnx.adapter import prepare
from graphopt.passes.onnx import all_rules
from graphopt.registry import DEFAULT_POLICY, policy_for
from graphopt.targets.onnxruntime.levers import SessionSettings
from graphopt.targets.onnxruntime.target import OrtTarget


class _Frozen(torch.nn.Module):
    """``gm`` with its weight inputs held as buffers (exported, they become initializers) and
    its SymInt inputs read from the sizes of the tensors it is given."""

    def __init__(self, gm: torch.fx.GraphModule, inputs: list, baked: list[int], symbols: dict[int, tuple[int, int]]):
        super().__init__()
        self.gm, self.count, self.baked, self.symbols = gm, len(inputs), baked, symbols
        for i in baked:
            self.register_buffer(f"baked_{i}", inputs[i].detach(), persistent=True)

    def forward(self, *runtime):
        given = dict(zip(runtime_positions(self.count, self.baked, self.symbols), runtime))
        args = []
        for i in range(self.count):
            if i in self.baked:
                args.append(getattr(self, f"baked_{i}"))
            elif i in self.symbols:
                position, dim = self.symbols[i]
                args.append(given[position].shape[dim])
            else:
                args.append(given[i])
        return tuple(self.gm(*args))


def runtime_positions(count: int, baked, symbols) -> list[int]:
    """Positions of the GraphModule's inputs that the session takes: tensors that are not weights."""
    return [i for i in range(count) if i not in baked and i not in symbols]


def export(gm: torch.fx.GraphModule, inputs: list, baked: list[int]):
    """The graph as an onnx_ir model: parameters as initializers, real inputs named input_<i>,
    symbolic dims as symbolic axes."""
    symbols = symbol_sources(gm)
    positions = runtime_positions(len(inputs), baked, symbols)
    dynamic = symbolic_dims(gm)
    shapes = tuple({d: torch.export.Dim.DYNAMIC for d in dynamic.get(i, ())} or None for i in positions)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Frozen(gm, inputs, baked, symbols).eval(), tuple(inputs[i] for i in positions), dynamo=True,
                                    input_names=[f"input_{i}" for i in positions], optimize=True,
                                    dynamic_shapes=(shapes,) if dynamic else None)  # fmt: skip (one entry: forward(*runtime))
    return program.model, positions


@dataclasses.dataclass
class OrtRoute:
    """A compiled graph: call it with the GraphModule's inputs (parameters included)."""

    compiled: object  # the ORT session of the kept graph (CompiledGraph)
    input_names: list[str]
    runtime: list[int]  # positions of the GraphModule's inputs that the session takes
    guard: WeightGuard  # notices a baked weight changed
    decision: Decision | None
    record: dict  # what was decided, to replay it (rules, site classes left out, session settings)
    device: str = "cpu"  # where outputs are bound ("cuda" when the inputs are CUDA tensors)
    output_names: list[str] = dataclasses.field(default_factory=list)

    def weights_changed(self, args) -> bool:
        return self.guard.changed(args)

    def __call__(self, *args):
        session, binding = self.compiled.session, self._binding()
        held = []  # the contiguous tensors must outlive the run
        for name, i in zip(self.input_names, self.runtime):
            tensor = args[i].detach().contiguous()
            held.append(tensor)
            binding.bind_input(name, tensor.device.type, tensor.device.index or 0, _numpy_dtype(tensor.dtype), tuple(tensor.shape), tensor.data_ptr())
        # Outputs are bound afresh each call: a binding kept from the last call would make ORT
        # write into the buffers of the tensors it handed back then.
        binding.clear_binding_outputs()
        for name in self.output_names:
            binding.bind_output(name, self.device)
        session.run_with_iobinding(binding)
        return tuple(torch.from_dlpack(value._get_c_value().to_dlpack()) for value in binding.get_outputs())

    def _binding(self):
        """One I/O binding per thread (a binding is not safe to share between concurrent calls)."""
        local = self.__dict__.setdefault("_local", threading.local())
        if not hasattr(local, "binding"):
            local.binding = self.compiled.session.io_binding()
        return local.binding


@functools.cache
def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The element type to bind (bfloat16 has no numpy type: torch raises, the caller falls back)."""
    return torch.empty((), dtype=dtype).numpy().dtype


def _ort_device(args) -> str:
    """Outputs where the inputs are: "cuda" for CUDA tensors (CUDA execution provider; untested
    here, no GPU on this machine), else "cpu"."""
    devices = {a.device.type for a in args if isinstance(a, torch.Tensor)}
    return "cuda" if "cuda" in devices else "cpu"


SESSION_RESERVE_S = 1.0  # kept back from a deadline for the final session
MIN_SEARCH_S = 8.0  # below this a search cannot compile, verify and time even one candidate: none is run


def compile_graph(gm: torch.fx.GraphModule, inputs: list, budget_s: float, policy: str = DEFAULT_POLICY, replay: dict | None = None,
                  deadline: float | None = None) -> OrtRoute:  # fmt: skip
    """Export, decide with graphopt's ONNX path (or replay a decision made before), and make the
    ORT session of the kept graph. The search gets ``budget_s``, less when ``deadline``
    (time.monotonic()) comes first; with under MIN_SEARCH_S left it is skipped."""
    baked = weight_inputs(gm, inputs)
    model, runtime = export(gm, inputs, baked)
    if deadline is not None:
        budget_s = min(budget_s, deadline - time.monotonic() - SESSION_RESERVE_S)
        budget_s = budget_s if budget_s >= MIN_SEARCH_S else 0.0
    fmt = OnnxFormat()
    device = _ort_device(inputs)
    target = OrtTarget(provider="CUDAExecutionProvider") if device == "cuda" else OrtTarget()
    prepared = prepare(fmt.copy(model))
    rules = fmt.rules(all_rules(), model)
    names = [v.name for v in model.graph.inputs]
    decision = None
    if replay is not None:
        graph, lever = _replay(replay, prepared, rules, model)
    else:
        feeds = [{name: inputs[i].detach().cpu().numpy() for name, i in zip(names, runtime)}]
        if budget_s > 0:
            decision = decide(prepared, rules, target, policy_for(policy, fmt, target), feeds, Budget(budget_s), baseline_graph=model)
        graph = decision.chosen.candidate.graph if decision and decision.chosen else model
        lever = decision.lever.lever if decision else None
    compiled = (target.with_lever(lever) if lever else target).compile(graph, report=False)
    record = replay if replay is not None else _record(decision)
    outputs = [o.name for o in compiled.session.get_outputs()]
    return OrtRoute(compiled, names, runtime, WeightGuard.of(inputs, baked), decision, record, device, outputs)


def _replay(remembered: dict, prepared, rules, model):
    """A decision applied again: the same rules, the same site classes left out (the rewrite is
    deterministic, so the same graph), and the same session settings."""
    graph = model
    if remembered.get("rules") is not None:
        excluded = frozenset(tuple(c) for c in remembered["excluded"])
        graph = rules.rewrite(remembered["label"], prepared, remembered["rules"], excluded).graph
    lever = SessionSettings(remembered["level"], tuple(remembered["disabled_optimizers"])) if remembered.get("level") else None
    return graph, lever


def _record(decision: Decision | None) -> dict:
    chosen = decision.chosen if decision else None
    lever = decision.lever.lever if decision else None
    return {
        "label": chosen.candidate.label if chosen else None,
        "rules": list(chosen.candidate.rules) if chosen else None,
        "excluded": [list(c) for c in chosen.candidate.excluded] if chosen else [],
        "level": lever.level if lever else None,
        "disabled_optimizers": list(lever.disabled_optimizers) if lever else [],
        "reason": decision.reason if decision else "no search (budget 0): the exported graph as is",
    }
