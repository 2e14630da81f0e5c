"""dot_transposed_operand and dot_transposed_result (passes/stablehlo/products.py): transposes
around a dot_general folded into it. They fire on ``x @ w.T`` and ``(w.T @ x.T).T``, keep outputs
equal to jax.jit's on XLA and IREE, save IREE the transpose dispatch it runs for a weight passed
per call, and leave alone the transposes the dot cannot absorb (near misses with their reason)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from graphopt.formats.stablehlo.files import TEXT, StableHloModule  # noqa: E402
from graphopt.formats.stablehlo.rules import StableHloRules  # noqa: E402
from graphopt.passes.stablehlo import all_rules  # noqa: E402
from graphopt.targets.xla import XlaTarget  # noqa: E402

# fp32: every product and sum kept; only the compiler's dot kernel (its blocking of the 64- to
# 256-long sums) may change, a few ulps of outputs of order 1-10
RTOL, ATOL = 1e-5, 1e-5
RULES = ["dot_transposed_operand", "dot_transposed_result"]
RNG = np.random.default_rng(0)


def _module(fn, *args) -> StableHloModule:
    return StableHloModule(jax.jit(fn).lower(*args).as_text(), TEXT)


def _rewritten(fn, *args):
    module = _module(fn, *args)
    rules = StableHloRules(all_rules())
    sites = [s for s in rules.sites(module) if s.rule in RULES]
    misses = [m for m in rules.near_misses(module, sites) if m.rule in RULES]
    return module, sites, misses, rules.rewrite("products", module, RULES)


def _check_outputs(candidate, fn, args, targets):
    feeds = {f"arg{i}": a for i, a in enumerate(args)}
    expected = np.asarray(jax.jit(fn)(*args))
    for target in targets:
        np.testing.assert_allclose(target.compile(candidate.graph).run(feeds)[0], expected, rtol=RTOL, atol=ATOL)


def _targets():
    targets = [XlaTarget()]
    try:
        from graphopt.targets.iree.target import IreeTarget

        targets.append(IreeTarget())
    except ImportError:  # IREE is an extra: XLA alone checks the outputs
        pass
    return targets


def lm_head(x, embed):
    """A decode step's tied LM head: one token against the embedding table, x @ embed.T."""
    return x @ embed.T


def test_a_transposed_weight_is_folded_into_the_dot():
    args = [RNG.standard_normal((1, 256), np.float32), RNG.standard_normal((1000, 256), np.float32)]
    module, sites, _, candidate = _rewritten(lm_head, *args)
    assert [s.rule for s in sites] == ["dot_transposed_operand"]
    assert "stablehlo.transpose" in module.text and "stablehlo.transpose" not in candidate.graph.text
    _check_outputs(candidate, lm_head, args, _targets())


def transposed_product(w, x):
    """``(w.T @ x.T).T``: the product written for the other layout."""
    return (w.T @ x.T).T


def test_iree_runs_one_dispatch_where_it_ran_two():
    """IREE 3.13 runs ``(w.T @ x.T).T`` (16 rows) as a transpose dispatch and a matmul (counted by
    hand from --compile-to=flow); with the transposes folded and the operands swapped, the matmul
    alone. (``x @ embed.T`` at one row keeps its transpose dispatch either way: IREE's vecmat wants
    the weight [K, N]; that case is judged, and dropped, by the report.)"""
    pytest.importorskip("iree.compiler")
    from graphopt.targets.iree.target import IreeTarget

    args = [RNG.standard_normal((256, 1000), np.float32), RNG.standard_normal((16, 256), np.float32)]
    module, _, _, candidate = _rewritten(transposed_product, *args)
    before, after = IreeTarget().compile(module).report, IreeTarget().compile(candidate.graph).report
    assert before.ops.get("dispatch.transpose") == 1 and after.ops.get("dispatch.transpose") is None
    assert after.kernels == before.kernels - 1


def test_a_transposed_product_is_computed_with_its_operands_swapped():
    args = [RNG.standard_normal((64, 48), np.float32), RNG.standard_normal((8, 64), np.float32)]
    module, sites, _, candidate = _rewritten(transposed_product, *args)
    assert {s.rule for s in sites} == set(RULES)
    assert module.text.count("stablehlo.transpose") == 3
    assert "stablehlo.transpose" not in candidate.graph.text
    assert {s.rule for s in candidate.applied} == set(RULES)
    _check_outputs(candidate, transposed_product, args, _targets())


def test_batched_products_keep_their_batch_dims():
    def batched(a, b):  # b stored [batch, n, k]: the product over k with the batch dim kept
        return jnp.einsum("bmk,bkn->bmn", a, jnp.transpose(b, (0, 2, 1)))

    args = [RNG.standard_normal((3, 5, 16), np.float32), RNG.standard_normal((3, 7, 16), np.float32)]
    _, sites, _, candidate = _rewritten(batched, *args)
    assert "dot_transposed_operand" in {s.rule for s in sites}
    _check_outputs(candidate, batched, args, [XlaTarget()])


def test_near_misses_a_transpose_the_dot_cannot_absorb():
    def reordered(x, w):  # w [a, b, k] read as [k, b, a]: its free dims come out as (b, a)
        return jax.lax.dot_general(x, jnp.transpose(w, (2, 1, 0)), (((1,), (0,)), ((), ())))

    args = [RNG.standard_normal((4, 8), np.float32), RNG.standard_normal((3, 5, 8), np.float32)]
    _, sites, misses, candidate = _rewritten(reordered, *args)
    assert "dot_transposed_operand" not in {s.rule for s in sites}
    assert [m.rule for m in misses] == ["dot_transposed_operand"] and "free dims" in misses[0].reason
    _check_outputs(candidate, reordered, args, [XlaTarget()])


def test_no_site_for_a_transpose_of_the_result_that_is_not_the_exchange_or_is_read_twice():
    def within_block(x, w):  # reorders the rhs's own free dims: not the operands' exchange
        return jnp.transpose(jnp.einsum("mk,kab->mab", x, w), (0, 2, 1))

    args = [RNG.standard_normal((4, 8), np.float32), RNG.standard_normal((8, 3, 5), np.float32)]
    assert "dot_transposed_result" not in {s.rule for s in _rewritten(within_block, *args)[1]}

    def read_twice(x, w):
        product = x @ w
        return product.T.sum() + product.sum()

    args = [RNG.standard_normal((4, 8), np.float32), RNG.standard_normal((8, 6), np.float32)]
    _, sites, misses, _ = _rewritten(read_twice, *args)
    assert "dot_transposed_result" not in {s.rule for s in sites}
