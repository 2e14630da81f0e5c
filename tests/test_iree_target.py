"""IREE as a Target (graphopt.targets.iree): its dispatch report read from IREE's scheduling
statistics, checked against small functions whose dispatches were counted by hand; weights held
as parameters (same outputs, weight-only work moved to the initializer); the compile cache; the
flags as levers and the settings file; the ways in (`graphopt optimize --target iree-cpu`, the
JAX API in a fresh process); dynamic modules and the missing extra refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("iree.compiler")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax import export  # noqa: E402

from graphopt.core import protocols, registry  # noqa: E402
from graphopt.core.errors import BadModelError  # noqa: E402
from graphopt.targets.iree import cache  # noqa: E402
from graphopt.targets.iree.flags import DATA_TILING, O0, IreeFlags  # noqa: E402
from graphopt.targets.iree.target import IreeTarget  # noqa: E402
from tests.test_bad_input import _assert_refused, graphopt  # noqa: E402

RNG = np.random.default_rng(0)
# fp32 through two compilers (XLA and IREE pick their own dot kernels and summation orders);
# outputs of order 1: an absolute and relative error of a few ulps of the reduction length
RTOL, ATOL = 1e-5, 1e-5


def _module(fn, *args):
    exported = export.export(jax.jit(fn, keep_unused=True))(*args)
    _, fmt, _ = registry.format_of(exported)
    return fmt.from_object(exported)


def _feeds(*args) -> dict:
    return {f"arg{i}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(args))}


def _softmax_divided(x):
    e = jnp.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _softmax_by_reciprocal(x):
    e = jnp.exp(x - x.max(-1, keepdims=True))
    return e * (1.0 / e.sum(-1, keepdims=True))


def _mlp(w1, w2, x):
    return jnp.tanh(x @ w1) @ w2


def _mlp_args():
    w1 = RNG.standard_normal((64, 128), np.float32) / 8
    w2 = RNG.standard_normal((128, 32), np.float32) / 11
    return w1, w2, RNG.standard_normal((4, 64), np.float32)


def test_report_counts_the_dispatches_iree_forms():
    """IREE raises ``e / sum`` into one softmax dispatch; ``e * (1 / sum)`` is a reduction and an
    elementwise dispatch (counted by hand from ``--compile-to=flow`` output, IREE 3.13)."""
    x = RNG.standard_normal((8, 128), np.float32)
    divided = IreeTarget().compile(_module(_softmax_divided, x)).report
    by_reciprocal = IreeTarget().compile(_module(_softmax_by_reciprocal, x)).report
    assert divided.ops == {"dispatch.softmax": 1} and divided.kernels == 1
    assert by_reciprocal.kernels == 2 and "dispatch.softmax" not in by_reciprocal.ops


def test_outputs_match_jax_and_held_weights_give_the_same_outputs():
    args = _mlp_args()
    graph, feeds = _module(_mlp, *args), _feeds(*args)
    expected = np.asarray(jax.jit(_mlp)(*args))
    passed = IreeTarget().compile(graph).run(feeds)[0]
    held = IreeTarget().holding(["arg0", "arg1"]).compile(graph)
    np.testing.assert_allclose(passed, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(held.run(feeds)[0], passed)  # the same dispatches, weights bound at load
    assert held.input_names == ["arg2"] and held.held == ["arg0", "arg1"]


def test_held_weights_are_packed_once_at_load_with_data_tiling():
    """With data tiling, a weight passed per call is packed (an ``encoding`` dispatch) per call; held
    as a parameter it is packed by the initializer, which the report counts apart."""
    args = _mlp_args()
    graph = _module(_mlp, *args)
    tiled = IreeTarget().with_lever(IreeFlags((DATA_TILING,)))
    passed, held = tiled.compile(graph).report, tiled.holding(["arg0", "arg1"]).compile(graph).report
    assert passed.ops.get("dispatch.encoding", 0) > held.ops.get("dispatch.encoding", 0)
    assert held.ops.get("initializer.dispatch", 0) >= 2 and "initializer.dispatch" not in passed.ops
    assert held.kernels < passed.kernels


def test_new_weights_are_bound_again_not_the_old_ones_reused():
    args = _mlp_args()
    compiled = IreeTarget().holding(["arg0", "arg1"]).compile(_module(_mlp, *args))
    first = compiled.run(_feeds(*args))[0]
    doubled = (args[0], 2 * args[1], args[2])
    np.testing.assert_allclose(compiled.run(_feeds(*doubled))[0], 2 * first, rtol=RTOL, atol=ATOL)


def test_a_module_compiled_twice_is_compiled_once():
    x = RNG.standard_normal((8, 96), np.float32)
    graph = _module(_softmax_divided, x)
    IreeTarget().compile(graph)
    entries = len(cache._ENTRIES)
    again = IreeTarget().compile(graph, report=False)
    assert len(cache._ENTRIES) == entries and again.report is None
    IreeTarget().with_lever(IreeFlags((DATA_TILING,))).compile(graph)
    assert len(cache._ENTRIES) == entries + 1  # other flags: another entry


def test_a_dynamic_module_is_refused_in_one_line():
    (batch,) = export.symbolic_shape("b")
    exported = export.export(jax.jit(_softmax_divided))(jax.ShapeDtypeStruct((batch, 16), jnp.float32))
    _, fmt, _ = registry.format_of(exported)
    graph = fmt.from_object(exported)
    with pytest.raises(BadModelError, match="dynamic dimensions"):
        IreeTarget().compile(graph)


def test_iree_is_tunable_and_holds_parameters_and_runs_jax_calls():
    target = registry.target_for("iree-cpu")
    assert target.name == "iree-cpu" and target.compiler == "IREE"
    protocols_of_iree = (protocols.Tunable, protocols.SettingsFile, protocols.ParameterHolding, protocols.JaxRunner)
    for protocol in (*protocols_of_iree, protocols.CompileCache):
        assert isinstance(target, protocol)
    assert not isinstance(registry.target_for("xla-cpu"), protocols.ParameterHolding)


def test_optimize_and_check_a_module_file_for_iree(tmp_path):
    x = RNG.standard_normal((8, 128), np.float32)
    source = tmp_path / "m.mlir"
    source.write_text(_module(_softmax_by_reciprocal, x).text)
    out = tmp_path / "out" / "m.mlir"
    made = graphopt("optimize", str(source), "-o", str(out), "--mkdir", "--target", "iree-cpu", "--budget", "30")
    assert made.returncode == 0, made.stderr
    settings = json.loads((tmp_path / "out" / "m.iree.json").read_text())
    assert settings["compiler"] == "iree" and "--iree-llvmcpu-target-cpu=host" in settings["flags"]
    checked = graphopt("check", str(source), str(out), "--target", "iree-cpu", "--time-budget", "10")
    assert checked.returncode in (0, 1) and "Traceback" not in checked.stderr
    assert "equivalent" in checked.stdout.lower()
    inspected = graphopt("inspect", str(source), "--target", "iree-cpu")
    assert inspected.returncode == 0, inspected.stderr
    assert "2 IREE dispatches (iree-cpu)" in " ".join(inspected.stdout.split())
    assert "reciprocal_multiply" in inspected.stdout  # the site graphopt finds for IREE's softmax


def test_without_the_extra_the_target_says_how_to_install_it(tmp_path):
    x = RNG.standard_normal((8, 128), np.float32)
    source, out = tmp_path / "m.mlir", tmp_path / "out.mlir"
    source.write_text(_module(_softmax_divided, x).text)
    code = "import sys; sys.modules['iree.compiler'] = None; from graphopt.cli.app import app; app()"
    args = ["optimize", str(source), "-o", str(out), "--target", "iree-cpu"]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    _assert_refused(result, out, "needs IREE", "pip install 'graphopt[iree]'")


JAX_SCRIPT = """
import numpy as np, jax, jax.numpy as jnp
import graphopt.jax
from tests.test_iree_target import _mlp, _mlp_args
w1, w2, x = _mlp_args()
params = {"w1": jnp.asarray(w1), "w2": jnp.asarray(w2)}
fn = lambda p, x: _mlp(p["w1"], p["w2"], x)
fast = graphopt.jax.optimize(fn, params, jnp.asarray(x), target="iree-cpu", budget=20)
out = fast(params, jnp.asarray(x))
assert isinstance(out, jax.Array), type(out)
np.testing.assert_allclose(np.asarray(out), np.asarray(jax.jit(fn)(params, x)), rtol=1e-5, atol=1e-5)
other = {"w1": params["w1"], "w2": -params["w2"]}
np.testing.assert_allclose(np.asarray(fast(other, x)), -np.asarray(out), rtol=1e-5, atol=1e-5)
wide = np.ones((7, 64), np.float32)
np.testing.assert_allclose(np.asarray(fast(params, wide)), np.asarray(jax.jit(fn)(params, wide)), rtol=1e-5, atol=1e-5)
print("held:", sorted(fast.graphopt.compiled_with.parameters), fast.graphopt.target)
"""


def test_the_jax_api_runs_iree_in_a_fresh_process():
    """Outputs match jax.jit; new weights are used (not the ones bound first); another batch size
    runs IREE as is."""
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "held: ['arg0', 'arg1'] iree-cpu" in result.stdout


def _gqa_decode(q, k, v):
    """One query token against a cache of 256, K/V heads repeated to the query heads (jnp.repeat,
    as HF's Flax LLaMA writes GQA): grouped_dot's site, twice."""
    k, v = jnp.repeat(k, 4, axis=2), jnp.repeat(v, 4, axis=2)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / 8.0
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)


def test_grouped_dot_is_kept_on_xla_and_dropped_on_iree():
    """The same rule judged per target: on XLA one batched dot per KV head becomes a library call
    (a fusion gained), timed and kept; on IREE at its default level it adds transpose dispatches and
    saves none, so its report drops it before any timing. The level is named (O0) so that IREE's
    standard levels are not searched: at O3 IREE fuses the grouped form into fewer dispatches and
    keeps the rule, which is the per-target judgment again, one level over."""
    from graphopt.core.budget import Budget
    from graphopt.core.decide import decide
    from graphopt.policies.search import Greedy

    shapes = ((1, 1, 32, 64), (1, 256, 8, 64), (1, 256, 8, 64))
    args = [RNG.standard_normal(s, np.float32) for s in shapes]
    graph = _module(_gqa_decode, *args)
    _, fmt, rules = registry.format_of(graph.text)
    rule_set = fmt.rules([r for r in rules if r.name == "grouped_dot"], graph)
    targets = {"xla-cpu": registry.target_for("xla-cpu"), "iree-cpu": IreeTarget(flags=IreeFlags((O0,)))}
    on = {name: decide(graph, rule_set, t, Greedy(), [_feeds(*args)], Budget(30.0)) for name, t in targets.items()}
    iree_log = list(on["iree-cpu"].log)
    assert len(iree_log) == 1 and iree_log[0].rejected == "no fusion gained and no kernel saved"
    assert on["iree-cpu"].chosen is None
    xla = on["xla-cpu"]
    assert xla.chosen is not None, xla.reason
    assert {site.rule for site in xla.chosen.candidate.applied} == {"grouped_dot"}
    assert xla.chosen.report.fused.get("fusion.kCustom", 0) > xla.baseline.report.fused.get("fusion.kCustom", 0)


def test_an_onnx_model_compiles_through_irees_importer_at_the_feeds_shapes(tmp_path):
    """ONNX into IREE: a dynamic batch bound to the feeds' shapes, outputs equal to ORT's within
    fp32 tolerance, another batch size compiled on first use, and ORT's contrib ops never offered."""
    import onnx

    from tests.test_optimize import _mlp_with_erf_gelu

    fmt, _ = registry.format_named("onnx")
    model = fmt.from_object(_mlp_with_erf_gelu(np.float32))
    x = RNG.standard_normal((3, 16), np.float32)
    compiled = IreeTarget().bound_to({"x": x}).compile(model)
    expected = registry.target_for("ort-cpu").compile(model).run({"x": x})[0]
    np.testing.assert_allclose(compiled.run({"x": x})[0], expected, rtol=RTOL, atol=ATOL)
    wider = RNG.standard_normal((5, 16), np.float32)
    wider_expected = registry.target_for("ort-cpu").compile(model).run({"x": wider})[0]
    np.testing.assert_allclose(compiled.run({"x": wider})[0], wider_expected, rtol=RTOL, atol=ATOL)
    assert compiled.input_names == ["x"] and compiled.output_names == ["y"] and len(compiled.by_shape) == 1
    target = registry.target_for("iree-cpu")
    assert isinstance(target, protocols.OpVocabulary) and isinstance(target, protocols.ShapeBinding)
    assert target.runs_op("", "LayerNormalization") and not target.runs_op("com.microsoft", "FastGelu")
    source, out = tmp_path / "m.onnx", tmp_path / "out" / "m.onnx"
    onnx.save(_mlp_with_erf_gelu(np.float32), source)
    made = graphopt("optimize", str(source), "-o", str(out), "--mkdir", "--target", "iree-cpu", "--budget", "30")
    assert made.returncode == 0, made.stderr
    assert json.loads((tmp_path / "out" / "m.iree.json").read_text())["compiler"] == "iree"


def test_levers_apply_on_top_of_the_standard_level_and_are_written_with_it(tmp_path):
    """IREE's O3 is a standard level (protocols.StandardLevels): a decision sets its bar at the
    faster of O0 and O3 for the original; levers then add their flags to it, O3 is not offered
    again, and the settings file holds both."""
    from graphopt.targets.iree.flags import AGGRESSIVE_FUSION, O3

    target = registry.target_for("iree-cpu")
    assert isinstance(target, protocols.StandardLevels) and target.standard_levels() == [IreeFlags((O3,))]
    assert IreeTarget(flags=IreeFlags((O0,))).standard_levels() == []  # a level named is the level chosen
    leveled = target.with_lever(IreeFlags((O3,)))
    assert O3 not in {flag for lever in leveled.levers(None) for flag in lever.flags}
    both = leveled.with_lever(IreeFlags((DATA_TILING,)))
    assert set(both.flags.flags) == {O3, DATA_TILING}
    leveled.write_lever(tmp_path / "m.mlir", IreeFlags((AGGRESSIVE_FUSION,)), None)
    written = json.loads((tmp_path / "m.iree.json").read_text())["flags"]
    assert O3 in written and AGGRESSIVE_FUSION in written and "--iree-llvmcpu-target-cpu=host" in written


def test_the_bar_is_the_faster_standard_level_and_the_runner_uses_it():
    from graphopt.core.budget import Budget
    from graphopt.core.decide import decide
    from graphopt.policies.search import Greedy

    args = _mlp_args()
    graph = _module(_mlp, *args)
    _, fmt, rules = registry.format_of(graph.text)
    decision = decide(graph, fmt.rules(rules, graph), IreeTarget(), Greedy(), [_feeds(*args)], Budget(20.0))
    level = decision.standard_level
    assert level is None or level.flags == ("--iree-opt-level=O3",)
    expected_flags = set(level.flags) if level else set()
    assert set(decision.baseline.target.flags.flags) == expected_flags  # the bar, compiled at that level
    assert expected_flags <= set(decision.compiled_with.flags.flags)
