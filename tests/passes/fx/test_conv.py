"""FX conv family: Conv + eval BatchNorm folded into one conv computed in the graph; equal to
eager at fp32 (the fold reorders a product and a sum per channel: verify's fp32 tolerance)."""

from __future__ import annotations

import pytest

from graphopt.passes.fx import conv
from tests.passes.fx.conftest import rewrite, targets

torch = pytest.importorskip("torch")


def _block(bias: bool, affine: bool):
    torch.manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=bias), torch.nn.BatchNorm2d(8, affine=affine), torch.nn.ReLU()
    )
    with torch.no_grad():
        block[1].running_mean.uniform_(-0.5, 0.5)
        block[1].running_var.uniform_(0.5, 1.5)
        if affine:
            block[1].weight.uniform_(0.5, 1.5)
            block[1].bias.uniform_(-0.2, 0.2)
    return block.eval()


@pytest.mark.parametrize(("bias", "affine"), [(True, True), (False, True), (False, False)])
def test_conv_bn_folds(bias, affine):
    block, x = _block(bias, affine), torch.randn(2, 3, 9, 9)
    rewritten, fired, inputs = rewrite(block, conv.RULES, x)
    assert fired == {"conv_bn": 1}
    assert torch.nn.functional.batch_norm not in targets(rewritten)
    with torch.no_grad():
        torch.testing.assert_close(rewritten(*inputs)[0], block(x), rtol=1e-5, atol=1e-5)


def test_training_mode_batch_norm_is_left_alone():
    block, x = _block(True, True).train(), torch.randn(2, 3, 9, 9)
    _, fired, _ = rewrite(block, conv.RULES, x)
    assert fired == {}
