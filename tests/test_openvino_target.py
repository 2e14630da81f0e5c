"""OpenVINO as a Target (graphopt.targets.openvino): its fusion report read from OpenVINO's own
profiling and runtime model, checked against tiny models whose kernels were counted by hand; rules
per target (ORT's contrib-op rewrites never offered to it); the settings file; the way in through
`graphopt optimize/check/inspect --target openvino-cpu`; the missing extra and unreadable models."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper

from graphopt.core import protocols, registry
from graphopt.core.budget import Budget
from graphopt.core.decide import decide
from graphopt.core.verify import compare
from graphopt.policies.search import Greedy
from tests.test_bad_input import _assert_refused, graphopt
from tests.test_optimize import _mlp_with_erf_gelu

pytest.importorskip("openvino")

RNG = np.random.default_rng(0)


def _fc_gelu(spelling: str) -> onnx.ModelProto:
    """y = GELU(x @ w + b) with GELU written out in ``spelling``; x is (1, 16, 32)."""
    const = lambda name, v: numpy_helper.from_array(np.asarray(v, np.float32), name)  # noqa: E731
    weights = np.random.default_rng(1)  # the same weights for every spelling
    inits = [const("w", weights.standard_normal((32, 64)) * 0.2), const("b", weights.standard_normal(64) * 0.1)]
    inits += [const("sqrt2", np.sqrt(2.0)), const("half", 0.5), const("one", 1.0)]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="fc"),
        helper.make_node("Add", ["xw", "b"], ["h"], name="bias"),
    ]
    nodes += [
        helper.make_node("Div", ["h", "sqrt2"], ["d"], name="scale"),
        helper.make_node("Erf", ["d"], ["e"], name="erf"),
    ]
    if spelling == "canonical":  # h * (0.5 * (erf(h / sqrt2) + 1)): torch's dynamo export
        nodes += [helper.make_node("Add", ["e", "one"], ["a"], name="plus_one")]
        nodes += [helper.make_node("Mul", ["half", "a"], ["m"], name="halve")]
        nodes += [helper.make_node("Mul", ["h", "m"], ["y"], name="gate")]
    else:  # h * (0.5 + 0.5 * erf(h / sqrt2)): distributed, the spelling OpenVINO leaves unfused
        nodes += [helper.make_node("Mul", ["half", "e"], ["he"], name="halve")]
        nodes += [helper.make_node("Add", ["he", "half"], ["m"], name="plus_half")]
        nodes += [helper.make_node("Mul", ["h", "m"], ["y"], name="gate")]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 16, 32])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 16, 64])
    graph = helper.make_graph(nodes, "fc_gelu", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _compiled(model: onnx.ModelProto, feeds: dict):
    fmt = registry.format_named("onnx")[0]
    target = registry.target_for("openvino-cpu").bound_to(feeds)
    return target.compile(fmt.from_object(model))


def test_report_counts_the_kernels_and_the_fused_gelu_of_a_hand_checked_model():
    feeds = {"x": RNG.standard_normal((1, 16, 32)).astype(np.float32)}
    canonical = _compiled(_fc_gelu("canonical"), feeds)
    # MatMul + Add + the erf GELU: one FullyConnected kernel with the bias and GELU fused into it
    assert canonical.report.kernels == 1
    assert canonical.report.ops == {"FullyConnected": 1}
    assert canonical.report.fused == {"FullyConnected+Gelu": 1}  # OpenVINO's Gelu, merged into the kernel
    assert canonical.report.survivors == frozenset()
    distributed = _compiled(_fc_gelu("distributed"), feeds)
    # the distributed spelling: OpenVINO's GELU matcher declines; the element-wise tail is one snippet
    assert distributed.report.kernels == 2
    assert distributed.report.fused == {"Subgraph[Add+Div+Erf+Mul]": 1}
    assert distributed.report.survivors == {"bias"}  # MatMul + Add: one FullyConnected named after its Add
    w, b = (numpy_helper.to_array(t).astype(np.float64) for t in _fc_gelu("canonical").graph.initializer[:2])
    h = feeds["x"].astype(np.float64) @ w + b
    expected = h * 0.5 * (1 + np.vectorize(math.erf)(h / np.sqrt(2.0)))
    for compiled in (canonical, distributed):
        # float32 over a 32-term dot product and OpenVINO's erf: within 1e-5 of float64 (values ~1)
        np.testing.assert_allclose(compiled.run(feeds)[0], expected, rtol=1e-5, atol=1e-5)


def test_feeds_of_another_shape_get_a_compilation_of_their_own():
    feeds = {"x": RNG.standard_normal((1, 16, 32)).astype(np.float32)}
    compiled = _compiled(_fc_gelu("canonical"), feeds)
    wider = {"x": RNG.standard_normal((3, 16, 32)).astype(np.float32)}
    assert compiled.run(wider)[0].shape == (3, 16, 64)
    assert len(compiled.by_shape) == 2


def test_a_rewrite_into_an_ort_contrib_op_is_never_offered_to_openvino():
    fmt, rules = registry.format_named("onnx")
    original = fmt.from_object(_mlp_with_erf_gelu(np.float32))
    graph = fmt.copy(original)
    fmt.prepare(graph)
    ort, openvino = registry.target_for("ort-cpu"), registry.target_for("openvino-cpu")
    assert [s.rule for s in fmt.rules(rules, original).sites(graph)] == ["gelu-erf"]  # com.microsoft::Gelu
    rule_set = fmt.rules(rules, original, runs_op=openvino.runs_op)
    assert rule_set.sites(graph) == []
    candidate = rule_set.rewrite("all", graph, [r.name for r in rules])
    assert {node.domain for node in candidate.graph.graph} <= {""}
    decision = decide(graph, rule_set, openvino, Greedy(), fmt.feeds(graph), Budget(10.0))
    assert decision.target == "openvino-cpu" and decision.chosen is None
    assert not isinstance(ort, protocols.OpVocabulary)  # ORT reads every op the rules write


def test_optimize_check_and_inspect_with_openvino(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(_fc_gelu("distributed"), source)
    out = tmp_path / "out" / "m.onnx"
    made = graphopt("optimize", str(source), "-o", str(out), "--mkdir", "--target", "openvino-cpu", "--budget", "20")
    assert made.returncode == 0, made.stderr
    settings = json.loads((tmp_path / "out" / "m.openvino.json").read_text())
    assert settings["runtime"] == "openvino" and settings["properties"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert settings["input_shapes"] == {"x": [1, 16, 32]}
    checked = graphopt("check", str(source), str(out), "--target", "openvino-cpu", "--time-budget", "10")
    assert checked.returncode in (0, 1) and "Traceback" not in checked.stderr
    assert "equivalent" in checked.stdout.lower()
    inspected = graphopt("inspect", str(source), "--target", "openvino-cpu")
    assert inspected.returncode == 0, inspected.stderr
    assert "2 OpenVINO kernels (openvino-cpu)" in " ".join(inspected.stdout.split())


def test_without_the_extra_the_target_says_how_to_install_it(tmp_path):
    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(_fc_gelu("canonical"), source)
    code = "import sys; sys.modules['openvino'] = None; from graphopt.cli.app import app; app()"
    args = ["optimize", str(source), "-o", str(out), "--target", "openvino-cpu"]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    _assert_refused(result, out, "needs OpenVINO", "pip install 'graphopt[openvino]'")


def test_a_model_openvino_cannot_read_is_refused_in_one_line(tmp_path):
    model = _fc_gelu("canonical")
    model.graph.node.append(helper.make_node("Frobnicate", ["y"], ["z"], domain="example.custom", name="custom"))
    model.graph.output[0].name = "z"
    model.opset_import.append(helper.make_opsetid("example.custom", 1))
    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(model, source)
    result = graphopt("optimize", str(source), "-o", str(out), "--target", "openvino-cpu")
    _assert_refused(result, out, "OpenVINO cannot")


def test_a_lever_the_compiler_refuses_is_left_out_not_fatal():
    """OpenVINO 2026.4 refuses SNIPPETS_MODE=IGNORE_CALLBACK on BERT-base ("Incorrect Loop by
    Brgemm dimension M"); a lever that does not compile, here a mode OpenVINO does not know, is
    listed as refused and the others are still timed."""
    import dataclasses

    from graphopt.core import judge
    from graphopt.core.budget import Budget
    from graphopt.targets.openvino.levers import OpenVinoSettings
    from graphopt.targets.openvino.target import OpenVinoTarget

    @dataclasses.dataclass(frozen=True)
    class WithABadLever(OpenVinoTarget):
        def levers(self, report):
            return [
                OpenVinoSettings((("SNIPPETS_MODE", "NOT_A_MODE"),)),
                OpenVinoSettings((("SNIPPETS_MODE", "DISABLE"),)),
            ]

    fmt = registry.format_named("onnx")[0]
    graph = fmt.from_object(_fc_gelu("canonical"))
    feeds = [{"x": RNG.standard_normal((1, 16, 32)).astype(np.float32)}]
    target = WithABadLever().bound_to(feeds[0])
    baseline = judge.make_baseline(graph, target, feeds)
    choice = judge.choose_lever(graph, baseline.report, baseline, target, Budget(20.0))
    assert [lever.label() for lever, _ in choice.refused] == ["OpenVINO SNIPPETS_MODE=NOT_A_MODE"]
    assert "refuses it" in choice.refused[0][1]
    assert [lever.label() for lever, _ in choice.tried] == ["OpenVINO SNIPPETS_MODE=DISABLE"]


def test_a_model_with_external_weights_and_a_rewritten_one_run_as_ort_runs_them(tmp_path):
    """Weights in ``m.onnx.data`` (torch's default export), and a candidate holding a new weight
    in memory beside them: both reach OpenVINO through a temporary file with its weights."""
    from tests.test_memory import _model_with_weights

    path = _model_with_weights(tmp_path, 8, external=True)
    fmt = registry.format_named("onnx")[0]
    graph = fmt.load(path)
    feeds = {"x": RNG.standard_normal((2, graph.graph.inputs[0].shape[1])).astype(np.float32)}
    expected = registry.target_for("ort-cpu").compile(graph, report=False).run(feeds)
    openvino = registry.target_for("openvino-cpu").bound_to(feeds)
    # verify's float32 tolerance (what the engine judges equivalence by): two runtimes' dot products
    assert compare(["y"], expected, openvino.compile(graph).run(feeds)).ok
    rewritten = fmt.copy(graph)
    bias = rewritten.graph.initializers["b"]
    bias.const_value = ir.tensor(bias.const_value.numpy() * 1.0)  # held in memory now
    assert compare(["y"], expected, openvino.compile(rewritten).run(feeds)).ok
