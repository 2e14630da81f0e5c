"""No-ops: Pads, Slices and Reshapes that leave their input as it is, once shapes are known.

Exporters compute pads, slice bounds and target shapes at run time from ``Shape`` (Swin's window
padding, TF-style "same" padding, ``x[:, :H, :W]`` undoing a pad). With the input's shape static,
the shapes rule and constant folding turn those into constants, and many turn out to do nothing:
a Pad by zero, a Slice over a whole axis, a Reshape to the shape the value already has. ORT keeps
each as a kernel (its own EliminateSlice only knows the INT64_MAX form), and a kernel between two
others also blocks the Reshape and Transpose merging ORT does around its fusions. Consecutive
Slices on different axes (``x[:, 0::2, 0::2]`` is two Slice nodes from torch) become one.

Legality:
- ``Pad(x, pads) -> x`` when every pad folds to 0, whatever the mode and value: nothing is added.
- ``Slice(x, starts, ends, axes, steps) -> x`` when all four fold to constants and, on each sliced
  axis of static size d, the step is 1, the start clamps to 0 and the end clamps to d (ONNX's
  clamping of negative and out-of-range bounds is applied first).
- ``Reshape(x, s) -> x`` when s (constant) keeps x's shape: each entry is x's dimension as an
  integer, or 0 copying it (unless ``allowzero``), or the one -1, which must then be the one
  dimension left, symbolic or not (a Reshape keeps the element count). A dynamic batch is fine.
- ``Reshape(v(x), s) -> Reshape(x, s)`` when v is Squeeze, Unsqueeze or Flatten and s is a
  constant without 0: those only relabel dimensions, the elements stay in order, and a Reshape
  reads only that order (tf2onnx's squeeze-excitation: GlobalAveragePool, Squeeze, Reshape back).
- ``Reshape(u(Reshape(x, s1)), s2) -> u(x)`` when u is elementwise on its one tensor input and
  s2 gives back x's static shape: u maps each element on its own, so the order the Reshapes
  impose does not matter (ORT's N-D Gemm leaves these around every activation between two Gemms).
- ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1`` -> x (paddle2onnx writes ``paddle.scale`` as a Mul and
  an Add of 0, which hides the attention scale from the attention rules) when the constant is
  one value, 0 (or 1), of x's type, and does not broadcast x to a higher rank. A per-channel
  vector of 0s or 1s is left alone: it is an untrained LayerNorm's beta or gamma, and ORT's
  LayerNormFusion needs that Mul and Add in place. Exact in IEEE
  arithmetic, NaN and Inf included, except that -0 + 0 is +0 (a zero's sign, which only a
  division by that zero could show).
- ``Softmax(x, axis=rank-1) -> Softmax(x, axis=-1)``: the same axis written the way the attention
  patterns look for it (paddle2onnx writes the positive index); below opset 13, where Softmax
  flattens the axes from ``axis`` on, both name the last axis alone.
- ``Slice(Slice(x, a), b) -> Slice(x, a + b)`` when both have constant parameters and slice
  disjoint axes of an input of known rank: slicing one axis does not change the size of another,
  so each Slice clamps exactly as before. The inner Slice stays while others read it.
"""

from __future__ import annotations

import numpy as np
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import Rule, rule
from graphopt.passes.onnx._util import folded, rank, static_shape


def _pad_pattern(op, x, pads):
    return op.Pad(x, pads, _allow_other_attributes=True, _allow_other_inputs=True)


def _pad_check(context, x, pads, **_):
    amounts = folded(pads)
    if amounts is None:
        return MatchResult().fail("the pads are computed from inputs")
    if amounts.any():
        return MatchResult().fail(f"pads {amounts.reshape(-1).tolist()} are not all 0")
    return True


# Pad(x, 0...) -> x
pad_zero = rule(
    "pad-zero",
    "noops",
    "Pad(x, pads) with every pad 0  ->  x",
    _pad_pattern,
    lambda op, x, pads: op.Identity(x),
    _pad_check,
)


def _slice_pattern(op, x, starts, ends):
    return op.Slice(x, starts, ends, _allow_other_inputs=True, _outputs=["sliced"])


