"""fold_scalar and known_select (passes/stablehlo/constants.py): rank-0 arithmetic on constants
folded to the constant XLA computes, a select on a now-known predicate resolved, and what must
stay (tensors, runtime values, non-constant predicates) left alone."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from graphopt.formats.stablehlo.files import TEXT, StableHloModule  # noqa: E402
from graphopt.formats.stablehlo.rules import StableHloRules  # noqa: E402
from graphopt.passes.stablehlo import all_rules  # noqa: E402
from graphopt.targets.xla import XlaTarget  # noqa: E402

RULES = ["fold_scalar", "known_select"]


def _module(text: str) -> StableHloModule:
    return StableHloModule(text, TEXT)


def _rewritten(module):
    rules = StableHloRules(all_rules())
    sites = [s for s in rules.sites(module) if s.rule in RULES]
    return sites, rules.rewrite("folded", module, RULES)


GUARD = """
module @m {
  func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
    %n = stablehlo.constant dense<3.840000e+02> : tensor<f32>
    %ddof = stablehlo.constant dense<1> : tensor<i32>
    %zero = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %nan = stablehlo.constant dense<0x7FC00000> : tensor<f32>
    %0 = stablehlo.convert %ddof : (tensor<i32>) -> tensor<f32>
    %1 = stablehlo.subtract %n, %0 : tensor<f32>
    %2 = stablehlo.compare GT, %1, %zero, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %3 = stablehlo.broadcast_in_dim %1, dims = [] : (tensor<f32>) -> tensor<4xf32>
    %4 = stablehlo.divide %arg0, %3 : tensor<4xf32>
    %5 = stablehlo.broadcast_in_dim %nan, dims = [] : (tensor<f32>) -> tensor<4xf32>
    %6 = stablehlo.select %2, %4, %5 : tensor<i1>, tensor<4xf32>
    return %6 : tensor<4xf32>
  }
}
"""


def test_jnp_vars_guard_folds_to_a_division_by_a_constant():
    module = _module(GUARD)
    sites, candidate = _rewritten(module)
    assert {s.rule for s in sites} == {"fold_scalar"}  # the select is known only once its predicate folds
    assert {s.rule for s in candidate.applied} == set(RULES)
    text = candidate.graph.text
    assert "select" not in text and "compare" not in text and "convert" not in text
    assert "3.830000e+02" in text  # 384 - 1
    x = np.array([1.0, -2.0, 383.0, 0.1], np.float32)
    before, after = (XlaTarget().compile(g).run({"arg0": x})[0] for g in (module, candidate.graph))
    np.testing.assert_array_equal(after, before)


def test_division_by_a_zero_constant_folds_to_what_the_op_computes():
    text = GUARD.replace("dense<3.840000e+02>", "dense<1.000000e+00>")  # n - ddof = 0: the guard picks nan
    module = _module(text)
    _, candidate = _rewritten(module)
    x = np.ones(4, np.float32)
    before, after = (XlaTarget().compile(g).run({"arg0": x})[0] for g in (module, candidate.graph))
    np.testing.assert_array_equal(np.isnan(after), np.isnan(before))
    assert np.isnan(after).all()


def test_tensors_and_runtime_values_are_left_alone():
    def runtime(x, y):  # rank-0 arithmetic on inputs, and a tensor select on a runtime predicate
        return jnp.where(x > y, x - y, y * 2.0)

    module = _module(jax.jit(runtime).lower(np.float32(1), np.float32(2)).as_text())
    assert _rewritten(module)[0] == []

    def tensor_constants(x):  # arithmetic on whole tensors of constants: not rank 0, not folded here
        return x + (jnp.ones(4, jnp.float32) * 3.0)

    module = _module(jax.jit(tensor_constants).lower(np.ones(4, np.float32)).as_text())
    assert _rewritten(module)[0] == []
