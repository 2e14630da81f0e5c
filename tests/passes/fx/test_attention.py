"""FX attention family: attention written out (matmul, scale, mask, softmax, matmul) becomes
``scaled_dot_product_attention`` in the spellings users write: ``* scale`` or ``/ sqrt(d)``,
``torch.full([], c)`` (GPT-2), a mask, an identity dropout, K permuted from [B, S, H, D]. Equal
to eager at fp32 (SDPA reorders the same sums; verify's fp32 tolerance)."""

from __future__ import annotations

import math

import pytest

from graphopt.passes.fx import attention
from tests.passes.fx.conftest import rewrite, targets

torch = pytest.importorskip("torch")
F = torch.nn.functional
gen = torch.Generator().manual_seed(2)
Q, K, V = (torch.randn(2, 4, 7, 8, generator=gen) for _ in range(3))
MASK = torch.where(torch.rand(2, 1, 7, 7, generator=gen) > 0.3, 0.0, -1e9)


def _check(fn, *args):
    rewritten, fired, inputs = rewrite(fn, attention.RULES, *args)
    assert fired == {"sdpa": 1}
    assert F.scaled_dot_product_attention in targets(rewritten)
    assert torch.matmul not in targets(rewritten)
    torch.testing.assert_close(rewritten(*inputs)[0], fn(*args), rtol=1e-4, atol=1e-5)


def test_mul_by_scale_with_mask_softmax_dtype_and_identity_dropout():
    def llama_eager(q, k, v, mask):
        weights = torch.matmul(q, k.transpose(2, 3)) * (1 / math.sqrt(8)) + mask
        weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(F.dropout(weights, p=0.0, training=False), v)

    _check(llama_eager, Q, K, V, MASK)


def test_division_by_sqrt_d_and_by_a_full_tensor():
    _check(lambda q, k, v: (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1) @ v, Q, K, V)
    _check(lambda q, k, v: torch.matmul((q @ k.transpose(-1, -2) / torch.full([], 8**0.5)).softmax(dim=-1), v), Q, K, V)


def test_key_permuted_from_projection_layout():
    k_bshd = K.transpose(1, 2).contiguous()  # [B, S, H, D], as a projection writes it

    def permuted(q, k, v):
        return torch.softmax(q @ k.permute(0, 2, 3, 1) * 0.125, dim=-1) @ v

    _check(permuted, Q, k_bshd, V)


def test_gpt2_casts_with_type_and_returns_nothing_else():
    def gpt2_eager(q, k, v, mask):
        weights = F.softmax(torch.matmul(q, k.transpose(-1, -2)) * 8**-0.5 + mask, dim=-1).type(v.dtype)
        return torch.matmul(F.dropout(weights, p=0.1, training=False), v)

    _check(gpt2_eager, Q, K, V, MASK)


def test_attention_weights_also_returned_are_left_alone():
    # rewriting would compute the weights twice: once for the user, once inside SDPA
    def with_weights(q, k, v):
        weights = (q @ k.transpose(-1, -2) * 0.3).softmax(-1)
        return weights @ v, weights

    _, fired, _ = rewrite(with_weights, attention.RULES, Q, K, V)
    assert fired == {}


@pytest.mark.parametrize(
    "near_miss",
    [
        lambda q, k, v: (q @ k.transpose(-1, -2)).softmax(-2) @ v,  # softmax over queries
        lambda q, k, v: ((q @ k.transpose(-1, -2)) * q[..., :1]).softmax(-1) @ v,  # scaled by a tensor, not a number
        lambda q, k, v: F.dropout((q @ k.transpose(-1, -2)).softmax(-1), p=0.1, training=True) @ v,  # real dropout
    ],
)
def test_near_misses_are_left_alone(near_miss):
    _, fired, _ = rewrite(near_miss, attention.RULES, Q, K, V)
    assert fired == {}
