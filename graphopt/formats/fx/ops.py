"""Reading a torch-level FX node by meaning: what it computes, its arguments, its example value.

Dynamo keeps the user's spelling: ``x * y`` is ``operator.mul``, ``x.mul(y)`` a ``call_method``,
``torch.mul(x, y)`` the function. ``kind`` gives all of them one name ("mul"), so a rule states
its pattern once. Example values (``node.meta["example_value"]``, fake tensors with symbolic
sizes) give dtypes and ranks without running anything.
"""

from __future__ import annotations

import operator

import torch
import torch.fx

_ALIASES = {"truediv": "div", "true_divide": "div", "multiply": "mul", "clip": "clamp", "_log_api_usage_once": None}
_OPERATORS = {
    operator.mul: "mul",
    operator.add: "add",
    operator.sub: "sub",
    operator.truediv: "div",
    operator.matmul: "matmul",
    operator.pow: "pow",
    operator.neg: "neg",
    operator.getitem: "getitem",
}


# kind() -> the ONNX operator name the learned policy's features count (Format.portable_op_types)
PORTABLE_OPS = {
    **dict.fromkeys(("linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "einsum"), "MatMul"),
    **dict.fromkeys(("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"), "Conv"),
    **dict.fromkeys(("softmax", "_softmax"), "Softmax"),
    "layer_norm": "LayerNormalization",
    "erf": "Erf",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    **dict.fromkeys(("embedding", "index_select", "gather"), "Gather"),
    **dict.fromkeys(("transpose", "permute", "t"), "Transpose"),
    **dict.fromkeys(("view", "reshape", "flatten"), "Reshape"),
    **dict.fromkeys(("add", "iadd"), "Add"),
    "mul": "Mul",
    "div": "Div",
    **dict.fromkeys(("sub", "rsub"), "Sub"),
    **dict.fromkeys(("where", "masked_fill"), "Where"),
    **dict.fromkeys(("expand", "expand_as"), "Expand"),
    **dict.fromkeys(("cat", "concat"), "Concat"),
    **dict.fromkeys(("narrow", "slice"), "Slice"),
    "mean": "ReduceMean",
    "pow": "Pow",
    **dict.fromkeys(("sqrt", "rsqrt"), "Sqrt"),
    **dict.fromkeys(("to", "float", "half", "bfloat16", "type"), "Cast"),
    "batch_norm": "BatchNormalization",
    **dict.fromkeys(("max", "maximum", "amax"), "Max"),
    **dict.fromkeys(("min", "minimum", "amin"), "Min"),
    **dict.fromkeys(("clamp", "clamp_min", "clamp_max", "hardtanh"), "Clip"),
    "relu": "Relu",
    **dict.fromkeys(("split", "chunk"), "Split"),
    "unsqueeze": "Unsqueeze",
}


def kind(node) -> str | None:
    """What ``node`` computes, however it was spelled: "mul", "matmul", "softmax", "gelu"...
    (None for anything that is not a call: placeholders, constants)."""
    if not isinstance(node, torch.fx.Node):
        return None
    if node.op == "call_method":
        name = node.target
    elif node.op == "call_function":
        name = _OPERATORS.get(node.target) or getattr(node.target, "__name__", None)
    else:
        return None
    return _ALIASES.get(name, name)


def arg(node: torch.fx.Node, index: int, name: str, default=None):
    """The argument passed at ``index`` or as ``name`` (methods count ``self`` as index 0)."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def meta(value):
    """The example value of a node (a fake tensor, a SymInt), or ``value`` itself if it is a constant."""
    if isinstance(value, torch.fx.Node):
        return value.meta.get("example_value", value.meta.get("val"))
    return value


def constant(value, expected: float, rel: float = 1e-6) -> bool:
    """Whether ``value`` is a Python number equal to ``expected`` (to ``rel``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value - expected) <= rel * max(1.0, abs(expected))
