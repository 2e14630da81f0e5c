"""Outputs stand alone: external data in means external data out, beside the output under its own
name; the input's folder can be deleted and the output still loads and runs. Checked for a kept
candidate and for a handed-back original, through the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from graphopt.core.verify import compare
from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.shape_inference import infer_shapes
from graphopt.targets.onnxruntime import OrtTarget
from tests.test_bad_input import EXAMPLE
from tests.test_optimize import _mlp_with_erf_gelu


def graphopt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphopt", *args], capture_output=True, text=True, timeout=600)


def with_external_weights(model, folder: Path, name: str = "m.onnx") -> Path:
    """``model`` saved as torch 2.13 writes by default: ``<name>`` + ``<name>.data`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    onnx_files.save(model, path, external_data=True)
    assert (folder / f"{name}.data").is_file()
    return path


def tiny_bert_feeds(model) -> dict[str, np.ndarray]:
    from graphopt.formats.onnx import inputs

    return inputs.generate(model, inputs.bind_dims(inputs.input_specs(model)))


def reference_outputs(path: Path, feeds) -> tuple[list[str], list[np.ndarray]]:
    compiled = OrtTarget().compile(onnx_files.load(path), report=False)
    return [o.name for o in compiled.session.get_outputs()], compiled.run(feeds)


def assert_standalone_and_equivalent(out: Path, names, expected, feeds) -> None:
    output = onnx_files.load(out)
    actual = OrtTarget().compile(output, report=False).run(feeds)
    equivalence = compare(names, expected, actual)
    assert equivalence.ok, equivalence.first_failure()


@pytest.mark.slow
def test_kept_candidate_with_external_weights_stands_alone(tmp_path):
    source = with_external_weights(onnx_files.load(EXAMPLE), tmp_path / "in")
    feeds = tiny_bert_feeds(onnx_files.load(source))
    names, expected = reference_outputs(source, feeds)
    out, report = tmp_path / "out" / "bert.onnx", tmp_path / "report.json"
    result = graphopt("optimize", str(source), "-o", str(out), "--mkdir", "--budget", "20", "--report", str(report))
    assert result.returncode == 0, result.stderr
    shutil.rmtree(tmp_path / "in")
    data = json.loads(report.read_text())
    assert not data["kept_original"], data["reason"]  # tiny BERT: attention alone is >1.3x here
    assert (out.parent / "bert.onnx.data").is_file()
    proto = onnx.load(str(out), load_external_data=False)
    locations = {e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"bert.onnx.data"}
    assert_standalone_and_equivalent(out, names, expected, feeds)


def test_handed_back_original_with_external_weights_stands_alone(tmp_path):
    model = onnx_files.load(_write(tmp_path, _mlp_with_erf_gelu(np.float16)))  # nothing applies to float16
    source = with_external_weights(model, tmp_path / "in")
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 16)).astype(np.float16)}
    names, expected = reference_outputs(source, feeds)
    out = tmp_path / "out" / "mlp.onnx"
    out.parent.mkdir()
    result = graphopt("optimize", str(source), "-o", str(out), "--budget", "5")
    assert result.returncode == 0, result.stderr
    assert "kept the input graph" in " ".join(result.stdout.split())
    shutil.rmtree(tmp_path / "in")
    assert (out.parent / "mlp.onnx.data").is_file()
    assert_standalone_and_equivalent(out, names, expected, feeds)


def test_inline_input_gives_inline_output(tmp_path):
    out = tmp_path / "m.onnx"
    result = graphopt("optimize", "--example", "tiny-bert", "-o", str(out), "--budget", "3", "--policy", "greedy")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".data"] == []
    proto = onnx.load(str(out), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)


@pytest.mark.slow
def test_in_place_replaces_model_and_weights_together(tmp_path):
    source = with_external_weights(onnx_files.load(EXAMPLE), tmp_path / "in")
    feeds = tiny_bert_feeds(onnx_files.load(source))
    names, expected = reference_outputs(source, feeds)
    before = source.read_bytes()
    result = graphopt("optimize", str(source), "--in-place", "--budget", "10")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in source.parent.iterdir() if not p.name.endswith(".json")) == ["m.onnx", "m.onnx.data"]
    assert source.read_bytes() != before or "kept the input graph" in " ".join(result.stdout.split())
    assert_standalone_and_equivalent(source, names, expected, feeds)


def test_symbolic_shape_inference_reads_models_with_external_weights(tmp_path):
    # ORT's symbolic pass works on a message in memory; external weights made it give up
    # ("should be stored in m.onnx.data") and the rules matched with onnx's weaker shapes.
    source = with_external_weights(onnx_files.load(EXAMPLE), tmp_path)
    model = onnx_files.load(source)
    assert infer_shapes(model) is None
    attention_scores = [v.shape for n in model.graph.all_nodes() if n.op_type == "Softmax" for v in n.outputs]
    assert attention_scores and all(s is not None and s.rank() == 4 for s in attention_scores)


def test_saving_a_model_read_from_external_data_inline_loads_its_weights(tmp_path):
    source = with_external_weights(onnx_files.load(EXAMPLE), tmp_path / "in")
    onnx_files.save(onnx_files.load(source), tmp_path / "inline.onnx")
    shutil.rmtree(tmp_path / "in")
    proto = onnx.load(str(tmp_path / "inline.onnx"))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    onnx.checker.check_model(proto)


def _write(tmp_path: Path, proto) -> Path:
    path = tmp_path / "proto.onnx"
    onnx.save(proto, str(path))
    return path
