"""FX activations family: written-out GELU (erf and tanh), SiLU and clamp-as-ReLU are given
their names; results equal eager at fp32 (the named op computes the same formula; tolerance is
verify's fp32 one, ~800 ulp, far above the few-ulp difference and far below a wrong constant)."""

from __future__ import annotations

import math

import pytest

from graphopt.passes.fx import activations, all_rules
from tests.passes.fx.conftest import rewrite, targets

torch = pytest.importorskip("torch")
F = torch.nn.functional
X = torch.randn(4, 33, generator=torch.Generator().manual_seed(0)) * 3


def _check(fn, name, expect_target, *args):
    args = args or (X,)
    rewritten, fired, inputs = rewrite(fn, activations.RULES, *args)
    assert fired == {name: 1}
    assert expect_target in targets(rewritten)
    torch.testing.assert_close(rewritten(*inputs)[0], fn(*args), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "spelling",
    [
        lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),
        lambda x: x * 0.5 * (1 + torch.erf(x * (1 / math.sqrt(2)))),
        lambda x: (x / 2) * (torch.erf(x / 1.4142135623730951) + 1),
    ],
)
def test_gelu_erf_in_several_spellings(spelling):
    _check(spelling, "gelu_erf", F.gelu)


def test_gpt2_new_gelu_becomes_tanh_gelu():
    def new_gelu(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    _check(new_gelu, "gelu_tanh", F.gelu)


def test_silu_and_clamp_relu():
    _check(lambda x: x * torch.sigmoid(x), "silu", F.silu)
    _check(lambda x: x.clamp(min=0), "clamp_relu", torch.relu)


@pytest.mark.parametrize(
    "near_miss",
    [
        lambda x: 0.5 * x * (1.0 + torch.erf(x / 1.5)),  # wrong constant
        lambda x: 0.4 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),  # wrong half
        lambda x: x * torch.sigmoid(x * 1.702),  # quick GELU, not SiLU
        lambda x: x.clamp(min=0, max=6),  # ReLU6
        lambda x: x.clamp(min=0.1),
    ],
)
def test_near_misses_are_left_alone(near_miss):
    _, fired, _ = rewrite(near_miss, activations.RULES, X)
    assert fired == {}


def test_clamp_relu_is_not_offered_to_graphs_that_need_gradients():
    # relu's subgradient at 0 is 0, clamp's is 1: same values, different gradients
    assert "clamp_relu" in {r.name for r in all_rules()}
    assert "clamp_relu" not in {r.name for r in all_rules(preserves_gradients=True)}
