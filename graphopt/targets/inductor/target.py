"""TorchInductor as a graphopt Target for FX graphs: ``compile_fx`` on a Dynamo graph, a
FusionReport read from the code Inductor wrote, and its outputs as numpy arrays for the judge.

A target is bound to what Dynamo gave the backend (``example_inputs``: SymInts where sizes are
dynamic, so the kernels stay dynamic too). ``frozen_with`` (the call's inputs; inference only)
compiles with the weights among them frozen: held as constants, folded and prepacked by
Inductor's ``freezing``, as torch.compile does when ``freezing`` is set before tracing, and
guarded (a weight changed in place or swapped shows in ``weights_changed``). Compiling the same
graph again returns the same kernels (Inductor's own caches would too), so timing pairs do not
pay a compile each.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from graphopt.core.protocols import FusionReport
from graphopt.formats.fx.format import placeholders
from graphopt.formats.fx.ops import meta
from graphopt.formats.fx.weights import WeightGuard, remaining, weight_inputs, with_weights_held
from graphopt.targets.inductor.report import loaded_modules, read_report


@dataclasses.dataclass
class InductorCompiled:
    """A graph compiled by Inductor: call it with the GraphModule's inputs, or ``run`` it on feeds."""

    call: object
    input_names: list[str]
    report: FusionReport
    guard: WeightGuard | None = None  # set when weights were frozen into the kernels
    output_names: list[str] = dataclasses.field(default_factory=list)

    def __call__(self, *args):
        return self.call(*args)

    def run(self, feeds) -> list[np.ndarray]:
        with torch.no_grad():
            outputs = self.call(*[feeds[name] for name in self.input_names])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [t.detach().cpu().numpy() for t in outputs if isinstance(t, torch.Tensor)]

    def weights_changed(self, args) -> bool:
        return self.guard is not None and self.guard.changed(args)


@dataclasses.dataclass(eq=False)
class InductorTarget:
    device: str = "cpu"
    example_inputs: tuple = ()  # what Dynamo gave the backend; the feeds' own values when empty
    frozen_with: tuple | None = None  # the call's inputs, whose weights are frozen into the kernels
    compiler = "Inductor"
    kernel_noun = "kernels"
    _compiled: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    @property
    def name(self) -> str:
        return f"inductor-{self.device}" + ("-frozen" if self.frozen_with is not None else "")

    def freezing(self, args) -> InductorTarget:
        """This target with the weights among ``args`` frozen into the kernels."""
        return InductorTarget(self.device, self.example_inputs, tuple(args))

    def admit(self, graph: torch.fx.GraphModule) -> list[str]:
        return []  # Inductor compiles any graph Dynamo makes

    def compiled_bytes(self, graph: torch.fx.GraphModule) -> int:
        """The frozen weights, when they are frozen into the kernels (else the call's own tensors
        are read, which exist once whatever is compiled)."""
        if self.frozen_with is None:
            return 0
        return sum(a.numel() * a.element_size() for a in self.frozen_with if isinstance(a, torch.Tensor))

    def compile(self, graph: torch.fx.GraphModule, *, report: bool = True) -> InductorCompiled:
        key = id(graph)
        if key not in self._compiled:
            self._compiled[key] = (graph, self._compile(graph))
        return self._compiled[key][1]

    def _compile(self, graph: torch.fx.GraphModule) -> InductorCompiled:
        from torch._inductor.compile_fx import compile_fx

        example = list(self.example_inputs) or [meta(node) for node in placeholders(graph)]
        names = [node.name for node in placeholders(graph)]
        since = loaded_modules()
        weights = weight_inputs(graph, self.frozen_with) if self.frozen_with is not None else []
        if not weights:
            call = compile_fx(graph, example)
            return InductorCompiled(call, names, read_report(since), None, _output_names(graph))
        call = _frozen(graph, example, list(self.frozen_with), weights)
        return InductorCompiled(
            call, names, read_report(since), WeightGuard.of(self.frozen_with, weights), _output_names(graph)
        )


def _output_names(graph: torch.fx.GraphModule) -> list[str]:
    output = next(node for node in graph.graph.nodes if node.op == "output")
    values = output.args[0] if isinstance(output.args[0], (list, tuple)) else [output.args[0]]
    return [f"output_{i}" for i, v in enumerate(v for v in values if isinstance(v, torch.fx.Node))]


def _frozen(graph: torch.fx.GraphModule, example_inputs: list, args: list, weights: list[int]):
    """Inductor's ``freezing`` on ``graph`` with its weight inputs (from ``args``, the call's:
    a swapped weight is not the one Dynamo first saw) held as constants, as torch.compile does
    when Dynamo traces with ``freezing`` set (weights as graph attributes, a tracing context that
    lists them): called with all the graph's inputs, it drops the weights."""
    from torch._guards import TracingContext, tracing
    from torch._inductor import config
    from torch._inductor.compile_fx import compile_fx
    from torch._subclasses.fake_tensor import FakeTensorMode

    held = with_weights_held(graph, args, weights)
    positions = remaining(len(example_inputs), weights)
    shape_env = next((s.node.shape_env for s in example_inputs if isinstance(s, torch.SymInt)), None)
    with config.patch(freezing=True), tracing(TracingContext(FakeTensorMode(shape_env=shape_env))):
        inner = compile_fx(held, [example_inputs[i] for i in positions])
    return lambda *args: inner(*[args[i] for i in positions])


def target_from_name(name: str) -> InductorTarget:
    """``inductor-cpu`` (or ``inductor-cuda``), bound to no inputs yet."""
    from graphopt.core.errors import UsageError

    device = name.removeprefix("inductor-") if name.startswith("inductor-") else ""
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown target {name!r}; use inductor-cpu or inductor-cuda")
    return InductorTarget(device)
