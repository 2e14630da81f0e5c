"""What OpenVINO ran for a graph, in its own terms, from two of its own outputs.

After one inference with ``PERF_COUNT`` the request's profiling info lists every primitive of
the executable graph: ``EXECUTED`` ones are the kernels that ran; an op OpenVINO fused into
another kernel shows ``NOT_RUN`` with exec type ``undef`` (a Gelu merged into a FullyConnected),
and one made in place (a Reshape) ``NOT_RUN`` with a real exec type. The compiled model's
runtime model names, per kernel, its ``layerType`` and ``originalLayersNames``: the ops it holds,
by OpenVINO's names for them, which are the ONNX node names or output names where the frontend
kept them.

- ``kernels``: primitives that ran, inputs and outputs left out;
- ``ops``: layer type -> count among them;
- ``fused``: kernels that hold more than one op, keyed by what they hold: "FullyConnected+Gelu"
  (OpenVINO ops merged into the kernel), or, for a kernel that holds several ONNX nodes but no
  separate OpenVINO op (a snippet), its layer type and the ONNX op types it holds
  ("Subgraph[Add+MatMul+Mul+Softmax+Transpose]"). ``fired`` is the same: OpenVINO's passes make
  every one of them (an ONNX graph holds no OpenVINO kernel);
- ``survivors``: ONNX nodes that ran as a kernel of their own (nothing else fused with them).
"""

from __future__ import annotations

from collections import Counter

from graphopt.core.protocols import FusionReport

NOT_KERNELS = frozenset({"Parameter", "Result", "Input", "Output", "Const", "Constant"})


def onnx_names(nodes) -> dict[str, tuple[str, str]]:
    """OpenVINO's possible name for each ONNX node (its name, or an output's) -> (node name, op type)."""
    names = {}
    for node in nodes:
        for value in node.outputs:
            if value is not None and value.name:
                names[value.name] = (node.name, node.op_type)
        if node.name:
            names[node.name] = (node.name, node.op_type)
    return names


def read_report(compiled_model, request, names: dict[str, tuple[str, str]]) -> FusionReport:
    """The FusionReport of ``compiled_model`` after ``request`` ran once with PERF_COUNT;
    ``names``: onnx_names of the input graph."""
    held = original_names(compiled_model)
    entries = request.get_profiling_info()
    merged = {e.node_name: e.node_type for e in entries if e.status.name == "NOT_RUN" and e.exec_type == "undef"}
    ops, fused = Counter(), Counter()
    survivors = set()
    for entry in entries:
        if entry.status.name != "EXECUTED" or entry.node_type in NOT_KERNELS:
            continue
        ops[entry.node_type] += 1
        key = kernel_key(entry.node_type, held.get(entry.node_name, ()), names, merged)
        if key != entry.node_type:
            fused[key] += 1
        nodes = _onnx_nodes(held.get(entry.node_name, ()), names)
        if len(nodes) == 1 and key == entry.node_type:
            survivors |= nodes
    return FusionReport(sum(ops.values()), dict(ops), dict(fused), dict(fused), frozenset(survivors))


def original_names(compiled_model) -> dict[str, tuple[str, ...]]:
    """Kernel name -> the names of the ops it holds, from the runtime model."""
    held = {}
    for op in compiled_model.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        text = info["originalLayersNames"].astype(str) if "originalLayersNames" in info else ""
        held[op.get_friendly_name()] = tuple(n for n in text.split(",") if n)
    return held


def kernel_key(layer_type: str, held: tuple[str, ...], names: dict, merged: dict[str, str]) -> str:
    """What a kernel is, by what it holds: its layer type alone when it holds one op."""
    absorbed = sorted({merged[name] for name in held if name in merged})
    if absorbed:
        return f"{layer_type}+{'+'.join(absorbed)}"
    nodes = _onnx_nodes(held, names)
    if len(nodes) < 2:
        return layer_type
    return f"{layer_type}[{'+'.join(sorted({names[n][1] for n in held if n in names}))}]"


def _onnx_nodes(held: tuple[str, ...], names: dict) -> set[str]:
    return {names[name][0] for name in held if name in names}
