"""HardSigmoid and HardSwish written out, given back their ops.

Keras (through tf2onnx), Paddle (paddle2onnx below opset 14) and hand-written MobileNetV3 code
write ``hard_sigmoid(x) = relu6(x + 3) / 6`` and ``hard_swish(x) = x * relu6(x + 3) / 6`` as
Add, Clip(0, 6), Div (or Mul by 1/6) and Mul: three or four elementwise kernels per activation,
none of which ORT fuses into the Conv before it. ORT's ConvActivationFusion fuses HardSigmoid
(by op type) and runs HardSwish as one kernel:

- ``hard-sigmoid``: ``Clip(x + 3, 0, 6) / 6`` (or ``* (1/6)``) -> ``HardSigmoid(x, alpha=1/6, beta=0.5)``;
- ``hard-swish``: ``x * HardSigmoid(x, 1/6, 0.5)`` -> ``HardSwish(x)`` (after hard-sigmoid);
- ``hard-swish-div``: ``(x * Clip(x + 3, 0, 6)) / 6`` -> ``HardSwish(x)`` (Paddle's order), or
  ``x * HardSigmoid(x, 1/6, 0.5)`` in models below opset 14 (two kernels instead of four).

Legality: x is a float tensor; the constants are one-element constants (3, 0, 6 and 6 or 1/6
to 1e-6 relative); Clip's bounds are inputs (opset 11+); HardSwish needs opset 14+, which the
rules read off the model (below it, hard-swish-div writes x * HardSigmoid(x) instead).
``max(0, min(1, x/6 + 1/2))`` and ``clip(x + 3, 0, 6) / 6`` are the same function; their fp32
results differ by the rounding of one multiply-add (an ulp or two), far inside verify's fp32
tolerance. NaN propagates through both.
"""

from __future__ import annotations

from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import FLOAT_TYPES, is_scalar_close, opset

FAMILY = "hard"
SIXTH = 1.0 / 6.0


def _relu6_of_shift(op, x, three, zero, six):
    return op.Clip(op.Add(x, three), zero, six)


def _div_pattern(op, x, three, zero, six, divisor):
    return op.Div(_relu6_of_shift(op, x, three, zero, six), divisor)


def _mul_pattern(op, x, three, zero, six, divisor):
    return op.Mul(_relu6_of_shift(op, x, three, zero, six), divisor)


def _relu6_check(x, three, zero, six) -> str:
    if x.dtype not in FLOAT_TYPES:
        return f"x is {x.dtype}, not a float type"
    if not (is_scalar_close(three, 3.0) and is_scalar_close(zero, 0.0) and is_scalar_close(six, 6.0)):
        return "not Clip(x + 3, 0, 6)"
    return ""


def _div_check(context, x, three, zero, six, divisor, **_):
    problem = _relu6_check(x, three, zero, six) or ("" if is_scalar_close(divisor, 6.0) else "not divided by 6")
    return MatchResult().fail(problem) if problem else True


def _mul_check(context, x, three, zero, six, divisor, **_):
    problem = _relu6_check(x, three, zero, six) or ("" if is_scalar_close(divisor, SIXTH) else "not multiplied by 1/6")
    return MatchResult().fail(problem) if problem else True


def _hard_sigmoid(op, x, **_):
    return op.HardSigmoid(x, alpha=SIXTH, beta=0.5)


def _swish_pattern(op, x):
    return op.Mul(x, op.HardSigmoid(x, _allow_other_attributes=True, _outputs=["gate"]))


def _opset(context) -> int:
    model = getattr(context, "model", None)
    return model.opset_imports.get("", 0) if model is not None else 0


def _swish_check(context, x, gate, **_):
    node = gate.producer()
    if (
        abs(node.attributes.get_float("alpha", 0.2) - SIXTH) > 1e-6
        or abs(node.attributes.get_float("beta", 0.5) - 0.5) > 1e-6
    ):
        return MatchResult().fail("the HardSigmoid is not x/6 + 1/2")
    if _opset(context) < 14:
        return MatchResult().fail(f"HardSwish needs opset 14 (the model has {_opset(context)})")
    return True


def _swish_div_pattern(op, x, three, zero, six, divisor):
    return op.Div(op.Mul(x, _relu6_of_shift(op, x, three, zero, six)), divisor)


def _swish_div_check(context, x, three, zero, six, divisor, **_):
    problem = _relu6_check(x, three, zero, six) or ("" if is_scalar_close(divisor, 6.0) else "not divided by 6")
    return MatchResult().fail(problem) if problem else True


def _hard_swish(op, x, **_):
    return op.HardSwish(x)


def _hard_swish_any_opset(op, x, **_):
    """HardSwish where the model's opset has it (14+), else x * HardSigmoid(x)."""
    return op.HardSwish(x) if opset(x) >= 14 else op.Mul(x, op.HardSigmoid(x, alpha=SIXTH, beta=0.5))


_SIGMOID_DOC = "Clip(x + 3, 0, 6) / 6  ->  HardSigmoid(x, alpha=1/6, beta=0.5)\n\n" + __doc__
hard_sigmoid = rule("hard-sigmoid", FAMILY, _SIGMOID_DOC, _div_pattern, _hard_sigmoid, _div_check)
hard_sigmoid_mul = rule(
    "hard-sigmoid-mul",
    FAMILY,
    _SIGMOID_DOC.replace("/ 6", "* (1/6)", 1),
    _mul_pattern,
    _hard_sigmoid,
    _mul_check,
    commute=True,
)
hard_swish = rule(
    "hard-swish",
    FAMILY,
    "x * HardSigmoid(x, 1/6, 1/2)  ->  HardSwish(x)\n\n" + __doc__,
    _swish_pattern,
    _hard_swish,
    _swish_check,
    commute=True,
)
hard_swish_div = rule(
    "hard-swish-div",
    FAMILY,
    "(x * Clip(x + 3, 0, 6)) / 6  ->  HardSwish(x) (x * HardSigmoid(x) below opset 14)\n\n" + __doc__,
    _swish_div_pattern,
    _hard_swish_any_opset,
    _swish_div_check,
    commute=True,
)

# The Div form of HardSwish first, so that its Clip is not taken for a HardSigmoid on its own.
RULES = [hard_swish_div, hard_sigmoid, hard_sigmoid_mul, hard_swish]
