"""The learned policy's target-neutral features (graphopt/policies/categories.py, features.py) and
the collection for any target: what a CNN's decision reads, what a StableHLO or FX graph reads,
a dataset read again with today's features without timing anything, collection on a target other
than ORT, and a deadline that starts no new graph."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from graphopt.formats.onnx import OnnxFormat  # noqa: E402
from graphopt.passes.onnx import all_rules  # noqa: E402
from graphopt.policies.categories import CATEGORIES, category  # noqa: E402
from graphopt.policies.features import Schema, features, graph_facts, site_bytes  # noqa: E402
from graphopt.policies.pool import pool  # noqa: E402
from graphopt.policies.search import Greedy  # noqa: E402
from graphopt.policies.training import dataset  # noqa: E402
from tests.test_policy import _mlp_in_three_formats, _tiny_bert, _tiny_spec  # noqa: E402


def test_one_op_has_one_category_whatever_the_format_calls_it():
    spellings = {
        "contraction": ("MatMul", "Gemm", "Conv", "stablehlo.dot_general", "stablehlo.convolution", "aten.mm.default"),
        "normalization": ("LayerNormalization", "com.microsoft.SkipLayerNormalization", "aten.native_layer_norm"),
        "activation": ("Relu", "Erf", "chlo.erf", "stablehlo.tanh", "aten.gelu.default", "relu_"),
        "softmax": ("Softmax", "aten._softmax.default", "stablehlo.exponential"),
        "data_movement": ("Transpose", "stablehlo.broadcast_in_dim", "aten.view.default", "Cast", "stablehlo.convert"),
        "shape_arithmetic": ("Shape", "ConstantOfShape", "Range"),
        "elementwise": ("Add", "stablehlo.multiply", "aten.add.Tensor", "Where"),
        "reduction": ("ReduceMean", "aten.sum.dim_IntList"),
    }
    for expected, names in spellings.items():
        assert {name: category(name) for name in names} == dict.fromkeys(names, expected)
    assert category("MyCustomOp") == "other" and set(spellings) < set(CATEGORIES)


def test_signatures_of_every_format_give_bytes_by_dtype():
    assert site_bytes("float[batch,64] int64[3]", {"batch": 2}) == 2 * 64 * 4 + 3 * 8
    assert site_bytes("tensor<2x64xf32> tensor<4xbf16> tensor<?x8xf16>", {}) == 2 * 64 * 4 + 4 * 2 + 8 * 2
    assert site_bytes("float16[2,3]", {}) == 12  # FX's dtype names


def test_an_mlp_reads_as_contractions_and_activations_in_every_format():
    """The same MLP as ONNX, FX and StableHLO: its graph categories say two contractions and two
    activations in each spelling, and nothing normalizes or attends."""
    for fmt, graph in _mlp_in_three_formats():
        named = features(pool_entry_greedy(), [], graph_facts(fmt, graph, {}, None, "xla-cpu"))
        assert named["graph.category.contraction"] > 0 and named["graph.category.activation"] > 0, fmt.name
        assert not named.get("graph.category.normalization") and not named.get("graph.category.attention"), fmt.name


def pool_entry_greedy():
    from graphopt.policies.pool import Entry

    return Entry("all rules", "greedy", ())


def _cnn(tmp_path):
    """Two blocks of "same" padding written as an explicit Pad (timm's TF-ported models), a
    convolution with batch norm (folded by torch's exporter) and ReLU6 spelled as min/max (as TF
    converters write it): a CNN as exporters hand it to graphopt."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self, channels_in, channels_out):
            super().__init__()
            self.conv = torch.nn.Conv2d(channels_in, channels_out, 3)
            self.norm = torch.nn.BatchNorm2d(channels_out)

        def forward(self, x):
            y = self.norm(self.conv(torch.nn.functional.pad(x, (1, 1, 1, 1))))
            return torch.minimum(torch.maximum(y, torch.tensor(0.0)), torch.tensor(6.0))

    cnn = torch.nn.Sequential(Block(3, 8), Block(8, 8)).eval()
    x = torch.randn(1, 3, 16, 16)
    fmt = OnnxFormat()
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(cnn, (x,), str(path), dynamo=False, input_names=["x"])  # the legacy exporter keeps the spelling
    return fmt, fmt.load(str(path)), {"x": x.numpy()}


def test_a_cnns_entries_are_described_by_what_the_cnn_contains(tmp_path):
    """Every target-neutral feature that is not zero for a CNN's pool names a category the CNN
    holds (contractions, elementwise min/max, data movement) or a size; none speaks of attention or
    softmax, whatever rules the registry has for transformers."""
    fmt, model, feeds = _cnn(tmp_path)
    prepared = fmt.copy(model)
    fmt.prepare(prepared)
    rules = fmt.rules(all_rules(), model)
    greedy = next(Greedy().propose(prepared, rules), None)
    assert greedy is not None and {s.rule for s in greedy.applied} >= {"pad-conv-bias", "min-max-clip"}
    facts = graph_facts(fmt, prepared, feeds, None, "openvino-cpu")
    held = {category(op) for op in facts.op_counts}
    assert {"contraction", "elementwise", "data_movement"} <= held  # ReLU6 as Min and Max is elementwise
    for entry in pool(greedy, rules):
        named = features(entry, greedy.applied, facts)
        mentioned = {name.rsplit(".", 1)[1] for name, value in named.items() if value and _is_category(name)}
        assert mentioned <= held, (entry.label, mentioned - held)
        assert not any(named.get(f"entry.{side}.attention") for side in ("kept", "dropped"))
    greedy_named = features(pool(greedy, rules)[0], greedy.applied, facts)
    assert greedy_named["entry.kept.contraction"] > 0 and greedy_named["entry.kept.data_movement"] > 0
    assert greedy_named["entry.kept.log_bytes"] > np.log1p(1 * 3 * 16 * 16 * 4)  # reads at least the input


def _is_category(name: str) -> bool:
    prefixes = ("graph.category.", "entry.kept.", "entry.dropped.")
    return name.rsplit(".", 1)[1] in CATEGORIES and name.startswith(prefixes)


def test_the_schema_only_adds_names_so_the_shipped_weights_still_apply():
    from graphopt.policies import weights_path
    from graphopt.policies.ranker import Ranker

    pytest.importorskip("lightgbm")
    _, _, _, rules = _tiny_bert()
    names = set(Schema.of(rules.families()).names)
    assert set(Ranker.load(weights_path("ort-cpu")).feature_names) <= names


def test_a_deadline_in_the_past_starts_no_job():
    from graphopt.policies.training.collect import run_jobs

    jobs = [(_tiny_spec(), time.sleep, (0,))]
    assert list(run_jobs(jobs, deadline=time.monotonic() - 1)) == []


@pytest.mark.slow
def test_a_dataset_is_featurized_again_without_timing_and_refused_when_the_graph_changed(tmp_path):
    """Collect one graph on OpenVINO (a target with no rule written for it), then read its
    features again: same rows and labels, today's schema; a dataset whose greedy sites are not
    what the rules apply today is skipped, not mislabeled."""
    pytest.importorskip("transformers")
    pytest.importorskip("openvino")
    import pyarrow.parquet as pq

    from graphopt.policies.training.collect import collect
    from graphopt.policies.training.featurize import featurize

    spec = _tiny_spec(seed=3)
    quiet = lambda message: None  # noqa: E731
    assert collect([spec], tmp_path / "data", measure_s=0.5, progress=quiet, target="openvino-cpu") == [spec.graph_id]
    rows = dataset.read(tmp_path / "data")[0].to_pylist()
    assert {r["target"] for r in rows} == {"openvino-cpu"} and len(rows) > 1
    assert not any("cannot read" in r["rejected"] for r in rows)  # only ops OpenVINO reads are offered
    assert featurize(tmp_path / "data", tmp_path / "again", progress=quiet) == [spec.graph_id]
    again, names, digest = dataset.read(tmp_path / "again")
    again = again.to_pylist()
    keys = ("entry", "ratio", "rejected", "ci_low", "ci_high", "sites")
    assert [{k: r[k] for k in keys} for r in again] == [{k: r[k] for k in keys} for r in rows]
    assert all(len(r["features"]) == len(names) for r in again)
    assert [r["features"] for r in again] == [r["features"] for r in rows]  # deterministic, same schema

    path = next((tmp_path / "data").glob("*.parquet"))
    table = pq.read_table(path)
    changed = [r | {"sites": r["sites"][1:]} if r["kind"] == "greedy" else r for r in table.to_pylist()]
    dataset.write_graph(tmp_path / "changed", spec.graph_id, changed, names, digest)
    said = []
    assert featurize(tmp_path / "changed", tmp_path / "refused", progress=said.append) == []
    assert "other sites than those measured" in said[0]


def test_the_policy_composes_the_actions_it_predicts_helpful_into_one_candidate():
    """Two removals scored above greedy become one candidate without both (outside the pool); one
    alone composes nothing (it is a pool entry already)."""
    from graphopt.policies.pool import composed

    fmt, _, prepared, rules = _tiny_bert()
    greedy = next(Greedy().propose(prepared, rules))
    entries = pool(greedy, rules)
    family = next(e for e in entries if e.kind == "all-but")
    left_out = _rules_of(rules, family)
    site_class = next(e for e in entries if e.kind == "without-class" and e.site_class[0] not in left_out)
    scores = np.zeros(len(entries))
    scores[entries.index(family)] = 1.0
    assert composed(entries, scores, rules) is None
    scores[entries.index(site_class)] = 0.5
    mixed = composed(entries, scores, rules)
    assert mixed.kind == "composed" and mixed.excluded == {site_class.site_class}
    assert set(mixed.rules) == set(family.rules)  # every rule but the family's
    kept = mixed.applied_from(greedy.applied)
    assert kept and all(s.rule in family.rules and s.site_class != site_class.site_class for s in kept)
    assert mixed.rewrite(prepared, rules).applied  # a real candidate, rewritten like any entry
    assert mixed.label not in {e.label for e in entries}


def _rules_of(rules, entry) -> set[str]:
    return set(rules.families()[entry.family])


def test_leaving_each_architecture_out_ranks_it_better_than_chance_on_average():
    """`graphopt policy eval --leave-one-out` on real evaluations: each architecture judged by a
    ranker trained on the others only; random order has an expected tau of 0."""
    pytest.importorskip("lightgbm")
    from graphopt.policies.training.commands import leave_one_out
    from tests.test_policy import SMALL

    by_arch = leave_one_out(SMALL)
    graphs = {}
    for row in dataset.read(SMALL)[0].to_pylist():
        graphs.setdefault(row["arch"], set()).add(row["graph_id"])
    assert {arch: result["graphs"] for arch, result in by_arch.items()} == {a: len(g) for a, g in graphs.items()}
    assert np.mean([result["quality"]["kendall_tau"] for result in by_arch.values()]) > 0.0
    for result in by_arch.values():
        assert result["twentieth"]["learned"] <= result["speedups"]["search"][1.0] + 1e-12  # a share of the pool


def test_weights_read_the_columns_they_know_by_name(tmp_path):
    """Weights trained before features were added judge a dataset that has them (the columns are
    picked by name); weights that need a column the dataset lacks are refused with what to do."""
    pytest.importorskip("lightgbm")
    from graphopt.policies.training.commands import evaluation, train_from
    from tests.test_policy import SMALL

    ranker, _ = train_from(SMALL, tmp_path / "w.json", held_out=("vit",))
    table, names, digest = dataset.read(SMALL)
    wider = tmp_path / "wider"
    for graph_id in sorted(set(table.column("graph_id").to_pylist())):
        rows = [r | {"features": [7.0, *r["features"]]} for r in table.to_pylist() if r["graph_id"] == graph_id]
        dataset.write_graph(wider, graph_id, rows, ["a.new.feature", *names], "wider")
    assert evaluation(wider, ranker)["speedups"] == evaluation(SMALL, ranker)["speedups"]
    ranker.feature_names = [*ranker.feature_names[:-1], "a.feature.no.dataset.has"]
    with pytest.raises(ValueError, match="featurize the dataset again"):
        evaluation(SMALL, ranker)


def test_the_shipped_weights_explain_a_cnns_order_by_what_the_cnn_holds(tmp_path):
    """The learned policy's drivers for a CNN's first predictions (what `graphopt optimize`
    prints) are features the CNN's candidates have: no transformer rule, no absent op."""
    pytest.importorskip("lightgbm")
    from graphopt.core import registry
    from graphopt.core.protocols import SearchContext
    from graphopt.policies import weights_path
    from graphopt.policies.features import rule_named
    from graphopt.policies.learned import Learned
    from graphopt.policies.ranker import Ranker

    fmt, model, feeds = _cnn(tmp_path)
    prepared = fmt.copy(model)
    fmt.prepare(prepared)
    rules = fmt.rules(all_rules(), model)
    report = registry.target_for("ort-cpu").compile(model).report
    ranker = Ranker.load(weights_path("ort-cpu"))
    assert not any(rule_named(name) for name in ranker.feature_names)  # the shipped policy reads no rule names
    policy = Learned(ranker, fmt)
    first = next(policy.propose(prepared, rules, None, SearchContext([feeds], report, "ort-cpu")))
    assert policy.explanation and first.label == policy.explanation[0].label
    facts = graph_facts(fmt, prepared, feeds, report, "ort-cpu")
    held = {category(op) for op in facts.op_counts}
    for prediction in policy.explanation:
        assert prediction.drivers
        for name, _ in prediction.drivers:
            if _is_category(name):
                assert name.rsplit(".", 1)[1] in held, name
            if name.startswith("graph.op."):
                assert facts.op_counts.get(name.removeprefix("graph.op."), 0) > 0, name
