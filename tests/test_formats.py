import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper

from graphopt.core.errors import BadModelError
from graphopt.formats.onnx import files as onnx_files
from graphopt.targets.onnxruntime import OrtTarget
from graphopt.targets.onnxruntime.compat import clamp_ir_version, max_ir_version


def _if_model() -> onnx.ModelProto:
    """y = x + 1 if cond else x * 2, with the branches as subgraphs."""
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    out = lambda n: helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [3])  # noqa: E731
    then_g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["a"])], "then", [], [out("a")])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["b"])], "else", [], [out("b")])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        "g",
        [helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []), out("x")],
        [out("y")],
        [one, two],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_save_and_load_keep_subgraphs_intact(tmp_path):
    path = tmp_path / "if.onnx"
    onnx.save(_if_model(), str(path))
    model = onnx_files.load(path)
    assert onnx_files.has_subgraphs(model)
    onnx_files.save(model, tmp_path / "copy.onnx")
    again = onnx_files.load(tmp_path / "copy.onnx")
    assert onnx_files.op_histogram(again) == {"If": 1, "Add": 1, "Mul": 1}
    x = np.array([1.0, 2.0, 3.0], np.float32)
    compiled = OrtTarget().compile(again, report=False)
    np.testing.assert_array_equal(compiled.run({"cond": np.array(True), "x": x})[0], x + 1)
    np.testing.assert_array_equal(compiled.run({"cond": np.array(False), "x": x})[0], x * 2)


def test_ir_version_newer_than_ort_is_lowered_when_the_opsets_allow():
    proto = _if_model()
    proto.ir_version = max_ir_version() + 1
    assert clamp_ir_version(proto).ir_version <= max_ir_version()
    # and the target does it on its own, so a model written by onnx 1.23 runs
    model = ir.serde.deserialize_model(_if_model())
    model.ir_version = max_ir_version() + 1
    assert OrtTarget().compile(model, report=False) is not None


def test_ir_version_cannot_be_lowered_below_what_the_opsets_need():
    proto = _if_model()
    proto.ir_version = max_ir_version() + 1
    proto.opset_import[0].version = 99  # an opset no IR version ORT knows supports
    with pytest.raises(BadModelError):
        clamp_ir_version(proto)
        OrtTarget().compile(ir.serde.deserialize_model(proto), report=False)


def test_copy_is_independent():
    model = ir.serde.deserialize_model(_if_model())
    clone = onnx_files.copy(model)
    clone.graph.remove(next(iter(clone.graph)), safe=False)
    assert len(model.graph) == 1 and len(clone.graph) == 0


def test_large_models_are_saved_with_external_data(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_files, "EXTERNAL_DATA_THRESHOLD_BYTES", 1000)  # pretend 1 kB is 2 GB
    weight = numpy_helper.from_array(np.arange(1024, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1024])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1024])],
        [weight],
    )
    model = ir.serde.deserialize_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    onnx_files.save(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx.data").stat().st_size >= 4096
    again = onnx_files.load(tmp_path / "m.onnx")
    x = np.ones(1024, np.float32)
    np.testing.assert_array_equal(OrtTarget().compile(again, report=False).run({"x": x})[0], x + np.arange(1024))


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    onnx_files.save(ir.serde.deserialize_model(_if_model()), tmp_path / "m.onnx")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m.onnx").stat().st_mode) == 0o666 & ~mask
