"""Policies: sites of one rule on values of one shape form one class; the family search, given
what has been measured, refines the best candidate by leaving out one site class at a time, and
never proposes the same graph twice."""

from __future__ import annotations

from graphopt.core.evaluation_log import Evaluation, EvaluationLog
from graphopt.core.measure import Comparison
from graphopt.formats.onnx import OnnxRules
from graphopt.formats.onnx.matching import ensure_unique_names, find_sites
from graphopt.passes.onnx import gelu
from graphopt.policies.search import FamilySearch
from tests.passes.onnx.harness import parse

# Three dynamo-style erf GELUs: two on [2, 8] values, one on a [2, 16] value.
GELU = """d{i} = Div({x}, sqrt2)
    e{i} = Erf(d{i})
    a{i} = Add(e{i}, one)
    m{i} = Mul(half, a{i})
    {y} = Mul({x}, m{i})"""
MODEL = f"""<ir_version: 8, opset_import: ["" : 18]>
g (float[2,8] x, float[2,8] v, float[2,16] w) => (float[2,8] y, float[2,8] u, float[2,16] z)
  <float sqrt2 = {{1.4142135}}, float half = {{0.5}}, float one = {{1.0}}> {{
    {GELU.format(i=0, x="x", y="y")}
    {GELU.format(i=1, x="v", y="u")}
    {GELU.format(i=2, x="w", y="z")}
}}"""


def _model():
    model = parse(MODEL)
    ensure_unique_names(model)
    return model


def test_site_classes_group_sites_by_the_shapes_they_read():
    sites = find_sites(_model(), gelu.RULES)
    assert len(sites) == 3
    classes = {s.site_class for s in sites}
    assert len(classes) == 2
    assert sorted(s.signature for s in sites) == ["float[2,16]", "float[2,8]", "float[2,8]"]


def _accepted(candidate, ratio: float) -> Evaluation:
    return Evaluation(candidate, timing=Comparison(1.0, ratio, ratio, ratio - 0.01, ratio + 0.01, 20))


def test_search_refines_the_best_measured_candidate_one_site_class_at_a_time():
    judged = EvaluationLog()
    proposals = FamilySearch().propose(_model(), OnnxRules(gelu.RULES), judged)
    greedy = next(proposals)
    assert greedy.label == "all rules" and len(greedy.applied) == 3
    judged.append(_accepted(greedy, 0.8))
    first = next(proposals)  # one family: no family subsets, straight to site classes
    # The larger class (two sites on [2, 8]) goes first.
    assert first.label == "all rules, without gelu-erf on float[2,8]"
    assert [s.signature for s in first.applied] == ["float[2,16]"]
    judged.append(Evaluation(first, rejected="not faster"))  # the greedy candidate stays the best
    second = next(proposals)
    assert second.label == "all rules, without gelu-erf on float[2,16]"
    assert [s.signature for s in second.applied] == ["float[2,8]", "float[2,8]"]
    judged.append(_accepted(second, 0.7))  # better: refinements now start from it
    # Its only class left out leaves no rewrite, which is the input, not a candidate.
    assert next(proposals, None) is None


def test_search_stops_when_nothing_was_accepted():
    judged = EvaluationLog()
    proposals = FamilySearch().propose(_model(), OnnxRules(gelu.RULES), judged)
    next(proposals)
    judged.append(Evaluation(None, rejected="not faster"))
    assert next(proposals, None) is None
