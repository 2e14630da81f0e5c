"""The core that every format, compiler and policy stands on: the engine imports no ONNX, the
ONNX format and ORT satisfy the protocols, finding sites changes nothing, the Budget's slices,
the evaluation log, and decide() in memory."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from graphopt.passes.onnx import all_rules, gelu

from graphopt import protocols
from graphopt.budget import Budget
from graphopt.decide import decide
from graphopt.evaluation_log import EvaluationLog
from graphopt.formats.onnx import OnnxFormat, OnnxRules
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.matching import find_sites
from graphopt.search.policies import Greedy
from graphopt.targets.onnxruntime import OrtTarget
from tests.test_bad_input import EXAMPLE
from tests.test_optimize import _mlp_with_erf_gelu

GRAPHOPT = Path(__file__).parents[1] / "graphopt"
ONNX_PACKAGES = {"onnx", "onnx_ir", "onnxscript", "onnxruntime"}
ONNX_ROOMS = ("formats/onnx/", "targets/onnxruntime/")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_onnx_rooms_import_onnx_or_ort():
    offenders = {}
    for path in GRAPHOPT.rglob("*.py"):
        relative = path.relative_to(GRAPHOPT).as_posix()
        if relative.startswith(ONNX_ROOMS):
            continue
        bad = {n for n in _imports(path) if n.split(".")[0] in ONNX_PACKAGES or n.startswith(("graphopt.formats.onnx", "graphopt.targets.onnxruntime", "graphopt.passes.onnx"))}
        if bad:
            offenders[relative] = sorted(bad)
    assert offenders == {}


def test_only_the_fx_rooms_import_fx_rules():
    """FX rules are read by the FX format and the Inductor target, nothing else (the torch
    backend reaches them through targets/inductor)."""
    offenders = {}
    for path in GRAPHOPT.rglob("*.py"):
        relative = path.relative_to(GRAPHOPT).as_posix()
        if relative.startswith(("formats/fx/", "targets/inductor/")):
            continue
        bad = {n for n in _imports(path) if n.startswith("graphopt.passes.fx")}
        if bad:
            offenders[relative] = sorted(bad)
    assert offenders == {}


def test_only_the_stablehlo_rooms_import_jax():
    """jax and jaxlib (and the MLIR bindings inside jaxlib) are read by the StableHLO format, the
    XLA target and the JAX way in (graphopt/jax.py) only."""
    offenders = {}
    for path in GRAPHOPT.rglob("*.py"):
        relative = path.relative_to(GRAPHOPT).as_posix()
        if relative.startswith(("formats/stablehlo/", "targets/xla/")) or relative == "jax.py":
            continue
        bad = {n for n in _imports(path) if n.split(".")[0] in ("jax", "jaxlib")}
        if bad:
            offenders[relative] = sorted(bad)
    assert offenders == {}


def test_the_engine_does_not_reach_back_up():
    """search/, decide, budget, harness and the log import neither the ways in nor reports."""
    upper = ("graphopt.cli", "graphopt.optimize", "graphopt.check", "graphopt.report", "graphopt.registry")
    for relative in ("search/loop.py", "search/policies.py", "decide.py", "budget.py", "harness.py", "evaluation_log.py", "protocols.py"):
        assert not {n for n in _imports(GRAPHOPT / relative) if n.startswith(upper)}, relative


def test_onnx_format_and_ort_target_satisfy_the_protocols():
    assert isinstance(OnnxFormat(), protocols.Format)
    assert isinstance(OnnxRules(all_rules()), protocols.RuleSet)
    assert isinstance(OrtTarget(), protocols.Target)
    assert isinstance(Greedy(), protocols.Policy)


def test_finding_sites_changes_nothing():
    model = prepare(OnnxFormat().load(EXAMPLE))
    before = onnx.load_from_string(_bytes(model))
    sites = find_sites(model, all_rules())
    assert sites  # tiny BERT has ten
    after = onnx.load_from_string(_bytes(model))
    assert after == before  # opset imports included: onnxscript's try_rewrite would add com.microsoft


def _bytes(model) -> bytes:
    import onnx_ir as ir

    return ir.serde.serialize_model(model).SerializeToString(deterministic=True)


def test_sites_carry_features():
    model = prepare(OnnxFormat().load(EXAMPLE))
    report = OrtTarget().compile(model).report
    site = next(s for s in find_sites(model, gelu.RULES))
    assert sorted(site.op_types) == ["Add", "Div", "Erf", "Mul", "Mul"]
    assert site.reads and site.signature.startswith("float[")
    assert site.fused_now(report) is False  # ORT does not fuse the dynamo erf GELU on this export


def test_budget_owns_the_slices():
    budget = Budget(60.0, start=time.monotonic(), weight_bytes=400e6)
    assert budget.save_s == pytest.approx(3.0)
    assert budget.lever_share_s == 15.0 and Budget(20.0).lever_share_s == 5.0
    assert budget.search_deadline == pytest.approx(budget.deadline - 15.0)
    assert 1.0 <= budget.measure_s() <= 10.0
    assert Budget(1.0).confirm_s(pair_setup_s=0.5) is None  # no time for a meaningful confirmation
    assert Budget(1.0).lever_s(pair_setup_s=0.5) is None


def test_decide_in_memory_and_its_log(tmp_path):
    fmt = OnnxFormat()
    path = tmp_path / "m.onnx"
    onnx.save(_mlp_with_erf_gelu(np.float32), str(path))
    original = fmt.load(path)
    graph = prepare(fmt.copy(original))
    feeds = fmt.feeds(graph)
    decision = decide(graph, OnnxRules(gelu.RULES), OrtTarget(), Greedy(), feeds, Budget(6.0), baseline_graph=original)
    assert len(decision.log) == 1
    evaluation = next(iter(decision.log))
    assert [s.rule for s in evaluation.candidate.applied] == ["gelu-erf"]
    assert evaluation.report.fused.get("com.microsoft::Gelu") == 1
    assert decision.reason
    decision.log.save(tmp_path / "log.jsonl")
    record = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert record["sites"][0]["rule"] == "gelu-erf" and record["report"]["kernels"] == evaluation.report.kernels
    assert record["equivalent"] is True


def test_the_log_is_append_only():
    log = EvaluationLog()
    assert not hasattr(log, "pop") and not hasattr(log, "__setitem__") and not hasattr(log, "remove")
