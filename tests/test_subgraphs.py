"""Rules inside If/Loop bodies, and kernels of bodies in ORT's fusion report.

Exporters put real work in subgraphs (a voice-activity model's two sample rates as If branches,
a decoder's steps in a Loop). The sites are found and applied there, the outputs stay equal on
both branches, and the report counts what ORT runs inside the bodies.
"""

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import gelu
from graphopt.targets.onnxruntime import OrtTarget
from tests.passes.onnx.harness import run

RNG = np.random.default_rng(0)


def _gelu_written_out(x: str, out: str, tag: str) -> list[onnx.NodeProto]:
    """(x * (erf(x / sqrt(2)) + 1)) * 0.5, as torch's legacy exporter writes nn.GELU()."""

    def c(name, value):
        return helper.make_node(
            "Constant", [], [f"{tag}_{name}"], value=helper.make_tensor(f"{tag}_{name}", TensorProto.FLOAT, [], [value])
        )  # noqa: E731

    return [
        c("sqrt2", 1.4142135381698608),
        c("one", 1.0),
        c("half", 0.5),
        helper.make_node("Div", [x, f"{tag}_sqrt2"], [f"{tag}_d"]),
        helper.make_node("Erf", [f"{tag}_d"], [f"{tag}_e"]),
        helper.make_node("Add", [f"{tag}_e", f"{tag}_one"], [f"{tag}_a"]),
        helper.make_node("Mul", [x, f"{tag}_a"], [f"{tag}_m"]),
        helper.make_node("Mul", [f"{tag}_m", f"{tag}_half"], [out]),
    ]


def _if_model() -> ir.Model:
    """y = GELU(x @ W) when cond else Relu(x @ W): the GELU written out in the then-branch."""
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 8])  # noqa: E731
    then_branch = helper.make_graph(_gelu_written_out("h", "t", "then"), "then", [], [value("t")])
    else_branch = helper.make_graph([helper.make_node("Relu", ["h"], ["r"])], "else", [], [value("r")])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
        ],
        "if_model",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [value("y")],
        [onnx.numpy_helper.from_array(RNG.standard_normal((8, 8)).astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    return ir.serde.deserialize_model(model)


def _loop_model() -> ir.Model:
    """Three steps of h = GELU(h) inside a Loop body, GELU written out."""

    def body_value(name, dtype=TensorProto.FLOAT, shape=(2, 8)):
        return helper.make_tensor_value_info(name, dtype, list(shape))  # noqa: E731

    body = helper.make_graph(
        _gelu_written_out("h_in", "h_out", "body") + [helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [body_value("i", TensorProto.INT64, []), body_value("cond_in", TensorProto.BOOL, []), body_value("h_in")],
        [body_value("cond_out", TensorProto.BOOL, []), body_value("h_out")],
    )
    steps = onnx.numpy_helper.from_array(np.asarray(3, np.int64), "steps")
    go = onnx.numpy_helper.from_array(np.asarray(True), "go")
    graph = helper.make_graph(
        [helper.make_node("Loop", ["steps", "go", "x"], ["y"], body=body)],
        "loop_model",
        [body_value("x")],
        [body_value("y")],
        [steps, go],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    return ir.serde.deserialize_model(model)


def _rewritten(model: ir.Model) -> ir.Model:
    rewritten = prepare(onnx_files.copy(model))
    applied = rewrite_to_fixpoint(rewritten, [gelu.gelu_erf_legacy])
    assert applied and all(site.graph for site in applied), "the GELU inside the body was not rewritten"
    return rewritten


def test_sites_inside_an_if_branch_are_found_and_applied_on_both_branches():
    model = _if_model()
    sites = find_sites(prepare(onnx_files.copy(model)), [gelu.gelu_erf_legacy])
    assert len(sites) == 1 and sites[0].graph.endswith("/then_branch")
    rewritten = _rewritten(model)
    x = RNG.standard_normal((2, 8), dtype=np.float32)
    for cond in (True, False):
        feeds = {"x": x, "cond": np.asarray(cond)}
        np.testing.assert_allclose(
            run(rewritten, feeds)[0], run(model, feeds)[0], rtol=1e-5, atol=1e-6
        )  # fp32 GELU: erf vs fused erf


def test_sites_inside_a_loop_body_are_applied():
    model = _loop_model()
    rewritten = _rewritten(model)
    feeds = {"x": RNG.standard_normal((2, 8), dtype=np.float32)}
    np.testing.assert_allclose(run(rewritten, feeds)[0], run(model, feeds)[0], rtol=1e-5, atol=1e-6)


def test_kernels_inside_bodies_are_counted():
    # ORT runs the If and, inside it, the GELU's five ops (then) or a Relu (else); plus the MatMul.
    report = OrtTarget(level="basic").compile(_if_model()).report
    assert report.kernels == 1 + 1 + 5 + 1
    # With GELU fused inside the then-branch (by graphopt or by ORT's own GeluFusion at "all").
    fused = OrtTarget(level="all").compile(_rewritten(_if_model())).report
    assert fused.kernels == 1 + 1 + 1 + 1
    assert "com.microsoft::Gelu" in fused.ops


def test_a_branch_that_returns_an_outer_value_through_identity_survives():
    # then: t = Identity(h), h from the outer graph ("return x unchanged"). Dropping that
    # Identity by renaming h (as onnx_ir's IdentityEliminationPass does) breaks the model.
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 8])  # noqa: E731
    then_branch = helper.make_graph([helper.make_node("Identity", ["h"], ["t"])], "then", [], [value("t")])
    else_branch = helper.make_graph(_gelu_written_out("h", "e", "else"), "else", [], [value("e")])
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["h"]),
            helper.make_node("Identity", ["h"], ["h2"]),
            helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
            helper.make_node("Add", ["y", "h2"], ["z"]),
        ],
        "identity_branch",
        [value("x"), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [value("z")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model = ir.serde.deserialize_model(proto)
    rewritten = _rewritten(model)
    onnx.checker.check_model(ir.serde.serialize_model(rewritten), full_check=True)
    x = RNG.standard_normal((2, 8), dtype=np.float32)
    for cond in (True, False):
        feeds = {"x": x, "cond": np.asarray(cond)}
        np.testing.assert_allclose(run(rewritten, feeds)[0], run(model, feeds)[0], rtol=1e-5, atol=1e-6)
