"""Where OpenVINO's time goes, by kernel, from its own per-primitive counters (``PERF_COUNT``).

As for ORT (targets/onnxruntime/profile.py), the sides given are profiled together, their runs
alternating, so each breakdown covers the same stretch of the machine's time. A kernel is keyed
by its layer type and, when it holds several of the input graph's nodes, their ONNX op types
(report.py's key): "Subgraph[Add+MatMul+Mul+Softmax+Transpose]" is attention fused into one
snippet, "MVN" the normalization itself, "Subgraph[Add+Mul]" the scale and shift after it.
"""

from __future__ import annotations

import numpy as np

from graphopt.formats.onnx import files as onnx_files
from graphopt.targets.openvino.report import NOT_KERNELS, kernel_key, onnx_names, original_names


def op_times(sides, feeds, runs: int = 20, warmup: int = 5) -> list[dict[str, float]]:
    """Mean milliseconds per run spent in each kernel kind, one breakdown per (target, model)."""
    prepared = []
    for target, model in sides:
        bound = target.bound_to(feeds)
        compiled = bound.compile_for(bound.read(model), bound.bound_shapes, profiling=True)
        names = onnx_names(onnx_files.iter_nodes(model))
        prepared.append((compiled, compiled.create_infer_request(), names))
    arrays = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
    totals = [dict() for _ in prepared]
    for i in range(warmup + runs):
        for (compiled, request, names), total in zip(prepared, totals):
            request.infer(arrays)
            if i >= warmup:
                _add(total, compiled, request, names, runs)
    return [dict(sorted(t.items(), key=lambda kv: -kv[1])) for t in totals]


def _add(total: dict, compiled, request, names: dict, runs: int) -> None:
    held = original_names(compiled)
    entries = request.get_profiling_info()
    merged = {e.node_name: e.node_type for e in entries if e.status.name == "NOT_RUN" and e.exec_type == "undef"}
    for entry in entries:
        if entry.status.name != "EXECUTED" or entry.node_type in NOT_KERNELS:
            continue
        key = kernel_key(entry.node_type, held.get(entry.node_name, ()), names, merged)
        total[key] = total.get(key, 0.0) + entry.real_time.total_seconds() * 1e3 / runs
