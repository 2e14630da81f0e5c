"""ORT session settings: which levers are tried, how the recommendation is written and read back,
and that `optimize` never leaves a stale recommendation beside its output."""

from __future__ import annotations

import json

import pytest

from graphopt.api.files import optimize
from graphopt.core.protocols import FusionReport
from graphopt.targets.onnxruntime import levers as session
from tests.test_bad_input import EXAMPLE


def _report(fired: dict[str, int]) -> FusionReport:
    return FusionReport(kernels=10, ops={}, fused=dict(fired), fired=dict(fired))


def test_levers_are_the_fusions_that_fired_and_level_basic():
    report = _report({"Gemm": 3, "com.microsoft::SkipLayerNormalization": 2, "com.microsoft::NotAFusion": 1})
    tried = [lever.label() for lever in session.levers(report)]
    assert tried == ["ORT without MatMulAddFusion", "ORT without SkipLayerNormFusion", "ORT level basic"]


def test_nothing_fired_leaves_only_level_basic():
    assert [lever.label() for lever in session.levers(_report({}))] == ["ORT level basic"]


def test_settings_round_trip_beside_the_model(tmp_path):
    model = tmp_path / "m.opt.onnx"
    settings = session.SessionSettings(disabled_optimizers=("SkipLayerNormFusion", "MatMulAddFusion"))
    path = session.settings_path(model)
    assert path.name == "m.opt.ort-session.json"
    session.write(path, settings, None)
    assert session.read(model) == settings
    data = json.loads(path.read_text())
    assert data["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert session.read(tmp_path / "other.onnx") is None


def test_applied_settings_reach_the_target():
    from graphopt.targets.onnxruntime import OrtTarget

    target = session.SessionSettings(level="basic", disabled_optimizers=("GeluFusion",)).apply(OrtTarget())
    assert target.level == "basic" and target.disabled_optimizers == ("GeluFusion",)


@pytest.mark.slow
def test_optimize_writes_a_recommendation_only_with_its_measurement(tmp_path):
    out = tmp_path / "out.onnx"
    stale = session.settings_path(out)
    stale.write_text('{"graph_optimization_level": "ORT_DISABLE_ALL", "disabled_optimizers": []}')
    result = optimize(EXAMPLE, out, budget_s=20)
    if result.settings_path is None:
        assert not stale.exists(), "an earlier run's recommendation was left beside a new output"
        assert result.lever.lever is None
    else:
        data = json.loads(stale.read_text())
        assert data["measured"]["ci95"][1] < 1 - 0.015
        assert session.read(out) == result.lever.lever
