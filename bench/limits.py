"""The machine's limit for a workload: the floating-point work and bytes a graph must move, and
how fast this machine can do either.

Work is counted from the graph at concrete input shapes (onnx shape inference with the inputs'
dimensions fixed): 2*M*N*K per MatMul/Gemm (times the broadcast batch), 2*K per output element
of a Conv (K = C_in/group * kernel area), and for ORT's fused Attention ops the two batched
matmuls they hide. Elementwise work is ignored: next to the GEMMs it is noise, and on this
machine it is bound by memory anyway, which the byte count covers. Bytes are the least any
implementation must move: every weight read once, inputs read once, outputs written once.

The floor time of a workload is max(flops / GEMM rate, bytes / bandwidth), with both rates
measured on this machine once per run (an ORT MatMul at 1024^3, and a numpy copy of 256 MB).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import onnx
from onnx import helper, shape_inference


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


def _with_concrete_inputs(proto: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    for value in model.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name]):
                dim.Clear()
                dim.dim_value = int(size)
    del model.graph.value_info[:]
    return shape_inference.infer_shapes(model, data_prop=True)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    found = {}
    for value in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        t = value.type.tensor_type
        if t.HasField("shape"):
            found[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in model.graph.initializer:
        found[init.name] = list(init.dims)
    return found


def _size(shape) -> int:
    return int(np.prod(shape)) if shape is not None and all(d is not None for d in shape) else 0


def count_work(proto: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> Work:
    """FLOPs and minimum bytes of ``proto`` with its inputs at ``shapes``."""
    model = _with_concrete_inputs(proto, shapes)
    known = _shapes(model)
    flops = 0.0
    for node in model.graph.node:
        flops += _node_flops(node, known)
    itemsize = lambda elem: np.dtype(helper.tensor_dtype_to_np_dtype(elem)).itemsize  # noqa: E731
    weights = sum(_size(list(t.dims)) * itemsize(t.data_type) for t in model.graph.initializer)
    io = sum(_size(known.get(v.name)) * itemsize(v.type.tensor_type.elem_type) for v in list(model.graph.input) + list(model.graph.output))
    return Work(flops=flops, bytes=float(weights + io))


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
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, [n, n]) for x in "ab"],
        [helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [n, n])],
    )  # fmt: skip
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
