"""``graphopt.jax.optimize(fn, *example_args)``: a drop-in for ``jax.jit(fn)`` that runs the
StableHLO rewrite graphopt measured fastest, or is ``jax.jit(fn)`` itself when none was.

    fast = graphopt.jax.optimize(model, params, tokens, budget=30)
    logits = fast(params, tokens)          # same pytrees in and out as jax.jit(model)
    fast.graphopt                          # the Decision: what was judged, kept, and why

``fn`` is exported by ``jax.export`` at the example arguments (every argument kept, used or
not, so the module's parameters are the flattened arguments in order); the module goes through
the same engine as ``graphopt optimize model.mlir`` (graphopt/core/decide.py: rules, XLA's fusion
report, outputs verified against the original at fp32 tolerances, interleaved timing) on the
example arguments, or on inputs generated from their types. A kept rewrite runs as the Exported
with its module replaced, called inside ``jax.jit``: jax's own dispatch, no Python between the
call and the executable. Arguments of other shapes or dtypes than the example's trace ``fn``
itself, as ``jax.jit(fn)`` would.
"""

from __future__ import annotations

import time

import jax
from jax import export

from graphopt.core import registry
from graphopt.core.budget import Budget
from graphopt.core.decide import decide
from graphopt.formats.stablehlo.files import replaced


def optimize(
    fn,
    *example_args,
    budget: float = 30.0,
    policy: str = registry.DEFAULT_POLICY,
    target: str = "xla-cpu",
    generated_inputs: bool = False,
):
    """Export ``fn`` at ``example_args``, search rewrites within ``budget`` seconds, and return a
    jitted callable running the fastest equivalent module (``jax.jit(fn)`` when none beat it);
    its ``graphopt`` attribute is the Decision. With ``generated_inputs`` the search verifies
    and times on inputs generated from the arguments' types instead of the examples."""
    start = time.monotonic()
    exported = export.export(jax.jit(fn, keep_unused=True))(*example_args)
    _, fmt, rules = registry.format_of(exported)  # the format follows the object: StableHLO
    graph = fmt.from_object(exported)
    xla = registry.target_for(target)
    if generated_inputs:
        feeds = fmt.feeds(graph)
    else:
        leaves = jax.tree_util.tree_leaves(example_args)
        feeds = [{spec.name: jax.device_get(leaf) for spec, leaf in zip(fmt.input_specs(graph), leaves)}]
    decision = decide(
        graph,
        fmt.rules(rules, graph),
        xla,
        registry.policy_for(policy, fmt, xla),
        feeds,
        Budget(budget, start, saves=False),
    )
    result = (
        jax.jit(fn)
        if decision.chosen is None
        else jax.jit(_dispatch(fn, exported, replaced(decision.chosen.candidate.graph)))
    )
    result.graphopt = decision
    return result


def _dispatch(fn, exported, rewritten):
    """At trace time: the rewritten module for arguments like the example's, ``fn`` otherwise."""

    def call(*args):
        leaves, tree = jax.tree_util.tree_flatten((args, {}))  # an Exported's in_tree is (args, kwargs)
        same = tree == exported.in_tree and all(
            tuple(leaf.shape) == tuple(aval.shape) and leaf.dtype == aval.dtype
            for leaf, aval in zip(leaves, exported.in_avals)
        )
        return rewritten.call(*args) if same else fn(*args)

    return call
