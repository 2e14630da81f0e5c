"""What an op does, in categories that mean the same in every format and on every compiler.

The learned policy's target-neutral features (graphopt/policies/features.py) count ops by
category, not by name: a convolution is "contraction" whether ONNX calls it ``Conv``, StableHLO
``stablehlo.convolution`` or aten ``convolution``, and a policy trained on transformers reads a
CNN's decision in terms of what the CNN holds (contractions, normalizations, activations) rather
than in terms of transformer rules that cannot apply to it.

Names are normalized before lookup: a dialect or domain prefix (``stablehlo.``, ``chlo.``,
``aten.``, ``com.microsoft.``) and an overload suffix (``.default``, ``.Tensor``) are dropped and
case is folded, so one table serves ONNX, StableHLO and FX op names. An op the table does not
know is "other".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

CATEGORIES = (
    "contraction",  # matmul, gemm, convolution: where the FLOPs are
    "normalization",  # layer/RMS/batch/group norms, fused or spelled out by their moments
    "activation",  # pointwise nonlinearities: GELU, erf, tanh, ReLU, clips
    "softmax",  # softmax and the exp/max of its spelled-out form
    "attention",  # an attention op a compiler or rule already formed
    "elementwise",  # pointwise arithmetic
    "reduction",  # sums, means, maxima over axes
    "data_movement",  # transposes, reshapes, slices, concatenations, gathers, broadcasts
    "shape_arithmetic",  # shapes computed at run time: Shape, Range, ConstantOfShape, casts of ints
    "other",
)

_TABLE = {
    "contraction": (
        "matmul gemm conv convtranspose dot dot_general convolution mm bmm addmm baddbmm linear einsum "
        "matmulinteger qlinearmatmul qlinearconv fusedmatmul fusedconv conv1d conv2d conv3d _convolution"
    ),
    "normalization": (
        "layernormalization simplifiedlayernormalization skiplayernormalization skipsimplifiedlayernormalization "
        "batchnormalization instancenormalization groupnormalization rmsnormalization layer_norm native_layer_norm "
        "batch_norm _native_batch_norm_legit_no_training native_batch_norm group_norm native_group_norm "
        "batch_norm_inference rms_norm embedlayernormalization"
    ),
    "activation": (
        "relu leakyrelu prelu gelu fastgelu biasgelu erf tanh sigmoid logistic hardsigmoid hardswish silu "
        "swish mish elu selu celu softplus clip clamp clamp_min clamp_max hardtanh relu6 quickgelu"
    ),
    "softmax": "softmax logsoftmax _softmax log_softmax _log_softmax exp exponential",
    "attention": (
        "attention multiheadattention groupqueryattention rotaryembedding scaled_dot_product_attention "
        "_scaled_dot_product_flash_attention _scaled_dot_product_efficient_attention"
    ),
    "elementwise": (
        "add sub mul div pow sqrt rsqrt reciprocal neg abs max min maximum minimum where select "
        "subtract multiply divide power negate sign floor ceil round log mod fmod rsub iadd masked_fill "
        "equal less greater and or not less_equal greater_equal eq ne lt gt le ge compare isnan"
    ),
    "reduction": (
        "reducemean reducesum reducemax reducemin reduceprod reducel2 reducesumsquare reduce mean sum amax "
        "amin argmax argmin var std var_mean"
    ),
    "data_movement": (
        "transpose reshape flatten squeeze unsqueeze concat concatenate split slice gather gatherelements "
        "gathernd scatter scatternd expand tile pad identity broadcast_in_dim dynamic_broadcast_in_dim "
        "dynamic_reshape dynamic_slice dynamic_update_slice real_dynamic_slice permute view t narrow cat "
        "chunk expand_as embedding index_select select_scatter slice_scatter clone copy contiguous "
        "dynamic_pad iota depthtospace spacetodepth resize upsample"
    ),
    "shape_arithmetic": ("shape size constantofshape range nonzero get_dimension_size sym_size sym_numel arange"),
}
_CATEGORY = {name: category for category, names in _TABLE.items() for name in names.split()}
_PREFIXES = ("com.microsoft.", "stablehlo.", "chlo.", "mhlo.", "aten.", "prims.", "onnx.", "ai.onnx.")
_CAST = {"cast", "convert", "to", "float", "half", "bfloat16", "type", "_to_copy"}


def category(op_type: str) -> str:
    """The category of one op, by any format's name for it ("other" when unknown)."""
    name = op_type.lower()
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = name.split(".", 1)[0].rstrip("_") or name  # aten overloads: add.Tensor, add_ (in place)
    if name in _CAST:
        return "data_movement"  # a cast moves every element once: a copy to the compiler
    return _CATEGORY.get(name, "other")


def shares(op_types: Iterable[str]) -> dict[str, float]:
    """Each category's share of ``op_types`` (empty when there are none)."""
    counts = Counter(category(op) for op in op_types)
    total = sum(counts.values())
    return {name: count / total for name, count in counts.items()} if total else {}
