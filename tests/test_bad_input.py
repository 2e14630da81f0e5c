"""Bad input: one clear line on stderr, exit code 2, no traceback, no output file left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

EXAMPLE = Path(__file__).parents[1] / "graphopt" / "examples" / "tiny-bert.onnx"


def graphopt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphopt", *args], capture_output=True, text=True, timeout=300)


def _assert_refused(result: subprocess.CompletedProcess, out: Path, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message, message
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temporary file left behind"


def _relu_model(**tensor_kwargs) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones(4, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a model\n" * 20)
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(bad), "-o", str(out)), out, "not an ONNX model")


def test_truncated_file(tmp_path):
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(EXAMPLE.read_bytes()[:5000])
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(bad), "-o", str(out)), out, "not an ONNX model")


def test_missing_file(tmp_path):
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(tmp_path / "nope.onnx"), "-o", str(out)), out, "no such file")


def _with_external_weight(tmp_path: Path, location: str) -> Path:
    model = _relu_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path))
    return path


def test_missing_external_data(tmp_path):
    path = _with_external_weight(tmp_path, "weights.bin")
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(path), "-o", str(out)), out, "external data file 'weights.bin' is missing")


def test_external_data_outside_the_model_folder(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = _with_external_weight(tmp_path, "../secret.bin")
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(path), "-o", str(out)), out, "lies outside the model's folder")


def test_external_data_with_several_hard_links(tmp_path):
    path = _with_external_weight(tmp_path, "weights.bin")
    (path.parent / "weights.bin").write_bytes(np.ones(4, np.float32).tobytes())
    os.link(path.parent / "weights.bin", tmp_path / "backup.bin")  # what `cp -l` leaves behind
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(path), "-o", str(out)), out, "has 2 hard links")


def _unknown_domain(model):
    model.graph.node[0].domain = "com.example.private"
    model.opset_import.append(helper.make_opsetid("com.example.private", 1))


def _unknown_op(model):
    model.graph.node[0].op_type = "NotAnOnnxOp"


def _opset_newer_than_the_runtime(model):
    model.opset_import[0].version = 99


@pytest.mark.parametrize("break_model", [_unknown_domain, _unknown_op, _opset_newer_than_the_runtime])
def test_models_onnxruntime_cannot_load(tmp_path, break_model):
    model = _relu_model()
    break_model(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(path), "-o", str(out)), out, "onnxruntime cannot load the model")


def test_inputs_that_cannot_be_generated(tmp_path):
    # The input is Reshape's target shape: inventing one would test nothing.
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4]),
            helper.make_tensor_value_info("shape", onnx.TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    out = tmp_path / "out.onnx"
    _assert_refused(
        graphopt("optimize", str(path), "-o", str(out)), out, "input 'shape' is used as a shape", "--inputs"
    )


def test_inputs_file_missing_an_input(tmp_path):
    npz = tmp_path / "inputs.npz"
    np.savez(npz, input_ids=np.zeros((1, 4), np.int64))
    out = tmp_path / "out.onnx"
    result = graphopt("optimize", str(EXAMPLE), "-o", str(out), "--inputs", str(npz))
    _assert_refused(result, out, "no array for input(s) attention_mask, token_type_ids")


@pytest.mark.parametrize("shape", ["input_ids", "input_ids=a,b", "input_ids=1"])
def test_malformed_shape_option(tmp_path, shape):
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(EXAMPLE), "-o", str(out), "--shape", shape), out, "--shape")