def slice_parameters(node, x_rank: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(starts, ends, axes, steps)`` of a Slice node as int64 arrays with axes made
    non-negative (needs the input's rank, read off the input unless given), or None when any of
    them is not a constant."""
    inputs = list(node.inputs) + [None] * (5 - len(node.inputs))
    starts, ends = folded(inputs[1]), folded(inputs[2])
    x_rank = rank(inputs[0]) if x_rank is None else x_rank
    if starts is None or ends is None or x_rank is None:
        return None
    axes = np.arange(starts.size) if inputs[3] is None else folded(inputs[3])
    steps = np.ones(starts.size, np.int64) if inputs[4] is None else folded(inputs[4])
    if axes is None or steps is None:
        return None
    axes = np.where(axes < 0, axes + x_rank, axes)
    return tuple(np.asarray(a, np.int64).reshape(-1) for a in (starts, ends, axes, steps))


def _covers_axis(start: int, end: int, step: int, size: int) -> bool:
    """ONNX's clamping for a step-1 Slice: does [start, end) cover the whole axis of ``size``?"""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    return step == 1 and min(max(start, 0), size) == 0 and min(max(end, 0), size) == size


def _slice_full_check(context, x, sliced, **_):
    parameters = slice_parameters(sliced.producer())
    if parameters is None:
        return MatchResult().fail("the bounds, axes or steps are not constants")
    if x.shape is None:
        return MatchResult().fail("the input's shape is unknown")
    for start, end, axis, step in zip(*parameters):
        size = x.shape[int(axis)]
        if not isinstance(size, int) or not _covers_axis(int(start), int(end), int(step), size):
            return MatchResult().fail(f"axis {int(axis)} (size {size}) is not taken whole: [{start}:{end}:{step}]")
    return True


# Slice(x) over whole axes -> x
slice_full = rule(
    "slice-full",
    "noops",
    "Slice(x) taking every axis it slices whole  ->  x",
    _slice_pattern,
    lambda op, x, starts, ends, sliced: op.Identity(x),
    _slice_full_check,
)


def _slice_slice_pattern(op, x, starts, ends, starts2, ends2):
    inner = op.Slice(x, starts, ends, _allow_other_inputs=True, _outputs=["inner"])
    return op.Slice(inner, starts2, ends2, _allow_other_inputs=True, _outputs=["outer"])


def _both_slices(x, inner, outer):
    """Both Slices' parameters; the outer one's input has the rank of ``x`` (a Slice keeps rank)."""
    return slice_parameters(inner.producer()), slice_parameters(outer.producer(), rank(x))


def _slice_slice_check(context, x, inner, outer, **_):
    first, second = _both_slices(x, inner, outer)
    if first is None or second is None:
        return MatchResult().fail("a Slice's bounds, axes or steps are not constants")
    if set(first[2].tolist()) & set(second[2].tolist()) or len(set(first[2].tolist())) != first[2].size:
        return MatchResult().fail("the two Slices share an axis")
    return True


def _slice_slice_replacement(op, x, inner, outer, **_):
    first, second = _both_slices(x, inner, outer)
    starts, ends, axes, steps = (
        op.Constant(value_ints=[int(v) for v in np.concatenate([a, b])]) for a, b in zip(first, second)
    )
    return op.Slice(x, starts, ends, axes, steps)


# Slice(Slice(x, axes a), axes b), a and b disjoint -> Slice(x, axes a + b)
slice_slice = rule(
    "slice-slice",
    "noops",
    "Slice(Slice(x)) on different axes  ->  one Slice",
    _slice_slice_pattern,
    _slice_slice_replacement,
    _slice_slice_check,
    remove_nodes=False,
)


def _reshape_pattern(op, x, shape):
    return op.Reshape(x, shape, _allow_other_attributes=True, _outputs=["reshaped"])


def _resolved(target: np.ndarray, dims: tuple[int, ...], allow_zero: bool) -> tuple[int, ...] | None:
    """The shape a Reshape to ``target`` gives an input of static ``dims`` (None if invalid)."""
    out = [dims[i] if v == 0 and not allow_zero and i < len(dims) else int(v) for i, v in enumerate(target.tolist())]
    if out.count(-1) > 1:
        return None
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if known == 0 or int(np.prod(dims)) % known:
            return None
        out[out.index(-1)] = int(np.prod(dims)) // known
    return tuple(out)


def keeps_shape(target: np.ndarray, shape, allow_zero: bool) -> bool:
    """True when a Reshape to ``target`` leaves a value of ``shape`` (ints or symbols) as it is:
    every entry is the same integer, a 0 copying the dimension (without ``allowzero``), or the
    one -1, which then must be the remaining dimension (the element count does not change)."""
    target = [int(v) for v in target.reshape(-1)]
    if len(target) != len(shape) or target.count(-1) > 1:
        return False
    return all(t == -1 or (t == 0 and not allow_zero) or (isinstance(d, int) and d == t) for t, d in zip(target, shape))


def _reshape_check(context, x, shape, reshaped, **_):
    target = folded(shape)
    if x.shape is None or target is None:
        return MatchResult().fail("the input's shape or the target shape is unknown")
    if not keeps_shape(target, list(x.shape), bool(reshaped.producer().attributes.get_int("allowzero", 0))):
        return MatchResult().fail(f"reshape {list(x.shape)} -> {target.tolist()} may change the shape")
    return True


# Reshape(x, s) -> x   when s is x's own shape
reshape_same = rule(
    "reshape-same",
    "noops",
    "Reshape(x, s) where s is x's own shape  ->  x",
    _reshape_pattern,
    lambda op, x, shape, reshaped: op.Identity(x),
    _reshape_check,
)


_VIEWS = ("Squeeze", "Unsqueeze", "Flatten")


def _view_pattern(op_type: str):
    def pattern(op, x, shape):
        view = getattr(op, op_type)(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["view"])
        return op.Reshape(view, shape, _allow_other_attributes=True, _outputs=["reshaped"])

    return pattern


def _view_check(context, x, shape, reshaped, **_):
    target = folded(shape)
    if target is None:
        return MatchResult().fail("the target shape is computed at run time")
    if (target == 0).any() and not reshaped.producer().attributes.get_int("allowzero", 0):
        return MatchResult().fail("the target copies dimensions (0) of the view, not of x")
    return True


# Reshape(Squeeze|Unsqueeze|Flatten(x), s) -> Reshape(x, s)
def _reshape_only(op, x, shape, reshaped, **_):
    return op.Reshape(x, shape)


reshape_view = rule(
    "reshape-view",
    "noops",
    "Reshape(Squeeze/Unsqueeze/Flatten(x), s), s constant without 0  ->  Reshape(x, s)",
    [_view_pattern(v) for v in _VIEWS],
    _reshape_only,
    _view_check,
)


# Elementwise ops of one tensor input (the others, where any, are scalars or attributes): each
# output element depends on the same-index input element only, so a Reshape commutes with them.
_UNARY = [
    ("", op)
    for op in (
        "Relu",
        "Sigmoid",
        "Tanh",
        "Erf",
        "Gelu",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Softplus",
        "Abs",
        "Neg",
        "Exp",
        "Log",
        "Sqrt",
        "Reciprocal",
        "Cast",
        "Identity",
    )
] + [("com.microsoft", op) for op in ("Gelu", "FastGelu", "QuickGelu")]


def _unary_pattern(domain: str, op_type: str):
    def pattern(op, x, shape1, shape2):
        inner = op.Reshape(x, shape1, _allow_other_attributes=True, _outputs=["inner"])
        middle = getattr(op, op_type)(inner, _domain=domain, _allow_other_attributes=True, _outputs=["middle"])
        return op.Reshape(middle, shape2, _allow_other_attributes=True, _outputs=["outer"])

    return pattern


def _unary_check(context, x, shape1, shape2, inner, middle, outer, **_):
    if len(middle.producer().inputs) != 1:
        return MatchResult().fail("the elementwise op has more than one input (a bias)")
    dims, first, target = static_shape(x), folded(shape1), folded(shape2)
    if dims is None or first is None or target is None:
        return MatchResult().fail("shapes are not static")
    inner_dims = _resolved(first.reshape(-1), dims, bool(inner.producer().attributes.get_int("allowzero", 0)))
    allow_zero = bool(outer.producer().attributes.get_int("allowzero", 0))
    if inner_dims is None or _resolved(target.reshape(-1), inner_dims, allow_zero) != dims:
        return MatchResult().fail(f"the outer Reshape does not restore {list(dims)}")
    return True


def _unary_replacement(domain: str, op_type: str):
    def replacement(op, x, middle, **_):
        attributes = {k: v for k, v in middle.producer().attributes.items()}
        return getattr(op, op_type)(x, _domain=domain, **attributes)

    return replacement


# Reshape(u(Reshape(x, s1)), s2) -> u(x)   u elementwise, s2 restores x's shape
reshape_unary_reshape = rule(
    "reshape-unary-reshape",
    "noops",
    "Reshape(u(Reshape(x))) restoring x's shape, u elementwise on one tensor  ->  u(x)",
    [_unary_pattern(d, o) for d, o in _UNARY],
    [_unary_replacement(d, o) for d, o in _UNARY],
    _unary_check,
)


def _neutral_pattern(op_type: str):
    def pattern(op, x, c):
        return getattr(op, op_type)(x, c, _outputs=["result"])

    return pattern


def _neutral_check(neutral: float):
    def check(context, x, c, **_):
        dims = static_shape(c)
        value = folded(c) if c.shape is None or (dims is not None and int(np.prod(dims)) == 1) else None
        if value is None or value.size != 1 or float(value.reshape(-1)[0]) != neutral:
            # one value only: a per-channel constant of 0s or 1s is an untrained LayerNorm's or
            # BatchNorm's beta/gamma, which ORT's fusions need to see in place
            return MatchResult().fail(f"the operand is not a single constant {neutral:g}")
        if None not in (c.dtype, x.dtype) and c.dtype != x.dtype:
            return MatchResult().fail("the constant's type differs")
        if value.ndim == 0:
            return True
        if x.shape is None or value.ndim > len(x.shape):
            return MatchResult().fail("the constant may broadcast x up")
        for size, dim in zip(reversed(value.shape), reversed(list(x.shape))):
            if size != 1 and size != dim:
                return MatchResult().fail(f"the constant's shape {value.shape} may broadcast x {list(x.shape)} up")
        return True

    return check


def _neutral(op_type: str, neutral: float, commute: bool) -> Rule:
    name = f"{op_type.lower()}-{'zero' if neutral == 0 else 'one'}"
    doc = f"{op_type}(x, c) with c all {neutral:g} (Paddle's scale op: x * s + 0)  ->  x"
    return rule(
        name,
        "noops",
        doc,
        _neutral_pattern(op_type),
        lambda op, x, c, **_: op.Identity(x),
        _neutral_check(neutral),
        commute=commute,
    )


add_zero, sub_zero = _neutral("Add", 0.0, True), _neutral("Sub", 0.0, False)
mul_one, div_one = _neutral("Mul", 1.0, True), _neutral("Div", 1.0, False)


def _softmax_pattern(op, x):
    return op.Softmax(x, _allow_other_attributes=True, _outputs=["probabilities"])


def _softmax_check(context, x, probabilities, **_):
    axis = probabilities.producer().attributes.get_int("axis", -1)
    if axis == -1 or rank(x) is None or axis != rank(x) - 1:
        return MatchResult().fail(f"axis {axis} is already -1 or not the last axis (rank {rank(x)})")
    return True


# Softmax(x, axis=rank-1) -> Softmax(x, axis=-1)
softmax_last_axis = rule(
    "softmax-last-axis",
    "noops",
    "Softmax(x, axis=rank-1)  ->  Softmax(x, axis=-1), the form attention patterns match",
    _softmax_pattern,
    lambda op, x, probabilities: op.Softmax(x, axis=-1),
    _softmax_check,
)

RULES = [
    pad_zero,
    slice_full,
    slice_slice,
    reshape_view,
    reshape_same,
    reshape_unary_reshape,
    add_zero,
    sub_zero,
    mul_one,
    div_one,
    softmax_last_axis,
]
