"""``graphopt.jax.optimize(fn, *example_args)``: a drop-in for ``jax.jit(fn)`` that runs the
StableHLO rewrite graphopt measured fastest, or ``jax.jit(fn)`` itself when none was.

    fast = graphopt.jax.optimize(model, params, tokens, budget=30)
    logits = fast(params, tokens)          # same pytrees in and out as jax.jit(model)

``fn`` is lowered by ``jax.jit`` at the example arguments (every argument kept, used or not,
so the module's parameters are the flattened arguments in order); the module goes through the
same engine as ``graphopt optimize model.mlir`` (graphopt/decide.py: rules, XLA's fusion report,
outputs verified against the original at fp32 tolerances, interleaved timing), on the example
arguments or on inputs generated from their types. The result is called like ``jax.jit(fn)``:
arguments whose shapes and dtypes match the example run the kept executable, anything else goes
to ``jax.jit(fn)`` (as jit would retrace). ``result.decision`` says what was kept and why.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from graphopt import registry
from graphopt.budget import Budget
from graphopt.decide import Decision, decide
from graphopt.formats.stablehlo.files import TEXT, StableHloModule


@dataclasses.dataclass
class Optimized:
    """A callable with ``fn``'s signature: the kept executable, or ``jax.jit(fn)``."""

    jitted: object
    decision: Decision
    executable: object | None  # the XlaCompiled kept, or None (jax.jit runs)
    in_tree: object
    out_tree: object
    signature: tuple  # (shape, dtype) of each flattened example argument

    @property
    def kept_jit(self) -> bool:
        return self.executable is None

    def executable_report(self):
        """XLA's fusion report of what runs: the kept executable's."""
        return self.decision.chosen.report if self.decision.chosen else self.decision.baseline.compiled.report

    def __call__(self, *args):
        leaves, tree = jax.tree_util.tree_flatten(args)
        if self.executable is None or tree != self.in_tree or _signature(leaves) != self.signature:
            return self.jitted(*args)
        device = self.executable.device
        outputs = self.executable.executable.execute([jax.device_put(leaf, device) for leaf in leaves])
        return jax.tree_util.tree_unflatten(self.out_tree, outputs)


def optimize(fn, *example_args, budget: float = 30.0, policy: str = registry.DEFAULT_POLICY, target: str = "xla-cpu",
             generated_inputs: bool = False) -> Optimized:  # fmt: skip
    """Lower ``fn`` at ``example_args``, search rewrites within ``budget`` seconds, and return the
    fastest equivalent version (``jax.jit(fn)`` when none beat it). With ``generated_inputs`` the
    search verifies and times on inputs generated from the arguments' types instead of them."""
    start = time.monotonic()
    jitted = jax.jit(fn, keep_unused=True)
    lowered = jitted.lower(*example_args)
    leaves, in_tree = jax.tree_util.tree_flatten(example_args)
    graph = StableHloModule(lowered.as_text(), TEXT)
    fmt, rules = registry.format_for("module.mlir")
    xla = registry.target_for(target)
    specs = fmt.input_specs(graph)
    if generated_inputs:
        feeds = fmt.feeds(graph)
    else:
        feeds = [{spec.name: np.asarray(leaf) for spec, leaf in zip(specs, leaves)}]
    decision = decide(graph, fmt.rules(rules, graph), xla, registry.policy_for(policy, fmt, xla), feeds, Budget(budget, start))
    executable = xla.compile(decision.chosen.candidate.graph, report=False) if decision.chosen else None
    return Optimized(jitted, decision, executable, in_tree, lowered.out_tree, _signature(leaves))


def _signature(leaves) -> tuple:
    return tuple((tuple(np.shape(leaf)), np.result_type(leaf)) for leaf in leaves)
