"""Normalization family: RMSNorm and the residual-add forms become ORT's fused norms on real
exports with the same outputs; an RMSNorm over a non-last axis and a norm whose scale does not
match the hidden size are left alone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import normalization
from tests.passes.onnx.harness import assert_rewrites, assert_same_outputs, ops, parse

RNG = np.random.default_rng(0)


# Constants are initializers and attributes written out, as torch's exporter writes them: onnxscript's pattern (adopted
# here) does not match a ReduceMean that leaves noop_with_empty_axes to its default.
def _rms(axis: int, scale_len: int = 8) -> str:
    scale = ", ".join(f"{1 + i / 10:.1f}" for i in range(scale_len))
    return f"""<ir_version: 8, opset_import: ["" : 18]>
    g (float[2,3,8] x) => (float[2,3,8] y)
      <float two = {{2.0}}, float eps = {{1e-6}}, float[{scale_len}] w = {{{scale}}}, int64[1] axes = {{{axis}}}> {{
        sq = Pow(x, two)
        ms = ReduceMean<keepdims = 1, noop_with_empty_axes = 0>(sq, axes)
        shifted = Add(ms, eps)
        root = Sqrt(shifted)
        inv = Reciprocal(root)
        normed = Mul(x, inv)
        y = Mul(normed, w)
    }}"""


def test_rms_norm_becomes_simplified_layer_norm():
    x = RNG.standard_normal((2, 3, 8)).astype(np.float32) * 4
    out = assert_rewrites(parse(_rms(axis=-1)), normalization.RMS_NORM, {"x": x})
    assert ops(out) == ["SimplifiedLayerNormalization"]


def test_rms_norm_over_another_axis_is_left_alone():
    assert find_sites(parse(_rms(axis=1)), [normalization.RMS_NORM]) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "fused", "count"),
    [("llama", "SkipSimplifiedLayerNormalization", 4), ("gpt2", "SkipLayerNormalization", 4)],
)
def test_pre_ln_residuals_fuse_with_the_sum_kept(tiny_export, arch, fused, count):
    # Pre-LN blocks read the residual sum twice (the norm and the next residual): the fused op
    # must expose it as its extra output, and the graph must stay equal.
    path, feeds = tiny_export(arch)
    original = onnx_files.load(path)
    rewritten = onnx_files.copy(original)
    applied = rewrite_to_fixpoint(rewritten, normalization.RULES)
    made = Counter(n.op_type for n in rewritten.graph.all_nodes())
    assert made[fused] == count, Counter(s.rule for s in applied)
    assert_same_outputs(original, rewritten, feeds)
