"""Affine chains in classical-ML graphs (skl2onnx, onnxmltools): folded into the op after them.

scikit-learn pipelines are chains of affine maps before a model: StandardScaler is an
``ai.onnx.ml`` Scaler (``(x - offset) * scale``), PCA a ``Sub(x, mean)`` then ``MatMul(components)``,
and linear models a LinearClassifier/LinearRegressor (``x C^T + intercepts``, then a
post-transform). skl2onnx writes each step as its own node, and ORT runs each as a kernel: on
the small batches these models serve, the kernels' fixed cost is most of the time. An affine
map followed by an affine map is one affine map, so:

- ``sub-matmul``: ``MatMul(x - c, W) -> Gemm(x, W, -c W)``;
- ``scaler-matmul``: ``MatMul(Scaler(x), W)`` or ``Gemm(Scaler(x), W, b) -> Gemm(x, diag(scale) W,
  b - (offset * scale) W)``;
- ``linear-model-fold``: ``LinearClassifier/LinearRegressor(Gemm(x, W, b))`` or ``(Scaler(x))`` ->
  the same model with ``C' = C W^T`` (``C diag(scale)``) and intercepts ``i + C b``
  (``i - C (offset * scale)``): StandardScaler + LogisticRegression becomes one node.

Legality: x is float32 and 2-D ([batch, features]); every W, b, c, offset, scale is a constant
(Scaler's attributes, one value or one per feature); Gemm has alpha = beta = 1 and no transA
(transB is honoured); c and b vary along the last axis only. The folded constants are computed
in float64 and rounded once: the results equal the chain's up to float32 rounding of the
reassociated sums (verify's tolerance), and the post-transform, labels and outputs of the
linear model are kept as they are.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, rank

FAMILY = "ml"
ML = "ai.onnx.ml"


_SHAPE_KEEPING = {("", "Sub"), ("", "Add"), ("", "Mul"), (ML, "Scaler"), (ML, "Normalizer")}


def _float_2d(x: ir.Value, depth: int = 4) -> str | None:
    """None when x is float32 [batch, features]; read through the shape-keeping ops before it
    when shape inference left x unannotated (it does not know the ai.onnx.ml ops)."""
    while (
        x.shape is None
        and depth
        and x.producer() is not None
        and (x.producer().domain, x.producer().op_type) in _SHAPE_KEEPING
    ):
        x, depth = (
            x.producer().inputs[0],
            depth - 1,
        )  # these ops keep their first input's shape (their constants are rows)
    if x.dtype not in (ir.DataType.FLOAT, None) or rank(x) != 2:
        return f"x is {x.dtype} of rank {rank(x)}; float32 [batch, features] needed"
    return None


def _row(value: ir.Value) -> np.ndarray | None:
    """A constant that varies along the last axis only, as a 1-D float64 array."""
    array = constant(value)
    if array is None or any(d != 1 for d in array.shape[:-1]):
        return None
    return array.astype(np.float64).reshape(-1)


def _weights(w: ir.Value, transposed: bool = False) -> np.ndarray | None:
    array = constant(w)
    if array is None or array.ndim != 2:
        return None
    return (array.T if transposed else array).astype(np.float64)


def _gemm(op, x, weights: np.ndarray, bias: np.ndarray, name: str):
    w = op.initializer(ir.tensor(weights.astype(np.float32)), name=f"{name}_folded_w")
    b = op.initializer(ir.tensor(bias.astype(np.float32)), name=f"{name}_folded_b")
    return op.Gemm(x, w, b)


def _sub_matmul_pattern(op, x, c, w):
    return op.MatMul(op.Sub(x, c), w, _outputs=["product"])


def _sub_matmul_check(context, x, c, w, **_):
    problem = _float_2d(x)
    if problem:
        return MatchResult().fail(problem)
    weights, shift = _weights(w), _row(c)
    if weights is None or shift is None or shift.size not in (1, weights.shape[0]):
        return MatchResult().fail("W or c is not a constant of the features' size")
    return True


def _sub_matmul(op, x, c, w, product):
    weights = _weights(w)
    shift = np.broadcast_to(_row(c), (weights.shape[0],))
    return _gemm(op, x, weights, -(shift @ weights), product.name)


# MatMul(x - c, W) -> Gemm(x, W, -c W)   (PCA's centring)
sub_matmul = rule(
    "sub-matmul",
    FAMILY,
    "MatMul(x - c, W), c and W constants  ->  Gemm(x, W, -c W)",
    _sub_matmul_pattern,
    _sub_matmul,
    _sub_matmul_check,
)


def _scaling(node: ir.Node, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Scaler's (offset, scale), each broadcast to ``features`` values."""
    offset = np.asarray(node.attributes["offset"].as_floats() if "offset" in node.attributes else [0.0], np.float64)
    scale = np.asarray(node.attributes["scale"].as_floats() if "scale" in node.attributes else [1.0], np.float64)
    return np.broadcast_to(offset, (features,)), np.broadcast_to(scale, (features,))


def _scaler_sizes_fit(node: ir.Node, features: int) -> bool:
    sizes = [len(node.attributes[a].as_floats()) for a in ("offset", "scale") if a in node.attributes]
    return all(size in (1, features) for size in sizes)


def _scaler_matmul_pattern(op, x, w):
    scaled = op.Scaler(x, _domain=ML, _allow_other_attributes=True, _outputs=["scaled"])
    return op.MatMul(scaled, w, _outputs=["product"])


def _scaler_gemm_pattern(op, x, w, b):
    scaled = op.Scaler(x, _domain=ML, _allow_other_attributes=True, _outputs=["scaled"])
    return op.Gemm(scaled, w, b, _allow_other_attributes=True, _outputs=["product"])


