"""`--target auto` for ONNX (graphopt/api/auto.py): each runtime decides on its own share, the
faster as is is the bar, the output is never a result slower than it, and the record written
beside the output is what `graphopt check` runs each side on."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest

from graphopt.api import auto
from tests.test_bad_input import graphopt
from tests.test_openvino_target import _fc_gelu

pytest.importorskip("openvino")


def test_auto_judges_both_runtimes_and_writes_its_record(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(_fc_gelu("distributed"), source)
    out, report = tmp_path / "out" / "m.onnx", tmp_path / "r.json"
    made = graphopt(
        "optimize",
        str(source),
        "-o",
        str(out),
        "--mkdir",
        "--target",
        "auto",
        "--budget",
        "30",
        "--report",
        str(report),
    )
    assert made.returncode == 0, made.stderr
    data = json.loads(report.read_text())["auto"]
    assert set(data["contenders"]) == set(auto.AUTO_TARGETS)
    assert data["faster_as_is"] in auto.AUTO_TARGETS and data["runtime"] in auto.AUTO_TARGETS
    assert data["openvino-cpu_over_ort-cpu_as_is"]["ratio"] > 0
    chosen = data["contenders"][data["runtime"]]
    # the output is the bar itself or a result faster than it with confidence
    assert data["runtime"] == data["faster_as_is"] or chosen["over_faster_as_is"]["ci95"][1] < 1
    record = json.loads((tmp_path / "out" / "m.runtime.json").read_text())
    assert record["runtime"] == data["runtime"] and set(record["load"]) == set(auto.AUTO_TARGETS)
    if data["runtime"] == "openvino-cpu":
        assert record["settings_file"] == "m.openvino.json" and (tmp_path / "out" / "m.openvino.json").exists()
    assert "auto: the output runs on" in " ".join(made.stdout.split())


def test_check_runs_each_side_on_the_runtime_recorded_beside_it(tmp_path):
    base, candidate = tmp_path / "base.onnx", tmp_path / "out" / "m.onnx"
    candidate.parent.mkdir()
    onnx.save(_fc_gelu("canonical"), base)
    shutil.copy(base, candidate)
    (tmp_path / "out" / "m.runtime.json").write_text(json.dumps({"runtime": "openvino-cpu"}))
    checked = graphopt("check", str(base), str(candidate), "--format", "json", "--time-budget", "5")
    assert checked.returncode in (0, 1), checked.stderr
    result = json.loads(checked.stdout)[0]
    assert result["compiler"] == "ORT (baseline) vs OpenVINO (candidate)"
    assert result["settings"]["candidate"].startswith("OpenVINO")
    assert all(o["ok"] for o in result["outputs"])  # the same graph on two runtimes: equal within float32's tolerance
    named = graphopt(
        "check", str(base), str(candidate), "--target", "ort-cpu", "--format", "json", "--time-budget", "5"
    )
    assert json.loads(named.stdout)[0]["compiler"] == "ORT"  # a named target wins over the record


def test_auto_is_for_onnx_models(tmp_path):
    source, out = tmp_path / "m.mlir", tmp_path / "o.mlir"
    source.write_text("module {}\n")
    result = graphopt("optimize", str(source), "-o", str(out), "--target", "auto")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--target auto chooses between ONNX runtimes" in " ".join(result.stderr.split())
    assert not out.exists()
