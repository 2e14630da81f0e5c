"""Plant a real slowdown in a model without changing its outputs, to test `graphopt check`.

The planted work is a chain of MatMuls on the model's first float output, reduced to a scalar
and added back times 0: ``y' = y + 0 * mean(y W1 W2 ... Wk)``. ORT cannot remove it (``x * 0``
is not 0 when x is NaN or Inf, so no runtime folds it), it depends on the input so it cannot be
constant-folded, and ``y + 0 * s == y`` exactly for finite s. The chain length is calibrated by
timing, so the slowdown is a measured fraction, not a guess.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from graphopt.core.measure import interleaved
from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.feeds import verification_feeds
from graphopt.targets.onnxruntime import OrtTarget


def with_extra_work(model: ir.Model, matmuls: int, width: int = 256, seed: int = 0) -> ir.Model:
    planted = onnx_files.copy(model)
    graph = planted.graph
    output = next(v for v in graph.outputs if v.dtype == ir.DataType.FLOAT)
    rng = np.random.default_rng(seed)
    tape = ir.tape.Tape(graph)
    columns = output.shape[-1] if output.shape is not None and isinstance(output.shape[-1], int) else None
    if columns is None:
        raise ValueError("the planted work needs the output's last dimension to be static")
    flat = tape.op(
        "Reshape", [output, tape.initializer(ir.tensor(np.array([-1, columns], np.int64), name="planted_rows"))]
    )
    t = tape.op(
        "MatMul",
        [
            flat,
            tape.initializer(
                ir.tensor(
                    (rng.standard_normal((columns, width)) / np.sqrt(columns)).astype(np.float32), name="planted_w_in"
                )
            ),
        ],
    )
    for i in range(matmuls):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        t = tape.op("MatMul", [t, tape.initializer(ir.tensor(w, name=f"planted_w{i}"))])
    s = tape.op("ReduceMean", [t], attributes={"keepdims": 0})
    zero = tape.op("Mul", [s, tape.initializer(ir.tensor(np.array(0.0, np.float32), name="planted_zero"))])
    new_output = tape.op("Add", [output, zero])
    for node in tape.nodes:
        graph.append(node)
    index = list(graph.outputs).index(output)
    new_output.name, output.name = output.name, f"{output.name}_before_planted"
    graph.outputs[index] = new_output
    new_output.shape, new_output.type = output.shape, output.type
    return planted


def plant_slowdown(model_path, fraction: float, budget_s: float = 4.0, attempts: int = 6) -> tuple[ir.Model, float]:
    """A copy of the model that runs about ``1 + fraction`` times as long, and the measured ratio.

    The chain length is found by a few rounds of measure-and-rescale (the cost of one MatMul
    relative to the model is estimated from the last measurement); when even the shortest chain
    overshoots, the MatMuls are made narrower (halving the width quarters their cost).
    """
    model = prepare(onnx_files.load(model_path), [])
    feeds = verification_feeds(model, None, None)[0]
    base = OrtTarget().compile(model, report=False)
    k, width, best = 4, 256, None
    for _ in range(attempts):
        planted = with_extra_work(model, k, width=width)
        compiled = OrtTarget().compile(planted, report=False)
        ratio = interleaved(lambda: base.run(feeds), lambda c=compiled: c.run(feeds), budget_s=budget_s).ratio
        if best is None or abs(ratio - 1 - fraction) < abs(best[1] - 1 - fraction):
            best = (planted, ratio)
        if abs(ratio - 1 - fraction) < 0.15 * fraction:
            break
        per_matmul = max((ratio - 1) / (k + 1), 1e-4)  # the input projection counts as one more
        k = round(fraction / per_matmul) - 1
        if k < 2 and width > 16:
            width //= 2
            k = max(2, round(4 * fraction / per_matmul) - 1)
        k = max(0, k)
    return best
