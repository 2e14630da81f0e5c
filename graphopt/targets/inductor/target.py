"""Inductor for one Dynamo graph: graphopt's FX rules, then ``compile_fx``.

The rules run on a copy of the graph before Inductor's own pre-grad passes (that is where
Inductor's ``pre_grad_custom_pass`` would run them), so Inductor's matchers and lowerings see
``gelu``, ``silu``, ``rms_norm`` and ``scaled_dot_product_attention`` where the user wrote them
out. Each rule's rewrite is first run eagerly against the graph as given (cheap: no compile);
a rule whose rewrite changes the outputs is dropped by name before Inductor sees it. Graphs that
need gradients get only the rules that keep gradients exact, and go through compile_fx's
aot_autograd like any training graph.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from graphopt.formats.fx import apply_rules, copy_module, run_eager
from graphopt.formats.fx.weights import WeightGuard, remaining, weight_inputs, with_weights_held
from graphopt.passes.fx import all_rules
from graphopt.protocols import FusionReport
from graphopt.targets.inductor.report import loaded_modules, read_report
from graphopt.verify import compare

log = logging.getLogger("graphopt.torch")


@dataclasses.dataclass
class InductorCompiled:
    """A graph compiled by Inductor: call it with the GraphModule's inputs."""

    run: object
    fired: dict[str, int]  # FX rule -> sites rewritten
    dropped: dict[str, str]  # FX rule -> why it was left out
    report: FusionReport
    guard: WeightGuard | None = None  # set when weights were frozen into the kernels

    def __call__(self, *args):
        return self.run(*args)

    def weights_changed(self, args) -> bool:
        return self.guard is not None and self.guard.changed(args)


def fx_rules(args, names=None, *, frozen: bool = False) -> list:
    """The FX rules for a graph: all of them, or the named ones (a replay); only gradient-exact
    ones when an input needs gradients, only those that help frozen weights when ``frozen``."""
    gradients = torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
    rules = all_rules(gradients=gradients, frozen=frozen)
    return rules if names is None else [r for r in rules if r.name in names]


def rewritten(gm: torch.fx.GraphModule, args, rules) -> tuple[torch.fx.GraphModule, dict, dict]:
    """A copy of ``gm`` with ``rules`` applied, each checked eagerly against ``gm`` on ``args``:
    (graph, fired rule -> sites, dropped rule -> reason)."""
    reference = [t.detach().numpy() for t in run_eager(gm, args)] if rules else []
    graph, fired, dropped = copy_module(gm), {}, {}
    for rule in rules:
        trial = copy_module(graph)
        count = apply_rules(trial, [rule]).get(rule.name, 0)
        if not count:
            continue
        problem = _differs(reference, trial, args)
        if problem:
            dropped[rule.name] = problem
            log.warning("graphopt: FX rule %s left out: %s", rule.name, problem)
            continue
        graph, fired[rule.name] = trial, count
    return graph, fired, dropped


def _differs(reference, graph, args) -> str | None:
    try:
        actual = [t.detach().numpy() for t in run_eager(graph, args)]
    except Exception as error:  # a rewrite that does not even run is a wrong rewrite
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
    names = [f"output_{i}" for i in range(len(reference))]
    verdict = compare(names, reference, actual)
    return None if verdict.ok else f"output {verdict.first_failure().name}: {verdict.first_failure().reason}"


def compile_graph(gm: torch.fx.GraphModule, args, rules=(), example_inputs=None) -> InductorCompiled:
    """``gm`` with ``rules`` (each checked eagerly on the real ``args``) compiled by Inductor."""
    graph, fired, dropped = rewritten(gm, args, list(rules)) if rules else (gm, {}, {})
    return compile_rewritten(graph, fired, dropped, example_inputs if example_inputs is not None else args)


def compile_rewritten(graph: torch.fx.GraphModule, fired: dict, dropped: dict, example_inputs, freeze_with=None) -> InductorCompiled:
    """``graph`` (already rewritten) compiled by Inductor for ``example_inputs``: what Dynamo gave
    the backend, SymInts where sizes are dynamic, so the kernels stay dynamic too. With
    ``freeze_with`` (the call's inputs; inference only) the weights among them are frozen: held
    as constants, folded and prepacked by Inductor's ``freezing``, and guarded."""
    from torch._inductor.compile_fx import compile_fx

    since = loaded_modules()
    weights = weight_inputs(graph, freeze_with) if freeze_with is not None else []
    if not weights:
        return InductorCompiled(compile_fx(graph, list(example_inputs)), fired, dropped, read_report(since))
    run = _frozen(graph, list(example_inputs), list(freeze_with), weights)
    return InductorCompiled(run, fired, dropped, read_report(since), WeightGuard.of(freeze_with, weights))


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
