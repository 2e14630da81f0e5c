"""The machine's limit for a workload: the floating-point work and bytes a graph must move, and
how fast this machine can do either.

Work is counted from the graph at concrete input shapes, read by running the model once in ORT
with every MatMul/Gemm/Conv operand exposed as an output (static shape inference loses track of
sizes behind dynamic Reshapes, which exports are full of): 2*M*N*K per MatMul/Gemm (times the
broadcast batch), 2*K per output element of a Conv (K = C_in/group * kernel area), and for ORT's
fused Attention ops the two batched matmuls they hide. Elementwise work is ignored: next to the
GEMMs it is noise, and on this machine it is bound by memory anyway, which the byte count covers.
Bytes are the least any implementation must move: every weight read once (of an embedding table
only the rows a Gather reads), inputs read once, outputs written once.

The floor time of a workload is max(flops / GEMM rate, bytes / bandwidth), with both rates
measured on this machine once per run (an ORT MatMul at 1024^3, and a numpy copy of 256 MB).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import onnx
from onnx import helper


@dataclasses.dataclass(frozen=True)
class Work:
    flops: float
    bytes: float


@dataclasses.dataclass(frozen=True)
class MachineRates:
    gemm_flops_per_s: float
    bytes_per_s: float

    def floor_s(self, work: Work) -> float:
        return max(work.flops / self.gemm_flops_per_s, work.bytes / self.bytes_per_s)


_COUNTED = (
    "MatMul",
    "FusedMatMul",
    "Gemm",
    "Conv",
    "FusedConv",
    "Attention",
    "MultiHeadAttention",
    "GroupQueryAttention",
)


def _observed_shapes(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Shapes of every operand of the counted ops, from one run with them exposed as outputs."""
    import onnxruntime as ort

    from graphopt.targets.onnxruntime.compat import clamp_ir_version

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    present = {o.name for o in model.graph.output}
    constants = {i.name: list(i.dims) for i in model.graph.initializer}
    wanted = {
        name
        for node in model.graph.node
        if node.op_type in _COUNTED or node.op_type == "Gather"
        for name in list(node.input) + list(node.output)
    }
    for name in sorted(wanted - present - set(constants) - {""}):
        model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        clamp_ir_version(model).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    shapes = {name: list(np.shape(value)) for name, value in zip(names, session.run(None, feeds))}
    return shapes | constants


def _size(shape) -> int:
    return int(np.prod(shape)) if shape is not None and all(d is not None for d in shape) else 0


def count_work(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> Work:
    """FLOPs and minimum bytes of ``proto`` run on ``feeds``."""
    known = _observed_shapes(proto, feeds)
    flops = sum(_node_flops(node, known) for node in proto.graph.node)
    itemsize = lambda elem: np.dtype(helper.tensor_dtype_to_np_dtype(elem)).itemsize  # noqa: E731
    weights = sum(_weight_bytes(t, proto.graph.node, known) * itemsize(t.data_type) for t in proto.graph.initializer)
    io = sum(value.nbytes for value in feeds.values())
    io += sum(_size(known.get(v.name)) * itemsize(v.type.tensor_type.elem_type) for v in proto.graph.output)
    return Work(flops=flops, bytes=float(weights + io))


def _weight_bytes(tensor: onnx.TensorProto, nodes, known) -> int:
    """Elements of ``tensor`` a run must read: all of it, or the gathered rows of a lookup table."""
    users = [n for n in nodes if tensor.name in n.input]
    if users and all(n.op_type == "Gather" and n.input[0] == tensor.name for n in users):
        row = _size(list(tensor.dims)[1:]) if len(tensor.dims) > 1 else 1
        return min(_size(list(tensor.dims)), sum(_size(known.get(n.input[1])) * row for n in users))
    return _size(list(tensor.dims))


def _node_flops(node: onnx.NodeProto, known) -> float:
    op = node.op_type
    if op in ("MatMul", "FusedMatMul", "Gemm"):
        a, b = known.get(node.input[0]), known.get(node.input[1])
        out = known.get(node.output[0])
        if not a or not b or not out or None in a + b + out:
            return 0.0
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[-2] if trans_a else a[-1]
        return 2.0 * _size(out) * k
    if op in ("Conv", "FusedConv"):
        w, out = known.get(node.input[1]), known.get(node.output[0])
        if not w or not out or None in w + out:
            return 0.0
        return 2.0 * _size(out) * _size(w[1:])
    if op in ("Attention", "MultiHeadAttention", "GroupQueryAttention"):
        q, out = known.get(node.input[0]), known.get(node.output[0])
        if not q or not out or None in q + out or len(q) != 3:
            return 0.0
        batch, seq, hidden = out
        return 2.0 * 2.0 * batch * seq * seq * hidden  # QK^T and PV (kv length = seq without a cache)
    return 0.0


def measure_rates(repeats: int = 5) -> MachineRates:
    """This machine's fp32 GEMM rate (through ORT, as the workloads run) and copy bandwidth."""
    import onnxruntime as ort

    n = 1024
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, [n, n]) for x in "ab"],
        [helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    feeds = {"a": a, "b": a}
    session.run(None, feeds)
    gemm_s = min(_timed(lambda: session.run(None, feeds)) for _ in range(repeats))
    source = np.ones(64 * 1024 * 1024 // 2, dtype=np.float64)  # 256 MB
    target = np.empty_like(source)
    copy_s = min(_timed(lambda: np.copyto(target, source)) for _ in range(repeats))
    return MachineRates(gemm_flops_per_s=2.0 * n**3 / gemm_s, bytes_per_s=2 * source.nbytes / copy_s)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
