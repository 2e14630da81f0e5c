"""Small helpers the ONNX rule families share: reading constants and shapes off onnx_ir values."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir


def constant(value: ir.Value | None) -> np.ndarray | None:
    """The value's constant content (initializer or Constant node), or None."""
    if value is None:
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def is_scalar_close(value: ir.Value, expected: float, rtol: float = 1e-6) -> bool:
    """True when ``value`` is a constant holding ``expected`` (one element, any rank)."""
    array = constant(value)
    return (
        array is not None
        and array.size == 1
        and bool(np.isclose(float(array.reshape(())), expected, rtol=rtol, atol=0))
    )


def static_shape(value: ir.Value) -> tuple[int, ...] | None:
    if value.shape is None or not all(isinstance(d, int) for d in value.shape):
        return None
    return tuple(value.shape)


def same_dim(a, b) -> bool:
    """Two dimensions shape inference shows are the same: equal integers, or the same named
    symbol (two unknown dimensions are not known to be equal)."""
    if isinstance(a, ir.SymbolicDim) and a.value is None or isinstance(b, ir.SymbolicDim) and b.value is None:
        return False
    return a == b


def opset(value: ir.Value) -> int:
    """The default-domain opset of the graph ``value`` lives in (0 inside a subgraph, which
    records none)."""
    return value.graph.opset_imports.get("", 0) if value.graph is not None else 0


def rank(value: ir.Value) -> int | None:
    return None if value.shape is None else len(value.shape)


FLOAT_TYPES = frozenset({ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE})


def same_computation(a: ir.Value | None, b: ir.Value | None, depth: int = 12) -> bool:
    """True when ``a`` and ``b`` are the same value, or provably equal: the same output of nodes
    with equal op, attributes and (recursively) inputs, or constants with equal contents. Two
    rewrites that each built the same helper (RoPE's cos/sin tables) give such twins until CSE."""
    if a is b:
        return True
    if a is None or b is None or depth == 0:
        return False
    ca, cb = constant(a), constant(b)
    if ca is not None or cb is not None:
        return (
            ca is not None
            and cb is not None
            and ca.dtype == cb.dtype
            and ca.shape == cb.shape
            and bool(np.array_equal(ca, cb))
        )
    na, nb = a.producer(), b.producer()
    if na is None or nb is None or a.index() != b.index():
        return False
    if (na.op_type, na.domain, len(na.inputs)) != (nb.op_type, nb.domain, len(nb.inputs)):
        return False
    if {k: str(v.value) for k, v in na.attributes.items()} != {k: str(v.value) for k, v in nb.attributes.items()}:
        return False
    return all(same_computation(x, y, depth - 1) for x, y in zip(na.inputs, nb.inputs))


def folded(value: ir.Value | None, depth: int = 16) -> np.ndarray | None:
    """The value's content when it is a constant or computed from constants alone (the pads,
    shapes and indices exporters compute at run time: ConstantOfShape, Concat, Slice, Cast,
    DequantizeLinear...), evaluated node by node with onnxruntime; None when anything upstream is
    an input, or a node cannot be evaluated on its own."""
    return _folded(value, depth, {})


def _folded(value: ir.Value | None, depth: int, seen: dict) -> np.ndarray | None:
    """folded() with the values already tried in this walk remembered (a decoder's activations
    fan in: without it, one walk from a late Mul visited 800 thousand values)."""
    if value is None:
        return None
    if id(value) in seen:
        return seen[id(value)]
    known = constant(value)
    if known is not None or depth == 0:
        return known  # out of depth here is not out of depth from a shorter path: not remembered
    if value.shape is None or static_shape(value) is not None:  # a symbolic dimension: computed from an input
        seen[id(value)] = None  # a cycle guard while this value's inputs are walked
        known = _folded_node(value, depth, seen)
    seen[id(value)] = known
    return known


def _folded_node(value: ir.Value, depth: int, seen: dict) -> np.ndarray | None:
    node = value.producer()
    if (
        node is None
        or node.domain not in ("", "ai.onnx")
        or any(a.type == ir.AttributeType.GRAPH for a in node.attributes.values())
    ):
        return None
    inputs = [None if v is None else _folded(v, depth - 1, seen) for v in node.inputs]
    if any(v is not None and x is None for v, x in zip(node.inputs, inputs)):
        return None
    try:
        return _evaluated(node, inputs)[value.index()]
    except Exception:  # an op ORT cannot run alone here: not foldable, not an error
        return None


def _evaluated(node: ir.Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """``node`` run alone by onnxruntime (no graph optimizations) on constant ``inputs``."""
    import onnx
    import onnxruntime

    proto = ir.serde.serialize_node(node)
    names = [f"in{i}" if array is not None else "" for i, array in enumerate(inputs)]
    outputs = [f"out{i}" for i in range(len(proto.output))]
    del proto.input[:], proto.output[:]
    proto.input.extend(names)
    proto.output.extend(outputs)
    feeds = {name: array for name, array in zip(names, inputs) if name}
    info = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [proto],
        "fold",
        [info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()],
        [onnx.ValueInfoProto(name=n) for n in outputs],
    )
    opset = node.graph.opset_imports.get("", 18) if node.graph is not None else 18
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)
