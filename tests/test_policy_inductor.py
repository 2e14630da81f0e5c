"""The learned policy for Inductor (graphopt/policy/inductor.py): the FX pool, its features, and
one corpus graph captured by Dynamo and judged on the real Inductor."""

from __future__ import annotations

import pytest

pytest.importorskip("pyarrow")
torch = pytest.importorskip("torch")

from graphopt.policy import dataset  # noqa: E402
from graphopt.policy.corpus import Spec  # noqa: E402
from graphopt.policy.inductor import entry_features, feature_names, fx_pool, schema_digest  # noqa: E402


def test_the_fx_pool_is_every_subset_a_choice_can_make_without_repeats():
    labels = [e.label for e in fx_pool(["rms_norm", "silu", "sdpa"])]
    assert labels[0] == "all rules, frozen" and labels[-1] == "no rules, frozen"
    assert {"all but silu, frozen", "only silu, frozen", "only sdpa, frozen"} <= set(labels)
    assert len(labels) == 1 + 3 + 3 + 1
    two = fx_pool(["gelu_erf", "sdpa"])  # with two rules "all but one" is "only the other": kept once
    assert [e.rules for e in two] == [("gelu_erf", "sdpa"), ("sdpa",), ("gelu_erf",), ()]
    assert [e.label for e in fx_pool([])] == ["all rules, frozen"]  # nothing fired: freezing alone, once
    both = fx_pool(["sdpa"], ["conv_bn", "sdpa"])  # conv_bn does not help frozen weights
    assert [(e.rules, e.freeze) for e in both] == [(("sdpa",), True), ((), True), (("conv_bn", "sdpa"), False), (("sdpa",), False), (("conv_bn",), False)]
    assert all(e.rules or e.freeze for e in both)  # no rules and no freezing is the baseline, not an entry


def test_fx_features_say_what_an_entry_keeps_and_have_their_own_digest():
    names = feature_names(["gelu_erf", "sdpa"])
    fired = {"gelu_erf": 2, "sdpa": 2}
    only_sdpa = next(e for e in fx_pool(list(fired)) if e.rules == ("sdpa",))  # "all but gelu_erf"
    values = entry_features(only_sdpa, fired, {"graph.log_nodes": 3.0})
    assert values["entry.rule.sdpa"] == 1.0 and "entry.rule.gelu_erf" not in values
    assert values["entry.kept_share"] == 0.5 and values["entry.family.gelu_erf"] == 1.0 and values["graph.log_nodes"] == 3.0
    assert schema_digest(names) != schema_digest(feature_names(["sdpa"]))


@pytest.mark.slow
def test_a_corpus_graph_judged_on_inductor_gives_one_row_per_entry():
    pytest.importorskip("transformers")
    from graphopt.policy.inductor import collect_fx_one

    spec = Spec("bert", 1, 32, 2, 2, 1, 8, "dynamo", "eager", False, 11)
    graph_id, rows, names, digest = collect_fx_one(spec, measure_s=0.5)
    assert graph_id == spec.graph_id and digest == schema_digest(names)
    assert rows[0]["entry"] == "all rules, frozen" and "all rules" in [r["entry"] for r in rows]
    assert "sdpa" in {s["rule"] for s in rows[0]["sites"]}  # BERT eager attention, written out
    assert all(r["target"] == "inductor" and len(r["features"]) == len(names) for r in rows)
    timed = [r for r in rows if r["ratio"] is not None]
    assert timed and all(r["equivalent"] and r["ci_low"] <= r["ratio"] <= r["ci_high"] for r in timed)
    assert all(dataset.label_ratio(r) <= 1.0 for r in rows)
