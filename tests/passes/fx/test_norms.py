"""FX norms family: RMSNorm written out (HF's LlamaRMSNorm) becomes ``rms_norm``; equal to eager
at fp32 (same reduction; verify's fp32 tolerance)."""

from __future__ import annotations

import pytest

from graphopt.passes.fx import norms
from tests.passes.fx.conftest import rewrite, targets

torch = pytest.importorskip("torch")
X = torch.randn(2, 5, 48, generator=torch.Generator().manual_seed(1))


def llama_rms_norm(x, weight):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + 1e-6))


def test_llama_rms_norm():
    weight = torch.rand(48) + 0.5
    rewritten, fired, inputs = rewrite(llama_rms_norm, norms.RULES, X, weight)
    assert fired == {"rms_norm": 1} and torch.nn.functional.rms_norm in targets(rewritten)
    torch.testing.assert_close(rewritten(*inputs)[0], llama_rms_norm(X, weight), rtol=1e-5, atol=1e-6)


def test_squares_written_as_products_and_eps_first():
    def norm(x):
        return torch.rsqrt(1e-5 + (x * x).mean(dim=-1, keepdim=True)) * x

    rewritten, fired, inputs = rewrite(norm, norms.RULES, X)
    assert fired == {"rms_norm": 1}
    torch.testing.assert_close(rewritten(*inputs)[0], norm(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "near_miss",
    [
        lambda x: x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-6),  # not the last dim
        lambda x: x * torch.rsqrt(x.pow(2).mean(-1) + 1e-6)[..., None],  # keepdim off
        lambda x: x * torch.rsqrt(x.pow(3).mean(-1, keepdim=True) + 1e-6),
        lambda x: x * torch.rsqrt((x - 1).pow(2).mean(-1, keepdim=True) + 1e-6),  # squares another tensor
    ],
)
def test_near_misses_are_left_alone(near_miss):
    _, fired, _ = rewrite(near_miss, norms.RULES, X)
    assert fired == {}
