"""inline_call (passes/stablehlo/calls.py): jax's private function calls (``jnp.var`` exports as
``call @_var``, which calls ``@_where``) inlined into the entry function. Outputs stay bitwise
equal; IREE runs a jnp.var LayerNorm as its two reductions once inlined; public callees are left
alone with their reason."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from graphopt.formats.stablehlo.files import TEXT, StableHloModule  # noqa: E402
from graphopt.formats.stablehlo.rules import StableHloRules  # noqa: E402
from graphopt.passes.stablehlo import all_rules  # noqa: E402
from graphopt.targets.xla import XlaTarget  # noqa: E402

RNG = np.random.default_rng(0)


def layer_norm_with_var(x, g, b):
    """Haiku's and Equinox's LayerNorm: the variance from jnp.var."""
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(jnp.var(x, -1, keepdims=True) + 1e-5) * g + b


def _args():
    return [RNG.standard_normal(s, np.float32) for s in ((16, 384), (384,), (384,))]


def _rewritten(fn, *args):
    module = StableHloModule(jax.jit(fn).lower(*args).as_text(), TEXT)
    rules = StableHloRules(all_rules())
    sites = [s for s in rules.sites(module) if s.rule == "inline_call"]
    return module, sites, rules.rewrite("inlined", module, ["inline_call"])


def test_jnp_var_is_inlined_with_its_nested_call_and_outputs_stay_bitwise_equal():
    args = _args()
    module, sites, candidate = _rewritten(layer_norm_with_var, *args)
    assert "call @_var" in module.text and len(sites) == 1
    assert "call @" not in candidate.graph.text.split("func.func private")[0]  # nothing called from @main
    assert [s.rule for s in candidate.applied] == ["inline_call", "inline_call"]  # @_var, then its @_where
    feeds = {f"arg{i}": a for i, a in enumerate(args)}
    before = XlaTarget().compile(module).run(feeds)[0]
    np.testing.assert_array_equal(XlaTarget().compile(candidate.graph).run(feeds)[0], before)


def test_iree_runs_the_inlined_and_folded_layer_norm_as_two_reductions():
    """IREE 3.13: 2 reduction dispatches, an elementwise one and a copy with the call (and an
    initializer fill); inlined alone, the same (the ddof guard is what costs); inlined with the
    guard's constants folded (passes/stablehlo/constants.py), the two reductions alone."""
    pytest.importorskip("iree.compiler")
    from graphopt.targets.iree.target import IreeTarget

    args = _args()
    module, _, inlined = _rewritten(layer_norm_with_var, *args)
    folded = StableHloRules(all_rules()).rewrite("folded", module, ["inline_call", "fold_scalar", "known_select"])
    reports = [IreeTarget().compile(graph).report for graph in (module, inlined.graph, folded.graph)]
    assert reports[0].kernels == reports[1].kernels > reports[2].kernels
    assert reports[2].ops == {"dispatch.reduction": 2}
    feeds = {f"arg{i}": a for i, a in enumerate(args)}
    np.testing.assert_array_equal(
        XlaTarget().compile(folded.graph).run(feeds)[0], XlaTarget().compile(module).run(feeds)[0]
    )


def test_a_public_callee_is_a_near_miss():
    text = """
    module @m {
      func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
        %0 = call @helper(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
        return %0 : tensor<4xf32>
      }
      func.func public @helper(%arg0: tensor<4xf32>) -> tensor<4xf32> {
        %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
        return %0 : tensor<4xf32>
      }
    }
    """
    module = StableHloModule(text, TEXT)
    rules = StableHloRules(all_rules())
    assert [s for s in rules.sites(module) if s.rule == "inline_call"] == []
    misses = [m for m in rules.near_misses(module, []) if m.rule == "inline_call"]
    assert [m.reason for m in misses] == ["the callee is public: an entry point of its own"]
