"""Activation family: Max(x, 0) and Min(Max(x, lo), hi) become Relu and Clip with equal outputs
(NaN, infinities and signed zeros included), after which ORT fuses them into the Conv; a bound
that is not 0, that broadcasts x to a larger shape, or a "clip" with lo > hi is left alone."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.formats.onnx.shape_inference import infer_shapes
from graphopt.passes.onnx import activation
from graphopt.targets.onnxruntime import OrtTarget
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse

HEADER = '<ir_version: 8, opset_import: ["" : 18]>'
SPECIAL = np.array([np.nan, -0.0, 0.0, -1.5, 3.0, 7.5, np.inf, -np.inf], np.float32)


def _elementwise(body: str, inits: str) -> str:
    return f"{HEADER} g (float[8] x) => (float[8] y) <{inits}> {{ {body} }}"


@pytest.mark.parametrize(
    ("body", "rule", "op"),
    [
        ("y = Max(x, zero)", activation.max_relu, "Relu"),
        ("y = Max(zero, x)", activation.max_relu, "Relu"),
        ("t = Max(x, zero)\n y = Min(t, six)", activation.min_max_clip, "Clip"),
        ("t = Min(six, x)\n y = Max(zero, t)", activation.max_min_clip, "Clip"),
    ],
)
def test_max_and_min_become_the_op_ort_fuses(body, rule, op):
    model = parse(_elementwise(body, "float zero = {0.0}, float six = {6.0}"))
    out = assert_rewrites(model, rule, {"x": SPECIAL})
    assert op in ops(out) and "Max" not in ops(out) and "Min" not in ops(out)


def test_a_relu6_is_one_clip_not_a_relu_and_a_min():
    from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint

    model = parse(_elementwise("t = Max(x, zero)\n y = Min(t, six)", "float zero = {0.0}, float six = {6.0}"))
    applied = rewrite_to_fixpoint(model, activation.RULES)
    assert [s.rule for s in applied] == ["min-max-clip"]
    assert ops(model).count("Clip") == 1 and "Relu" not in ops(model)


@pytest.mark.parametrize(
    ("body", "inits", "rule"),
    [
        ("y = Max(x, c)", "float c = {0.5}", activation.max_relu),  # not a ReLU
        ("t = Max(x, lo)\n y = Min(t, hi)", "float lo = {6.0}, float hi = {0.0}", activation.min_max_clip),  # lo > hi
    ],
)
def test_other_bounds_are_not_relu_or_clip(body, inits, rule):
    assert_no_site(parse(_elementwise(body, inits)), rule)


def test_a_bound_that_broadcasts_x_up_is_not_a_relu():
    # Max(x[8], zeros[1, 8]) has shape [1, 8]: Relu(x) would drop a dimension.
    text = f"{HEADER} g (float[8] x) => (float[1, 8] y) <float[1, 1] zero = {{0.0}}> {{ y = Max(x, zero) }}"
    assert_no_site(parse(text), activation.max_relu)


def test_conv_then_clamp_min_fuses_in_ort_after_the_rewrite():
    # What torch writes for conv(x).clamp(min=0): ORT fuses nothing until Max is a Relu.
    rng = np.random.default_rng(0)
    weights = ", ".join(f"{v:.5f}" for v in rng.standard_normal(4 * 3 * 3 * 3))
    text = f"""{HEADER} g (float[1, 3, 8, 8] x) => (float[1, 4, 6, 6] y)
      <float[4, 3, 3, 3] w = {{{weights}}}, float zero = {{0.0}}> {{
        c = Conv(x, w)
        y = Max(c, zero)
    }}"""
    model = parse(text)
    infer_shapes(model)  # as optimize's prepare does: the check reads the Conv output's type
    before = OrtTarget().compile(model).report
    out = assert_rewrites(model, activation.max_relu, {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)})
    after = OrtTarget().compile(out).report
    assert after.kernels < before.kernels, (before.kernels, after.kernels)


@pytest.mark.slow
def test_resnet_written_with_clamp_min_fuses_like_the_relu_version(tiny_export):
    from graphopt.formats.onnx import files as onnx_files

    clamp_path, feeds = tiny_export("resnet50-clamp")
    relu_path, _ = tiny_export("resnet50")
    clamp, relu = onnx_files.load(clamp_path), onnx_files.load(relu_path)
    assert "Max" in ops(clamp) and "Relu" not in ops(clamp)
    rewritten = assert_rewrites(clamp, activation.max_relu, feeds)
    assert "Max" not in ops(rewritten)
    # ORT now runs the rewritten graph in as many kernels as the export written with ReLU.
    assert OrtTarget().compile(rewritten).report.kernels == OrtTarget().compile(relu).report.kernels
    assert OrtTarget().compile(clamp).report.kernels > OrtTarget().compile(relu).report.kernels
