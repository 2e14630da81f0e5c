"""Shape specialization: fix the dynamic dimensions a user binds, then fold the shape arithmetic.

An export with dynamic axes computes every Reshape target, mask size and position range at run
time: Shape -> Gather -> Concat chains per layer, a dozen small kernels each, which on a
latency-bound model (batch 1, a short sequence) cost as much as a fused kernel. A user who serves
one shape can say so, the way ORT's ``make_dynamic_shape_fixed`` tool does:

    graphopt optimize model.onnx --fix-dim batch=1 --fix-dim sequence=16
    graphopt optimize model.onnx --fix-shape input_ids=1,16 --fix-shape attention_mask=1,16

The named symbols (or inputs) get static sizes on the graph's inputs and outputs, shapes are
inferred again, and onnxscript's constant folder turns the now-static Shape subgraphs into
constants (the same folder the rewrite loop runs between rounds). The result accepts only the
fixed shapes: the report says so, and the baseline is still the dynamic input, verified and timed
at the fixed shapes.
"""

from __future__ import annotations

import onnx_ir as ir
import onnxscript.optimizer
from onnx_ir.passes.common import RemoveUnusedNodesPass

from graphopt.core.errors import GraphoptError
from graphopt.formats.onnx.rewrite import fold_small_fills
from graphopt.formats.onnx.shape_inference import infer_shapes


def fix_shapes(model: ir.Model, dims: dict[str, int], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Fix ``dims`` (symbol -> size) and ``shapes`` (input -> sizes) on ``model`` in place and fold
    the shape subgraphs. Returns what was fixed, one line per input, for the report."""
    if not dims and not shapes:
        return []
    inputs = {v.name: v for v in model.graph.inputs if v.name not in model.graph.initializers}
    symbols = {
        d.value for v in inputs.values() if v.shape is not None for d in v.shape if isinstance(d, ir.SymbolicDim)
    }
    unknown = [name for name in dims if name not in symbols]
    if unknown:
        known = ", ".join(sorted(s for s in symbols if s)) or "none"
        raise GraphoptError(f"--fix-dim {unknown[0]}: no input has that dimension (dynamic dimensions: {known})")
    for name, sizes in shapes.items():
        if name not in inputs:
            raise GraphoptError(f"--fix-shape {name}: the model has no input {name!r}")
        value = inputs[name]
        if value.shape is None or len(value.shape) != len(sizes):
            raise GraphoptError(
                f"--fix-shape {name}: rank {len(sizes)} given, "
                f"the model's input has rank {value.shape.rank() if value.shape else 'unknown'}"
            )
        for dim, size in zip(value.shape, sizes):
            if isinstance(dim, int) and dim != size:
                raise GraphoptError(f"--fix-shape {name}: size {size} given where the model's input has {dim}")
            if isinstance(dim, ir.SymbolicDim) and dim.value in dims and dims[dim.value] != size:
                raise GraphoptError(
                    f"--fix-shape {name}: size {size} given for {dim.value!r}, fixed to {dims[dim.value]} by --fix-dim"
                )
    # A symbol fixed through one input's shape is fixed everywhere it appears.
    bound = dict(dims)
    for name, sizes in shapes.items():
        for dim, size in zip(inputs[name].shape, sizes):
            if isinstance(dim, ir.SymbolicDim) and dim.value:
                bound.setdefault(dim.value, size)
    for value in [*inputs.values(), *model.graph.outputs]:
        if value.shape is not None:
            value.shape = ir.Shape(
                [
                    bound.get(d.value, d) if isinstance(d, ir.SymbolicDim) and d.value in bound else d
                    for d in value.shape
                ]
            )
    for name, sizes in shapes.items():  # anonymous dims (no symbol) are fixed by position
        inputs[name].shape = ir.Shape(sizes)
    _fold(model)
    return [
        f"input shapes fixed: {name} {list(v.shape)}"
        for name, v in inputs.items()
        if v.shape is not None and all(isinstance(d, int) for d in v.shape)
    ] + ["the output accepts only these shapes"]


def _fold(model: ir.Model) -> None:
    """Re-infer every intermediate shape from the fixed inputs, then fold what became constant."""
    for node in model.graph.all_nodes():
        for out in node.outputs:
            if out not in model.graph.outputs:
                out.shape = None  # stale symbolic shapes would keep Shape nodes from folding
    infer_shapes(model)
    onnxscript.optimizer.fold_constants(model, onnx_shape_inference=True, should_fold=fold_small_fills)
    RemoveUnusedNodesPass()(model)
    infer_shapes(model)
