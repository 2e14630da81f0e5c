"""The core that every format, compiler and policy stands on: the ONNX format and ORT satisfy
the protocols, finding sites changes nothing, the Budget's slices, the evaluation log, and
decide() in memory (the layout and import rules are tests/test_layout.py)."""

from __future__ import annotations

import json
import time

import numpy as np
import onnx
import pytest

from graphopt.core import protocols
from graphopt.core.budget import Budget, TorchBudget
from graphopt.core.decide import decide
from graphopt.core.evaluation_log import EvaluationLog
from graphopt.formats.onnx import OnnxFormat, OnnxRules
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.matching import find_sites
from graphopt.passes.onnx import all_rules, gelu
from graphopt.policies.search import Greedy
from graphopt.targets.onnxruntime import OrtTarget
from tests.test_bad_input import EXAMPLE
from tests.test_optimize import _mlp_with_erf_gelu


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


def test_the_torch_budget_starts_only_what_fits():
    # a 14 s plain compile (MiniLM here): one frozen compile (7 s) and its timing (1.75 s) fit 10 s
    minilm = TorchBudget(10.0, plain_compile_s=14.0)
    assert minilm.timing_s == pytest.approx(1.75)
    assert minilm.inductor_budget() is not None and minilm.inductor_budget().total_s == pytest.approx(8.75)
    # a 20 s plain compile (ConvNeXt-T): the frozen compile would take the first call past the budget
    convnext = TorchBudget(10.0, plain_compile_s=20.0)
    assert convnext.inductor_budget() is None
    assert convnext.route_fits(session_s=None, timings_owed=0)  # 6 s of export and session, 1.75 of timing
    # after one route took 3.5 s, of which 2.4 s its export: the next one's session is what the first's was
    later = TorchBudget(10.0, plain_compile_s=20.0, start=time.monotonic() - 3.5)
    assert later.route_estimate_s(session_s=1.1) == pytest.approx(2.85)
    assert later.route_fits(session_s=1.1, timings_owed=1)
    assert not later.route_fits(session_s=3.2, timings_owed=1)  # 4.95 + 1.75 owed > 6.5 left
    assert later.route_search_s(timings_owed=1, routes_after=0) == 0.0  # no time for a search: a prediction
    # a larger budget gives the Inductor decision a third, and the routes equal shares of a search
    large = TorchBudget(60.0, plain_compile_s=14.0)
    assert large.inductor_budget().total_s == pytest.approx(20.0)
    assert large.route_search_s(timings_owed=0, routes_after=1) == pytest.approx(
        (60.0 - 2 * 1.0 - 2 * 6.5) / 2, abs=0.1
    )


def _greedy_gelu_decision(tmp_path, budget: Budget):
    """decide() with the greedy policy and the gelu rules on a small MLP with an erf GELU."""
    fmt = OnnxFormat()
    path = tmp_path / "m.onnx"
    onnx.save(_mlp_with_erf_gelu(np.float32), str(path))
    original = fmt.load(path)
    graph = prepare(fmt.copy(original))
    feeds = fmt.feeds(graph)
    return decide(graph, OnnxRules(gelu.RULES), OrtTarget(), Greedy(), feeds, budget, baseline_graph=original)


def test_decide_in_memory_and_its_log(tmp_path):
    decision = _greedy_gelu_decision(tmp_path, Budget(6.0))
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


def test_an_automatic_budget_is_fitted_to_one_candidate_and_a_named_one_is_kept():
    from graphopt.core.budget import AUTO_MAX_S, DEFAULT_S

    start = time.monotonic()
    auto = Budget.automatic(start)
    assert auto.total_s == DEFAULT_S and auto.fitted(5.0).total_s == DEFAULT_S  # small models: 60 s
    raised = auto.fitted(100.0)  # a candidate of 100 s, plus the levers' share and saving
    assert DEFAULT_S < raised.total_s < AUTO_MAX_S and raised.search_deadline - start >= 100.0
    assert auto.fitted(1000.0).total_s == AUTO_MAX_S
    assert Budget(60.0, start).fitted(100.0).total_s == 60.0  # a budget the user named is a promise
    tight = Budget(12.0, start).fitted(9.0)  # fits one candidate only without the levers' share (3 s)
    assert tight.total_s == 12.0 and tight.lever_share_s == 0.0 and tight.search_deadline - start >= 9.0
    assert Budget(60.0, start).fitted(9.0).lever_share_s > 0  # room for both: the share stays


def test_a_budget_too_small_for_one_candidate_says_so(tmp_path):
    decision = _greedy_gelu_decision(tmp_path, Budget(0.5))
    assert len(decision.log) == 0 and decision.kept_original
    assert "ends before one candidate can be judged" in decision.reason and "a budget of" in decision.reason
