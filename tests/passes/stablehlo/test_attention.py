"""grouped_dot (passes/stablehlo/attention.py): GQA's repeated K/V computed per KV head. It fires
on jnp.repeat of K/V feeding the attention products in both operand positions, keeps outputs
equal to jax.jit's through XLA, and stays away from what it must not touch."""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from graphopt.formats.stablehlo.files import TEXT, StableHloModule  # noqa: E402
from graphopt.formats.stablehlo.rules import StableHloRules  # noqa: E402
from graphopt.passes.stablehlo import all_rules  # noqa: E402
from graphopt.targets.xla import XlaTarget  # noqa: E402

# fp32: the same sums over the same contraction; only XLA's dot kernel (and so its blocking of the
# 16-long sums) may change, a few ulps of values of order 1
RTOL, ATOL = 1e-5, 1e-5


def gqa(q, k, v, rep):
    """q [B, Sq, H, D], k/v [B, Sk, G, D], H = G * rep: K/V repeated to the query heads."""
    k, v = jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)


def _inputs(b=2, sq=3, sk=16, heads=8, groups=2, d=16):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s, np.float32) for s in ((b, sq, heads, d), (b, sk, groups, d), (b, sk, groups, d))]


def _module(fn, *args) -> StableHloModule:
    return StableHloModule(jax.jit(fn).lower(*args).as_text(), TEXT)


def _rewritten(fn, *args):
    module = _module(fn, *args)
    rules = StableHloRules(all_rules())
    return module, rules.sites(module), rules.rewrite("grouped", module, ["grouped_dot"])


def test_both_attention_products_become_grouped_and_outputs_stay_equal():
    args = _inputs()
    fn = lambda q, k, v: gqa(q, k, v, 4)  # noqa: E731
    module, sites, candidate = _rewritten(fn, *args)
    assert [s.rule for s in sites] == ["grouped_dot", "grouped_dot"]  # Q·Kᵀ (K is the rhs) and P·V (V is the lhs)
    assert len(candidate.applied) == 2 and StableHloRules(all_rules()).sites(candidate.graph) == []
    assert (
        candidate.graph.text.count("broadcast_in_dim") == module.text.count("broadcast_in_dim") - 2
    )  # the repeats are gone
    compiled = XlaTarget().compile(candidate.graph)
    feeds = {f"arg{i}": a for i, a in enumerate(args)}
    np.testing.assert_allclose(compiled.run(feeds)[0], np.asarray(jax.jit(fn)(*args)), rtol=RTOL, atol=ATOL)


def test_multi_query_attention_one_kv_head_is_grouped_too():
    args = _inputs(heads=4, groups=1)
    fn = lambda q, k, v: gqa(q, k, v, 4)  # noqa: E731
    _, sites, candidate = _rewritten(fn, *args)
    if sites:  # jnp.repeat of a size-1 dim may lower to a plain broadcast: then nothing to group
        compiled = XlaTarget().compile(candidate.graph)
        out = compiled.run({f"arg{i}": a for i, a in enumerate(args)})[0]
        np.testing.assert_allclose(out, np.asarray(jax.jit(fn)(*args)), rtol=RTOL, atol=ATOL)


def test_no_site_without_a_repeat_or_where_the_repeat_is_not_a_batch_dim():
    q, k, v = _inputs(heads=2, groups=2)
    _, sites, _ = _rewritten(lambda q, k, v: gqa(q, k, v, 1), q, k, v)  # plain multi-head attention
    assert sites == []

    def repeated_contraction(x, w):  # the repeated dim is contracted, not batched: another computation
        return jnp.einsum("bsk,kn->bsn", jnp.repeat(x, 2, axis=2), w)

    x, w = np.ones((1, 4, 8), np.float32), np.ones((16, 4), np.float32)
    assert _rewritten(repeated_contraction, x, w)[1] == []

    def both_repeated(q, k):  # both operands repeated: left alone (one grouping at a time)
        return jnp.einsum("bqhd,bkhd->bhqk", jnp.repeat(q, 2, axis=2), jnp.repeat(k, 2, axis=2))

    assert _rewritten(both_repeated, q[:, :, :1], k[:, :, :1])[1] == []
