"""reciprocal_multiply and scale_after_dot (passes/stablehlo/scaling.py): a softmax normalized by
a reciprocal becomes the quotient IREE raises into one dispatch; Flax's query scaling moves past
the scores' product. Outputs stay within fp32 tolerance of jax.jit's on XLA and IREE (bitwise for
a power-of-two scale); near misses are left alone."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from graphopt.formats.stablehlo.files import TEXT, StableHloModule  # noqa: E402
from graphopt.formats.stablehlo.rules import StableHloRules  # noqa: E402
from graphopt.passes.stablehlo import all_rules  # noqa: E402
from graphopt.targets.xla import XlaTarget  # noqa: E402

# fp32: one rounding fewer (the reciprocal's) or a scale applied after a 64-long sum instead of
# before: within a few ulps of outputs of order 1
RTOL, ATOL = 1e-6, 1e-6
RULES = ["reciprocal_multiply", "scale_after_dot"]
RNG = np.random.default_rng(0)


def _rewritten(fn, *args):
    module = StableHloModule(jax.jit(fn).lower(*args).as_text(), TEXT)
    rules = StableHloRules(all_rules())
    sites = [s for s in rules.sites(module) if s.rule in RULES]
    misses = [m for m in rules.near_misses(module, sites) if m.rule in RULES]
    return module, sites, misses, rules.rewrite("scaling", module, RULES)


def _outputs(candidate, args, target=None) -> np.ndarray:
    compiled = (target or XlaTarget()).compile(candidate.graph)
    return compiled.run({f"arg{i}": a for i, a in enumerate(args)})[0]


def softmax_by_reciprocal(x):
    e = jnp.exp(x - x.max(-1, keepdims=True))
    return e * (1.0 / e.sum(-1, keepdims=True))


def flax_scores(q, k):
    """Flax's dot_product_attention: the query scaled by 1/sqrt(depth) before the product."""
    q = q / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    return jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1)


def _qk(depth=64):
    return [RNG.standard_normal((1, 16, 4, depth), np.float32) for _ in range(2)]


def test_a_softmax_normalized_by_a_reciprocal_becomes_a_quotient():
    x = RNG.standard_normal((8, 128), np.float32)
    _, sites, _, candidate = _rewritten(softmax_by_reciprocal, x)
    assert [s.rule for s in sites] == ["reciprocal_multiply"]
    assert "stablehlo.multiply" not in candidate.graph.text
    np.testing.assert_allclose(_outputs(candidate, [x]), np.asarray(jax.nn.softmax(x, axis=-1)), rtol=RTOL, atol=ATOL)


def test_iree_raises_the_quotient_into_one_softmax_dispatch():
    pytest.importorskip("iree.compiler")
    from graphopt.targets.iree.target import IreeTarget

    x = RNG.standard_normal((8, 128), np.float32)
    module, _, _, candidate = _rewritten(softmax_by_reciprocal, x)
    before, after = IreeTarget().compile(module).report, IreeTarget().compile(candidate.graph).report
    assert before.kernels == 2 and after.kernels == 1 and after.fused == {"dispatch.softmax": 1}
    np.testing.assert_allclose(
        _outputs(candidate, [x], IreeTarget()), np.asarray(jax.jit(softmax_by_reciprocal)(x)), rtol=RTOL, atol=ATOL
    )


def test_the_query_scale_moves_past_the_product_bitwise_for_a_power_of_two():
    q, k = _qk(depth=64)  # 1/sqrt(64) = 1/8: scaling is exact before or after
    module, sites, _, candidate = _rewritten(flax_scores, q, k)
    assert [s.rule for s in sites] == ["scale_after_dot"]
    scores_before = XlaTarget().compile(module).run({"arg0": q, "arg1": k})[0]
    np.testing.assert_array_equal(_outputs(candidate, [q, k]), scores_before)


def test_another_scale_is_within_tolerance():
    q, k = _qk(depth=48)
    _, sites, _, candidate = _rewritten(flax_scores, q, k)
    assert [s.rule for s in sites] == ["scale_after_dot"]
    np.testing.assert_allclose(
        _outputs(candidate, [q, k]), np.asarray(jax.jit(flax_scores)(q, k)), rtol=RTOL, atol=ATOL
    )


def test_near_misses_and_what_is_left_alone():
    def both_scaled(q, k):
        return jnp.einsum("bqhd,bkhd->bhqk", q * 0.5, k * 0.25)

    q, k = _qk()
    _, sites, misses, _ = _rewritten(both_scaled, q, k)
    assert sites == [] and [m.reason for m in misses] == ["both operands are scaled"]

    def per_channel(q, k, g):  # a scale per element of the depth: not a factor of every sum
        return jnp.einsum("bqhd,bkhd->bhqk", q * g, k)

    g = RNG.standard_normal(64, np.float32)
    assert _rewritten(per_channel, q, k, g)[1] == []

    def scale_divided_by(q, k):  # c / q is not a scaling of q
        return jnp.einsum("bqhd,bkhd->bhqk", 2.0 / q, k)

    assert _rewritten(scale_divided_by, q, k)[1] == []

    def times_a_reciprocal_of_two(x):  # multiplying by 1/2 (a constant, not a computed reciprocal)
        return x * 0.5

    assert _rewritten(times_a_reciprocal_of_two, RNG.standard_normal(8, np.float32))[1] == []

    def times_two_over_s(x):  # 2/s: not a reciprocal
        return x * (2.0 / x.sum(-1, keepdims=True))

    assert _rewritten(times_two_over_s, RNG.standard_normal((4, 8), np.float32))[1] == []
