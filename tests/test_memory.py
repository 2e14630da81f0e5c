"""The engine's memory plan (graphopt/core/memory.py): four sessions per timing when they fit, two
when only those do, and a one-line refusal (exit 2, nothing written) before the first session is
made when not even two would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from graphopt.core import memory

MIB = 2**20


def test_four_sessions_per_timing_when_they_fit_else_two():
    assert memory.plan(100 * MIB, limit=1000 * MIB).timing_pairs == 2  # 4 x 100 MiB within 90% of 1000
    narrowed = memory.plan(100 * MIB, limit=400 * MIB)  # 4 x 100 > 360 (90%) >= 2 x 100
    assert narrowed.timing_pairs == 1 and "one session per side" in narrowed.note()
    assert memory.plan(100 * MIB, limit=1000 * MIB).note() is None


def test_a_large_model_times_one_session_per_side_even_where_four_would_fit():
    weights = memory.FOUR_SESSIONS_UP_TO // 2  # four such sessions: twice the cap
    assert memory.plan(weights, limit=100 * weights).timing_pairs == 1


def test_refused_when_not_even_one_session_per_side_fits():
    with pytest.raises(memory.OutOfMemoryError, match=r"needs about 0\.2 GiB .* more than the 0\.1 GiB available"):
        memory.plan(100 * MIB, limit=150 * MIB)


def test_the_limit_reads_units(monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "1.5G")
    assert memory.limit_bytes() == int(1.5 * 2**30)
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "64MiB")
    assert memory.limit_bytes() == 64 * MIB
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "lots")
    with pytest.raises(memory.GraphoptError, match="expected bytes"):
        memory.limit_bytes()


def _model_with_weights(tmp_path: Path, megabytes: int) -> Path:
    """x @ W + b then Relu: ``megabytes`` MiB of float32 weight, bias large enough to be a weight."""
    side = int((megabytes * MIB / 4) ** 0.5)
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((side, side)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(side).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["a"]),
            helper.make_node("Relu", ["a"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", side])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", side])],
        [weight, bias],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _optimize(path: Path, out: Path, limit: str, *extra: str) -> subprocess.CompletedProcess:
    env = os.environ | {memory.LIMIT_VARIABLE: limit}
    command = [sys.executable, "-m", "graphopt", "optimize", str(path), "-o", str(out), "--budget", "5", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_a_run_that_would_not_fit_is_refused_in_one_line_before_compiling(tmp_path):
    path = _model_with_weights(tmp_path, 16)
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    result = _optimize(path, out, "20M")  # two 16 MiB sessions need 32 MiB; 90% of 20 MiB is usable
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and "more than the 0.0 GiB available" in message, message
    assert list(out.parent.iterdir()) == []  # nothing written, not even a temporary


def test_a_run_where_only_two_sessions_fit_times_one_per_side_and_says_so(tmp_path):
    path = _model_with_weights(tmp_path, 16)
    out, report = tmp_path / "out.onnx", tmp_path / "report.json"
    result = _optimize(path, out, "48M", "--report", str(report))  # 4 x 16 > 43.2 >= 2 x 16
    assert result.returncode == 0, result.stderr
    notes = json.loads(report.read_text())["notes"]
    assert any("timed with one session per side" in n for n in notes), notes
