"""Shape specialization: fixed dimensions fold the shape arithmetic away and keep the outputs; a
dimension or input the model does not have, or a size that contradicts it, is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.api.files import optimize
from graphopt.core.errors import GraphoptError
from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.specialize import fix_shapes
from tests.passes.onnx.harness import assert_same_outputs, parse, run

# A head split as dynamic exports write it: the Reshape target is computed from x's shape.
HEAD_SPLIT = """<ir_version: 8, opset_import: ["" : 18]>
g (float[batch, sequence, 8] x) => (float[batch, 2, sequence, 4] y)
  <int64[1] zero = {0}, int64[1] one = {1}, int64[2] heads = {2, 4}> {
    s = Shape(x)
    b = Gather(s, zero)
    n = Gather(s, one)
    target = Concat<axis = 0>(b, n, heads)
    r = Reshape(x, target)
    y = Transpose<perm = [0, 2, 1, 3]>(r)
}"""


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph]


def test_fixed_dims_fold_the_shape_subgraph_and_keep_outputs():
    original = parse(HEAD_SPLIT)
    fixed = onnx_files.copy(original)
    notes = fix_shapes(fixed, {"batch": 1, "sequence": 5}, {})
    assert _ops(fixed) == ["Reshape", "Transpose"]  # Shape, Gathers and Concat folded to a constant
    assert list(fixed.graph.inputs[0].shape) == [1, 5, 8]
    assert list(fixed.graph.outputs[0].shape) == [1, 2, 5, 4]
    assert any("x [1, 5, 8]" in note for note in notes)
    x = np.random.default_rng(0).standard_normal((1, 5, 8)).astype(np.float32)
    assert_same_outputs(original, fixed, {"x": x})


def test_a_fixed_input_shape_fixes_its_symbols_everywhere():
    fixed = parse(HEAD_SPLIT)
    fix_shapes(fixed, {}, {"x": (2, 3, 8)})
    assert list(fixed.graph.outputs[0].shape) == [2, 2, 3, 4]
    assert "Shape" not in _ops(fixed)


def test_fixing_only_the_batch_leaves_the_sequence_dynamic():
    fixed = parse(HEAD_SPLIT)
    fix_shapes(fixed, {"batch": 1}, {})
    assert fixed.graph.inputs[0].shape[1].value == "sequence"
    x = np.random.default_rng(1).standard_normal((1, 7, 8)).astype(np.float32)
    assert run(fixed, {"x": x})[0].shape == (1, 2, 7, 4)


@pytest.mark.parametrize(
    ("dims", "shapes", "message"),
    [
        ({"seq": 4}, {}, "--fix-dim seq: no input has that dimension (dynamic dimensions: batch, sequence)"),
        ({}, {"y": (1, 4, 8)}, "--fix-shape y: the model has no input 'y'"),
        ({}, {"x": (1, 4)}, "--fix-shape x: rank 2 given, the model's input has rank 3"),
        ({}, {"x": (1, 4, 6)}, "--fix-shape x: size 6 given where the model's input has 8"),
        ({"batch": 2}, {"x": (1, 4, 8)}, "--fix-shape x: size 1 given for 'batch', fixed to 2 by --fix-dim"),
    ],
)
def test_impossible_fixes_are_one_line_errors(dims, shapes, message):
    with pytest.raises(GraphoptError) as error:
        fix_shapes(parse(HEAD_SPLIT), dims, shapes)
    assert str(error.value) == message


def test_optimize_with_fixed_dims_writes_a_static_equivalent_model(tmp_path):
    from importlib import resources

    source = resources.files("graphopt.examples") / "tiny-bert.onnx"
    out = tmp_path / "fixed.onnx"
    # greedy: its one candidate, then the fixed input, both judged within the budget even on a
    # loaded machine, where a timing takes its whole 10 s slice (at 30 s the second did not fit)
    result = optimize(str(source), out, budget_s=60, policy="greedy", fix_dims={"batch": 1, "sequence": 16})
    assert any("the output accepts only these shapes" in n for n in result.notes)
    labels = [e.candidate.label for e in result.evaluations]
    assert "fixed shapes only" in labels
    written = onnx_files.load(out)
    if not result.kept_original:  # when kept, the dynamic input is written back unchanged
        assert all(list(v.shape) == [1, 16] for v in written.graph.inputs)
        assert not [n for n in written.graph if n.op_type == "Shape"]
    for evaluation in result.evaluations:
        assert evaluation.equivalence is None or evaluation.equivalence.ok
