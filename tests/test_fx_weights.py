"""Weights among a Dynamo graph's inputs (graphopt/formats/fx/weights.py) and Inductor's
freezing built on them: which inputs are weights, a written buffer is not one, the guard sees
an in-place change and a swapped tensor, and a frozen compile matches eager."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from graphopt.formats.fx.capture import dynamo_graph as _graph  # noqa: E402
from graphopt.formats.fx.weights import WeightGuard, remaining, weight_inputs, with_weights_held  # noqa: E402


class _ConvBn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.norm = torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)))


class _Counting(torch.nn.Module):
    """A buffer the forward writes to: module state, but not a weight to bake."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))
        self.register_buffer("calls", torch.zeros(()))
        self.register_buffer("history", torch.zeros(4, 3))

    def forward(self, x):
        self.calls.add_(1)
        self.history[0] = x.sum(0)
        return x * self.scale


def _randomized_conv_bn():
    torch.manual_seed(0)
    model = _ConvBn().eval()
    model.norm.running_mean.uniform_(-1, 1)
    model.norm.running_var.uniform_(0.5, 2)
    return model


def test_parameters_and_read_only_buffers_are_weights_and_the_image_is_not():
    model = _randomized_conv_bn()
    gm, inputs = _graph(model, torch.randn(1, 3, 8, 8))
    weights = {id(inputs[i]) for i in weight_inputs(gm, inputs)}
    expected = {
        id(t)
        for t in (
            model.conv.weight,
            model.conv.bias,
            model.norm.weight,
            model.norm.bias,
            model.norm.running_mean,
            model.norm.running_var,
        )
    }
    assert expected <= weights
    image = next(t for t in inputs if t.shape == (1, 3, 8, 8))
    assert id(image) not in weights


def test_a_buffer_the_graph_writes_is_not_a_weight():
    model = _Counting()
    gm, inputs = _graph(model, torch.randn(5, 3))
    kept = [inputs[i] for i in weight_inputs(gm, inputs)]
    assert any(t is model.scale for t in kept)
    assert not any(t is model.calls or t is model.history for t in kept)


def test_the_guard_sees_an_in_place_change_and_a_swapped_tensor():
    weights = [torch.nn.Parameter(torch.randn(3)), torch.randn(2)]
    guard = WeightGuard.of(weights, [0, 1])
    assert not guard.changed(weights)
    with torch.no_grad():
        weights[1].mul_(2)
    assert guard.changed(weights)
    guard = WeightGuard.of(weights, [0, 1])
    swapped = [torch.nn.Parameter(weights[0].detach().clone()), weights[1]]
    assert guard.changed(swapped)


def test_held_weights_leave_the_other_inputs_in_order():
    model = _randomized_conv_bn()
    x = torch.randn(2, 3, 8, 8)
    gm, inputs = _graph(model, x)
    weights = weight_inputs(gm, inputs)
    held = with_weights_held(gm, inputs, weights)
    with torch.no_grad():
        actual = held(*[inputs[i] for i in remaining(len(inputs), weights)])[0]
        torch.testing.assert_close(actual, model(x), rtol=0, atol=0)  # the same ops on the same tensors


@pytest.mark.slow
def test_a_frozen_inductor_compile_matches_eager_and_its_guard_sees_a_weight_change():
    from graphopt.targets.inductor import InductorTarget

    model = _randomized_conv_bn()
    x = torch.randn(2, 3, 8, 8)
    gm, inputs = _graph(model, x)
    with torch.no_grad():
        frozen = InductorTarget(example_inputs=tuple(inputs)).freezing(inputs).compile(gm)
        assert frozen.guard is not None
        # fp32 conv + folded BN: Inductor folds the norm into the weights (a reassociation),
        # a few ulp on values of order 1
        torch.testing.assert_close(frozen(*inputs)[0], model(x), rtol=1e-5, atol=1e-5)
        assert not frozen.weights_changed(inputs)
        model.conv.weight.mul_(2)
    assert frozen.weights_changed(inputs)
