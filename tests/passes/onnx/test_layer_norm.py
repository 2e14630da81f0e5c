import numpy as np
import pytest

from graphopt.passes.onnx import layer_norm
from graphopt.targets.onnxruntime import OrtTarget
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, parse

RNG = np.random.default_rng(0)


def _tf_layer_norm(
    opset: int = 15, mean: str = "pool", x_shape: str = "N,16,8", gamma: str = "[1,1,8]", shift: str = "neg"
) -> str:
    """Keras's LayerNormalization as tf2onnx writes it (x * s + (beta - mean * s))."""
    if mean == "pool":
        first, second = "mean = GlobalAveragePool (x)", "var = GlobalAveragePool (sq)"
    elif opset >= 18:
        first = "ax = Constant <value = int64[1] {-1}> ()\n        mean = ReduceMean <keepdims = 1> (x, ax)"
        second = "var = ReduceMean <keepdims = 1> (sq, ax)"
    else:
        axis = -1 if mean == "reduce" else 1
        first, second = (
            f"mean = ReduceMean <axes = [{axis}], keepdims = 1> (x)",
            f"var = ReduceMean <axes = [{axis}], keepdims = 1> (sq)",
        )
    offset = (
        "neg = Neg (mean)\n        m1 = Mul (neg, scale)\n        offset = Add (m1, beta)"
        if shift == "neg"
        else "m1 = Mul (mean, scale)\n        offset = Sub (beta, m1)"
    )
    size = int(gamma.strip("[]").split(",")[-1]) if "," in gamma else 8
    values = ", ".join(
        str(round(0.5 + 0.1 * i, 2)) for i in range(int(np.prod([int(d) for d in gamma.strip("[]").split(",")])))
    )
    return f"""<ir_version: 8, opset_import: ["" : {opset}]> g (float[{x_shape}] x) => (float[{x_shape}] y) {{
        {first}
        d = Sub (x, mean)
        sq = Mul (d, d)
        {second}
        eps = Constant <value = float {{1e-6}}> ()
        a = Add (var, eps)
        r = Sqrt (a)
        inv = Reciprocal (r)
        gamma = Constant <value = float{gamma} {{{values}}}> ()
        scale = Mul (inv, gamma)
        beta = Constant <value = float[{size}] {{{", ".join(str(0.1 * i) for i in range(size))}}}> ()
        m2 = Mul (x, scale)
        {offset}
        y = Add (m2, offset) }}"""


def _feeds(shape=(2, 16, 8)):
    # an offset mean, as activations have: the two forms differ most when |mean| >> std
    return {"x": (RNG.standard_normal(shape) * 2.0 + 3.0).astype(np.float32)}


@pytest.mark.parametrize(
    "opset,mean,shift", [(15, "pool", "neg"), (15, "reduce", "neg"), (18, "reduce", "sub"), (17, "pool", "sub")]
)
def test_tensorflow_layer_norm_becomes_the_form_ort_fuses(opset, mean, shift):
    model = parse(_tf_layer_norm(opset, mean, shift=shift))
    rewritten = assert_rewrites(model, layer_norm.LAYER_NORM_TF, _feeds())
    fused = OrtTarget(level="all").compile(rewritten).report
    assert fused.ops.get("LayerNormalization") == 1 and fused.kernels == 1
    assert OrtTarget(level="all").compile(model).report.kernels > 5  # ORT alone does not fuse the TF form


def test_means_that_are_not_over_the_last_axis_are_refused():
    assert_no_site(
        parse(_tf_layer_norm(x_shape="N,16,4,8")), layer_norm.LAYER_NORM_TF
    )  # pooling a rank-4 tensor averages two axes
    assert_no_site(parse(_tf_layer_norm(mean="axis1")), layer_norm.LAYER_NORM_TF)


def test_gamma_that_varies_along_another_axis_is_refused():
    assert_no_site(parse(_tf_layer_norm(gamma="[1,16,1]")), layer_norm.LAYER_NORM_TF)  # per position, not per channel


def _rsqrt_layer_norm(square: str = "Mul (d, d)", axis: int = -1, subtracted: str = "mean") -> str:
    """LayerNorm written with rsqrt, as torch exports ``(x - mean) * torch.rsqrt(var + eps) * g + b``."""
    return f"""<ir_version: 8, opset_import: ["" : 17]> g (float[N,16,8] x) => (float[N,16,8] y) {{
        mean = ReduceMean <axes = [{axis}], keepdims = 1> (x)
        other = ReduceMax <axes = [-1], keepdims = 1> (x)
        d = Sub (x, {subtracted})
        two = Constant <value = float {{2.0}}> ()
        eps = Constant <value = float {{1e-5}}> ()
        sq = {square}
        var = ReduceMean <axes = [{axis}], keepdims = 1> (sq)
        a = Add (var, eps)
        r = Sqrt (a)
        inv = Reciprocal (r)
        n = Mul (d, inv)
        gamma = Constant <value = float[8] {{0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2}}> ()
        beta = Constant <value = float[8] {{0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}}> ()
        s = Mul (n, gamma)
        y = Add (s, beta) }}"""


@pytest.mark.parametrize("square", ["Mul (d, d)", "Pow (d, two)"])
def test_rsqrt_layer_norm_becomes_the_division_ort_fuses(square):
    model = parse(_rsqrt_layer_norm(square))
    out = assert_rewrites(model, layer_norm.LAYER_NORM_RSQRT, _feeds())
    assert "Reciprocal" not in [n.op_type for n in out.graph] and "Div" in [n.op_type for n in out.graph]
    fused = OrtTarget().compile(out).report.fused  # and ORT's LayerNormFusion now takes it
    assert fused.get("LayerNormalization") == 1, fused


@pytest.mark.parametrize(
    "variant",
    [
        {"axis": 1},  # a mean over another axis
        {"subtracted": "other"},  # x minus its maximum, not its mean
        {"square": "Mul (d, x)"},  # not the variance of d
        {"square": "Pow (d, eps)"},  # an exponent that is not 2
    ],
)
def test_rsqrt_near_misses_are_left_alone(variant):
    assert_no_site(parse(_rsqrt_layer_norm(**variant)), layer_norm.LAYER_NORM_RSQRT)
