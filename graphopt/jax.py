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

Other targets (``target="iree-cpu"``) run ``fn`` on their own runtime (a JaxRunner): the callable
takes ``fn``'s arguments and runs the compiled module. A target that can hold weights as
parameters (ParameterHolding: IREE) is given the leaves of the ``weights`` arguments (default:
the first, when there are more, as flax's ``apply(params, x)`` passes them) to hold, and that
choice is judged like a rewrite: against the same compiler with every argument passed per call.
"""

from __future__ import annotations

import time

import jax
from jax import export

from graphopt.core import registry
from graphopt.core.budget import Budget
from graphopt.core.decide import decide
from graphopt.core.protocols import Candidate, JaxRunner, ParameterHolding
from graphopt.formats.stablehlo.files import replaced

HELD_LABEL = "weights held as parameters"


def optimize(
    fn,
    *example_args,
    budget: float = 30.0,
    policy: str = registry.DEFAULT_POLICY,
    target: str = "xla-cpu",
    generated_inputs: bool = False,
    weights: tuple[int, ...] | None = None,
):
    """Export ``fn`` at ``example_args``, search rewrites within ``budget`` seconds, and return a
    callable running the fastest equivalent module (``jax.jit(fn)`` when none beat it on XLA);
    its ``graphopt`` attribute is the Decision. With ``generated_inputs`` the search verifies
    and times on inputs generated from the arguments' types instead of the examples. ``weights``:
    the argument positions holding weights, for targets that hold them as parameters."""
    start = time.monotonic()
    exported = export.export(jax.jit(fn, keep_unused=True))(*example_args)
    _, fmt, rules = registry.format_of(exported)  # the format follows the object: StableHLO
    graph = fmt.from_object(exported)
    target_as_is = registry.target_for(target)
    specs = fmt.input_specs(graph)
    if generated_inputs:
        feeds = fmt.feeds(graph)
    else:
        leaves = jax.tree_util.tree_leaves(example_args)
        feeds = [{spec.name: jax.device_get(leaf) for spec, leaf in zip(specs, leaves)}]
    held = _weight_inputs(example_args, specs, weights) if isinstance(target_as_is, ParameterHolding) else []
    target = target_as_is.holding(held) if held else target_as_is
    decision = decide(
        graph,
        fmt.rules(rules, graph),
        target,
        registry.policy_for(policy, fmt, target),
        feeds,
        Budget(budget, start, saves=False),
        extra=[Candidate(HELD_LABEL, graph, [])] if held else [],
        baseline_target=target_as_is if held else None,
    )
    runs_itself = isinstance(target_as_is, JaxRunner)
    result = _runner(fn, exported, graph, decision, target_as_is) if runs_itself else _jitted(fn, exported, decision)
    result.graphopt = decision
    return result


def _weight_inputs(example_args, specs, weights) -> list[str]:
    """Input names of the leaves of the ``weights`` arguments (default: the first of several)."""
    positions = (0,) if weights is None and len(example_args) > 1 else tuple(weights or ())
    names, index = [], 0
    for position, argument in enumerate(example_args):
        count = len(jax.tree_util.tree_leaves(argument))
        if position in positions:
            names += [spec.name for spec in specs[index : index + count]]
        index += count
    return names


def _jitted(fn, exported, decision):
    """``fn``, or the kept module, under ``jax.jit`` with the target's options (a lever that won)."""
    judged = decision.compiled_with
    target = judged.with_lever(decision.lever.lever) if decision.lever.lever is not None else judged
    if decision.chosen is None:
        return target.jit(fn)
    return target.jit(_dispatch(fn, exported, replaced(decision.chosen.candidate.graph)))


def _runner(fn, exported, graph, decision, target_as_is):
    """The decided module on a JaxRunner target: the chosen graph (or the original) compiled the
    way it was judged (weights held, lever flags), or, when nothing won, the bar itself (the
    target as is, at the standard level it was set at)."""
    judged = decision.compiled_with
    if decision.lever.lever is not None:
        target = judged.with_lever(decision.lever.lever)
    else:
        target = judged if decision.chosen is not None else decision.baseline.target
    chosen = decision.chosen.candidate.graph if decision.chosen is not None else graph
    return target.bind_jax(target.compile(chosen, report=False), exported, target_as_is.as_is(fn))


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