def _gemm_plain(node: ir.Node) -> bool:
    a = node.attributes
    return a.get_float("alpha", 1.0) == 1.0 and a.get_float("beta", 1.0) == 1.0 and not a.get_int("transA", 0)


def _scaler_check(context, x, w, scaled, product, b=None, **_):
    problem = _float_2d(x)
    if problem:
        return MatchResult().fail(problem)
    gemm = product.producer()
    transposed = gemm.op_type == "Gemm" and bool(gemm.attributes.get_int("transB", 0))
    weights = _weights(w, transposed)
    if weights is None or (gemm.op_type == "Gemm" and not _gemm_plain(gemm)):
        return MatchResult().fail("W is not a constant matrix, or the Gemm scales or transposes its input")
    if not _scaler_sizes_fit(scaled.producer(), weights.shape[0]):
        return MatchResult().fail("the Scaler's offset/scale do not match the features")
    if b is not None and (_row(b) is None or _row(b).size not in (1, weights.shape[1])):
        return MatchResult().fail("the Gemm's bias is not a constant row")
    return True


def _scaler_fold(op, x, w, scaled, product, b=None):
    gemm = product.producer()
    weights = _weights(w, gemm.op_type == "Gemm" and bool(gemm.attributes.get_int("transB", 0)))
    offset, scale = _scaling(scaled.producer(), weights.shape[0])
    bias = np.zeros(weights.shape[1]) if b is None else np.broadcast_to(_row(b), (weights.shape[1],))
    return _gemm(op, x, scale[:, None] * weights, bias - (offset * scale) @ weights, product.name)


# MatMul/Gemm(Scaler(x), W[, b]) -> Gemm(x, diag(scale) W, b - (offset * scale) W)
scaler_matmul = rule(
    "scaler-matmul",
    FAMILY,
    "MatMul or Gemm(Scaler(x), W, b) (StandardScaler before a linear step)  ->  one Gemm",
    [_scaler_matmul_pattern, _scaler_gemm_pattern],
    _scaler_fold,
    _scaler_check,
)


def _coefficients(node: ir.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """A linear model's (C [outputs, features], intercepts [outputs]), or None when unreadable."""
    a = node.attributes
    if "coefficients" not in a:
        return None
    flat = np.asarray(a["coefficients"].as_floats(), np.float64)
    intercepts = np.asarray(a["intercepts"].as_floats() if "intercepts" in a else [], np.float64)
    outputs = intercepts.size or a.get_int("targets", 1)
    if outputs == 0 or flat.size % outputs:
        return None
    return flat.reshape(outputs, -1), intercepts if intercepts.size else np.zeros(outputs)


def _linear_pattern(model_op: str, source: str):
    outputs = ["model"] if model_op == "LinearRegressor" else ["model", "scores"]

    def after_gemm(op, x, w, b):
        before = op.Gemm(x, w, b, _allow_other_attributes=True, _outputs=["before"])
        return getattr(op, model_op)(before, _domain=ML, _allow_other_attributes=True, _outputs=outputs)

    def after_scaler(op, x):
        before = op.Scaler(x, _domain=ML, _allow_other_attributes=True, _outputs=["before"])
        return getattr(op, model_op)(before, _domain=ML, _allow_other_attributes=True, _outputs=outputs)

    return after_gemm if source == "gemm" else after_scaler


def _folded_affine(before: ir.Node, w, b, features: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The step before the model as (A [in, features], shift [features]): x A + shift."""
    if before.op_type == "Scaler":
        if not _scaler_sizes_fit(before, features):
            return None
        offset, scale = _scaling(before, features)
        return np.diag(scale), -(offset * scale)
    weights, bias = _weights(w, bool(before.attributes.get_int("transB", 0))), _row(b)
    if (
        weights is None
        or bias is None
        or not _gemm_plain(before)
        or weights.shape[1] != features
        or bias.size not in (1, features)
    ):
        return None
    return weights, np.broadcast_to(bias, (features,))


def _linear_check(context, x, model, w=None, b=None, **_):
    problem = _float_2d(x)
    read = _coefficients(model.producer())
    if problem or read is None:
        return MatchResult().fail(problem or "the model's coefficients are unreadable")
    if _folded_affine(model.producer().inputs[0].producer(), w, b, read[0].shape[1]) is None:
        return MatchResult().fail("the step before the model is not a constant affine map of its features")
    return True


def _linear_fold(op, x, model, w=None, b=None, **_):
    node = model.producer()
    coefficients, intercepts = _coefficients(node)
    matrix, shift = _folded_affine(node.inputs[0].producer(), w, b, coefficients.shape[1])
    attributes = {k: v for k, v in node.attributes.items() if k not in ("coefficients", "intercepts")}
    new_c = (coefficients @ matrix.T).astype(np.float32).reshape(-1).tolist()
    new_i = (intercepts + coefficients @ shift).astype(np.float32).tolist()
    outputs = 1 if node.op_type == "LinearRegressor" else 2
    return getattr(op, node.op_type)(
        x, coefficients=new_c, intercepts=new_i, **attributes, _domain=ML, _outputs=outputs
    )


# LinearClassifier/LinearRegressor(Gemm(x) or Scaler(x)) -> the model on x with folded coefficients
linear_model_fold = rule(
    "linear-model-fold",
    FAMILY,
    "LinearClassifier/LinearRegressor(Gemm(x, W, b) or Scaler(x))  ->  one linear model on x",
    [_linear_pattern(m, s) for m in ("LinearClassifier", "LinearRegressor") for s in ("gemm", "scaler")],
    _linear_fold,
    _linear_check,
)

RULES = [sub_matmul, scaler_matmul, linear_model_fold]
