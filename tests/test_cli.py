"""The `graphopt` command as a user runs it: optimize with a report, inspect, rules, zoo build."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest

from graphopt.passes.onnx import all_rules


def graphopt(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "graphopt", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def test_optimize_example_writes_model_and_report(tmp_path):
    out, report = tmp_path / "out.onnx", tmp_path / "report.json"
    result = graphopt("optimize", "--example", "tiny-bert", "-o", str(out), "--report", str(report), "--budget", "5")
    assert result.returncode == 0, result.stderr
    onnx.checker.check_model(onnx.load(str(out)))
    data = json.loads(report.read_text())
    # two layers: two GELUs, two attention blocks (their first stage), four residual LayerNorms;
    # one embedding block and one padding-mask grid
    assert data["sites_found"] == {
        "gelu-erf": 2,
        "sdpa": 2,
        "skip-layer-norm": 4,
        "embed-layer-norm": 1,
        "mask-grid-gather": 1,
    }
    assert data["before"]["kernels"] == 91
    # either a candidate with its measured interval, or the original with the reason
    assert (data["latency"] is not None and data["latency"]["ci95"][1] < 1) or (
        data["kept_original"] and data["reason"]
    )
    assert "ORT kernels" in result.stdout


def test_inspect_lists_sites_and_near_misses():
    from tests.test_bad_input import EXAMPLE

    result = graphopt("inspect", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "sites graphopt finds: 10" in text and "gelu-erf" in text
    # later attention stages wait for the SDPA op the first stage makes: not near misses
    assert "expected SDPA" not in text
    assert "near misses" in text and "Gemm needs 2-D" in text


def test_rules_lists_every_rule_with_its_legality_doc():
    result = graphopt("rules")
    assert result.returncode == 0
    for rule in all_rules():
        assert rule.name in result.stdout
    assert "Legality" in result.stdout


def test_zoo_build_writes_model_and_inputs(tmp_path):
    pytest.importorskip("transformers")
    result = graphopt(
        "zoo", "build", "bert", "--size", "tiny", "--exporter", "legacy", "--dynamic", "-o", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    model = onnx.load(str(tmp_path / "bert-tiny-legacy-dynamic-b1-s16.onnx"))
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert (tmp_path / "bert-tiny-legacy-dynamic-b1-s16.inputs.npz").exists()


def test_zoo_build_unknown_model_is_a_usage_error(tmp_path):
    result = graphopt("zoo", "build", "alexnet", "-o", str(tmp_path))
    assert result.returncode == 2 and "unknown zoo model" in result.stderr
