"""GELU: fold the erf formulation, in the operand orders exporters write, into ORT's Gelu, and
write the distributed spelling in the canonical one.

ORT's C++ GeluFusion recognizes ``(x * (1 + erf(x / sqrt2))) * 0.5`` (the legacy exporter's
order) but not ``x * (0.5 * (1 + erf(x / sqrt2)))`` (torch's dynamo exporter) nor the
``x * 0.70710678`` spelling of the division, so dynamo exports keep five elementwise kernels per
GELU. Writing ``com.microsoft::Gelu`` directly lets ORT also fire BiasGelu on the MatMul bias
before it.

Legality: ``com.microsoft::Gelu`` is defined as ``0.5 * x * (1 + erf(x / sqrt(2)))``, the same
function. The constants must be those of GELU (checked to 1e-6 relative, tighter than float32's
rounding of sqrt(2)); x must be float, float16 or bfloat16 (the dtypes ORT's Gelu takes on CPU:
float only, so other dtypes are refused). NaN and Inf propagate the same way in both forms
(erf(+-inf) = +-1, so Gelu(+inf) = +inf and Gelu(-inf) = -inf * 0 = NaN in the original; ORT's
kernel computes the same expression elementwise).

``gelu-erf-distributed`` writes ``x * (0.5 + 0.5 * erf(x / sqrt2))`` as ``x * (0.5 * (erf(x / sqrt2)
+ 1))`` in standard ops, for any float type: OpenVINO's GeluFusion does not know the distributed
form (its tail runs as a separate kernel after the MatMul, against none in the canonical form),
and the ORT rules above then take it. Exact: multiplying by 0.5 is exact in binary floating point
(scaling by a power of two; the one exception, 0.5 * erf(t) becoming subnormal, is for
|erf(t)| < 2^-125, whose rounding is absorbed when 0.5 is added), so ``fl(0.5 + 0.5 e) = fl(0.5 (1 +
e)) = 0.5 fl(1 + e)``: the same bits.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult
from onnxscript.rewriter.ort_fusions import bias_gelu
from onnxscript.rewriter.ort_fusions import gelu as onnxscript_gelu

from graphopt.formats.onnx.rules import adopt, rule
from graphopt.passes.onnx._util import is_scalar_close

_SQRT2 = math.sqrt(2.0)


def _check(context, x, half, one, root, scale_is_division: bool, **_):
    if x.dtype != ir.DataType.FLOAT:
        return MatchResult().fail(f"com.microsoft::Gelu on CPU takes float32, got {x.dtype}")
    if not is_scalar_close(half, 0.5) or not is_scalar_close(one, 1.0):
        return MatchResult().fail("the 0.5 / 1.0 constants are not GELU's")
    if not is_scalar_close(root, _SQRT2 if scale_is_division else 1.0 / _SQRT2):
        return MatchResult().fail("the erf argument is not x / sqrt(2)")
    return True


def _gelu(op, x, **_):
    return op.Gelu(x, _domain="com.microsoft")


# x * (0.5 * (erf(x / sqrt2) + 1)) -> Gelu(x)       (torch dynamo exporter)
def _dynamo_div(op, x, half, one, root):
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Div(x, root)), one)))


# x * (0.5 * (erf(x * 1/sqrt2) + 1)) -> Gelu(x)
def _dynamo_mul(op, x, half, one, root):
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Mul(x, root)), one)))


# (x * (erf(x / sqrt2) + 1)) * 0.5 -> Gelu(x)       (legacy exporter; ORT fuses it too)
def _legacy_div(op, x, half, one, root):
    return op.Mul(op.Mul(x, op.Add(op.Erf(op.Div(x, root)), one)), half)


# x * (0.5 + 0.5 * erf(x / sqrt2))  ->  x * (0.5 * (erf(x / sqrt2) + 1))
def _distributed_div(op, x, half, half_again, root):
    return op.Mul(x, op.Add(half, op.Mul(half_again, op.Erf(op.Div(x, root)))))


def _distributed_mul(op, x, half, half_again, root):
    return op.Mul(x, op.Add(half, op.Mul(half_again, op.Erf(op.Mul(x, root)))))


def _one(op, x):
    return op.Constant(value=ir.tensor(np.array(1.0, dtype=x.dtype.numpy())))


def _canonical_div(op, x, half, half_again, root):
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Div(x, root)), _one(op, x))))


def _canonical_mul(op, x, half, half_again, root):
    return op.Mul(x, op.Mul(half, op.Add(op.Erf(op.Mul(x, root)), _one(op, x))))


def _check_distributed(context, x, half, half_again, root, scale_is_division: bool, **_):
    if x.dtype is None or not x.dtype.is_floating_point():
        return MatchResult().fail(f"GELU of a float tensor only, got {x.dtype}")
    if not (is_scalar_close(half, 0.5) and is_scalar_close(half_again, 0.5)):
        return MatchResult().fail("the two 0.5 constants are not GELU's")
    rtol = max(1e-6, float(np.finfo(x.dtype.numpy()).eps))  # sqrt 2 as rounded to x's type (float16: 1e-3)
    if not is_scalar_close(root, _SQRT2 if scale_is_division else 1.0 / _SQRT2, rtol=rtol):
        return MatchResult().fail("the erf argument is not x / sqrt(2)")
    return True


gelu_erf_div = rule(
    "gelu-erf",
    "gelu",
    "x * (0.5 * (erf(x / sqrt 2) + 1)) (dynamo, Div)  ->  com.microsoft Gelu",
    _dynamo_div,
    _gelu,
    lambda context, **b: _check(context, scale_is_division=True, **b),
    commute=True,
)
gelu_erf_mul = rule(
    "gelu-erf-mul",
    "gelu",
    "x * (0.5 * (erf(x * 1/sqrt 2) + 1)) (dynamo, Mul)  ->  com.microsoft Gelu",
    _dynamo_mul,
    _gelu,
    lambda context, **b: _check(context, scale_is_division=False, **b),
    commute=True,
)
gelu_erf_legacy = rule(
    "gelu-erf-legacy",
    "gelu",
    "(x * (erf(x / sqrt 2) + 1)) * 0.5 (legacy exporter)  ->  com.microsoft Gelu",
    _legacy_div,
    _gelu,
    lambda context, **b: _check(context, scale_is_division=True, **b),
    commute=True,
)

gelu_erf_distributed = rule(
    "gelu-erf-distributed",
    "gelu",
    "x * (0.5 + 0.5 * erf(x / sqrt 2))  ->  x * (0.5 * (erf(x / sqrt 2) + 1)), the form GELU fusions match",
    _distributed_div,
    _canonical_div,
    lambda context, **b: _check_distributed(context, scale_is_division=True, **b),
    commute=True,
)
gelu_erf_distributed_mul = rule(
    "gelu-erf-distributed-mul",
    "gelu",
    "x * (0.5 + 0.5 * erf(x * 1/sqrt 2))  ->  x * (0.5 * (erf(x * 1/sqrt 2) + 1)), the form GELU fusions match",
    _distributed_mul,
    _canonical_mul,
    lambda context, **b: _check_distributed(context, scale_is_division=False, **b),
    commute=True,
)

# The tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
# is com.microsoft::FastGelu's definition exactly; onnxscript's pattern pins the constants.
gelu_tanh = adopt(
    "gelu-tanh",
    "gelu",
    "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))  ->  com.microsoft FastGelu",
    [onnxscript_gelu._tanh_rule],
)
# Gelu(x + b) with a 1-D b: BiasGelu adds the bias inside the kernel (same function, one pass
# over memory instead of two). ORT's BiasGeluFusion does this too, but only on Gelu it sees.
gelu_bias = adopt(
    "bias-gelu", "gelu", "Gelu(x + b), b 1-D  ->  com.microsoft BiasGelu", bias_gelu.bias_gelu_rules.rules
)

RULES = [
    gelu_erf_distributed,
    gelu_erf_distributed_mul,
    gelu_erf_div,
    gelu_erf_mul,
    gelu_erf_legacy,
    gelu_tanh,
    gelu_bias,
]
