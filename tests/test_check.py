"""`graphopt check` as a CI step: exit codes, the one-line verdict, formats, folders, config."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import onnx_ir as ir
import pytest

from bench.planted import with_extra_work
from graphopt.formats.onnx import files as onnx_files

EXAMPLE = Path(__file__).parents[1] / "graphopt" / "examples" / "tiny-bert.onnx"


def graphopt(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "graphopt", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    base = onnx_files.load(EXAMPLE)
    onnx_files.save(base, folder / "base.onnx")
    # Three times the work: slower beyond any noise on this machine.
    onnx_files.save(with_extra_work(base, matmuls=60, width=512), folder / "slow.onnx")
    wrong = onnx_files.copy(base)
    table = next(
        v
        for v in wrong.graph.initializers.values()
        if v.const_value is not None and v.const_value.dtype == ir.DataType.FLOAT and len(v.const_value.shape) == 1
    )
    table.const_value = ir.tensor(table.const_value.numpy() + 0.5, name=table.name)  # a shifted bias or norm weight
    onnx_files.save(wrong, folder / "wrong.onnx")
    return folder


def test_identical_model_passes(models):
    result = graphopt("check", str(models / "base.onnx"), str(EXAMPLE), "--max-slowdown", "50%", "--time-budget", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS")


def test_slower_candidate_fails_with_the_ratio(models):
    result = graphopt("check", str(models / "base.onnx"), str(models / "slow.onnx"), "--time-budget", "20")
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("FAIL") and "slower" in first and "above the allowed 1.020x" in first


def test_non_equivalent_candidate_names_the_output_and_error(models):
    result = graphopt(
        "check", str(models / "base.onnx"), str(models / "wrong.onnx"), "--max-slowdown", "50%", "--time-budget", "10"
    )
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert "not equivalent: output 'output'" in first and "max |error|" in first


def test_junit_json_markdown_and_step_summary(models, tmp_path):
    junit = tmp_path / "check.xml"
    summary = tmp_path / "summary.md"
    env = {**__import__("os").environ, "GITHUB_STEP_SUMMARY": str(summary)}
    result = graphopt(
        "check",
        str(models / "base.onnx"),
        str(models / "slow.onnx"),
        "--format",
        "junit",
        "--output",
        str(junit),
        "--time-budget",
        "20",
        env=env,
    )
    assert result.returncode == 1
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None
    assert "| candidate | verdict |" in summary.read_text() and "FAIL" in summary.read_text()
    result = graphopt(
        "check", str(models / "base.onnx"), str(models / "slow.onnx"), "--format", "json", "--time-budget", "20"
    )
    report = json.loads(result.stdout)[0]
    assert report["verdict"] == "regression" and report["latency"]["ratio"] > 1.02


def test_folders_pair_models_by_name(models, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for name in ("m1.onnx", "m2.onnx"):
        (a / name).write_bytes((models / "base.onnx").read_bytes())
    (b / "m1.onnx").write_bytes((models / "base.onnx").read_bytes())
    (b / "m2.onnx").write_bytes((models / "wrong.onnx").read_bytes())
    result = graphopt("check", str(a), str(b), "--max-slowdown", "50%", "--format", "json", "--time-budget", "10")
    verdicts = {Path(r["candidate"]).name: r["verdict"] for r in json.loads(result.stdout)}
    assert verdicts == {"m1.onnx": "pass", "m2.onnx": "regression"}
    assert result.returncode == 1


def test_settings_come_from_pyproject_and_flags_win(models, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.graphopt.check]\nmax-slowdown = "40%"\nformat = "json"\n')
    result = graphopt("check", str(models / "base.onnx"), str(EXAMPLE), "--time-budget", "10", cwd=tmp_path)
    assert json.loads(result.stdout)[0]["latency"]["allowed_ratio"] == pytest.approx(1.40)
    result = graphopt(
        "check", str(models / "base.onnx"), str(EXAMPLE), "--time-budget", "10", "--max-slowdown", "0.3", cwd=tmp_path
    )
    assert json.loads(result.stdout)[0]["latency"]["allowed_ratio"] == pytest.approx(1.30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "yaml"], "unknown format"),
        (["--max-slowdown", "lots"], "expected a fraction"),
        (["--tolerance-profile", "loose"], "unknown tolerance profile"),
        (["--on-inconclusive", "maybe"], "pass or fail"),
    ],
)
def test_usage_errors_exit_2(models, args, message):
    result = graphopt("check", str(models / "base.onnx"), str(EXAMPLE), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_bad_model_exits_2(models, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    result = graphopt("check", str(models / "base.onnx"), str(bad))
    assert result.returncode == 2 and "not an ONNX model" in result.stderr


def test_a_candidate_with_fixed_shapes_is_checked_at_those_shapes(models, tmp_path):
    # optimize --fix-dim writes a model that runs only at the fixed sizes: check must feed both
    # sides at those, not at its own default and alternate sizes.
    from graphopt.formats.onnx.specialize import fix_shapes

    fixed = onnx_files.load(models / "base.onnx")
    fix_shapes(fixed, {"batch": 1, "sequence": 12}, {})
    onnx_files.save(fixed, tmp_path / "fixed.onnx")
    result = graphopt(
        "check", str(models / "base.onnx"), str(tmp_path / "fixed.onnx"), "--max-slowdown", "50%", "--time-budget", "10"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS")
