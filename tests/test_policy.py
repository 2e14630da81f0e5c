"""The learned policy's parts (graphopt/policies/): the pool, features, the dataset on disk, the
ranker retrained from a small real dataset, the policy inside a run, and collection (locally
and on Ray)."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from graphopt.formats.onnx import OnnxFormat  # noqa: E402
from graphopt.passes.onnx import all_rules  # noqa: E402
from graphopt.policies.features import Schema, elements, features, graph_facts, vector  # noqa: E402
from graphopt.policies.pool import Entry, pool  # noqa: E402
from graphopt.policies.search import FamilySearch, Greedy  # noqa: E402
from graphopt.policies.training import dataset, evaluate  # noqa: E402

SMALL = Path(__file__).parent / "data" / "policy-small"  # real evaluations collected on this machine (see its README)


def _tiny_bert():
    fmt = OnnxFormat()
    model = fmt.load(str(resources.files("graphopt.examples") / "tiny-bert.onnx"))
    prepared = fmt.copy(model)
    fmt.prepare(prepared)
    return fmt, model, prepared, fmt.rules(all_rules(), model)


def test_the_pool_is_the_searchs_candidates_greedy_first():
    fmt, _, prepared, rules = _tiny_bert()
    greedy = next(Greedy().propose(prepared, rules))
    entries = pool(greedy, rules)
    assert entries[0].kind == "greedy" and entries[0].applied_from(greedy.applied) == greedy.applied
    searched = [c.label for c in FamilySearch(site_classes=False).propose(prepared, rules)]
    assert set(searched) <= {e.label for e in entries}  # the search's family phase is in the pool
    classes = {s.site_class for s in greedy.applied}
    assert {e.site_class for e in entries if e.kind == "without-class"} == classes
    for entry in entries:
        kept = entry.applied_from(greedy.applied)
        assert set(kept) <= set(greedy.applied)
        assert all(s.site_class not in entry.excluded for s in kept)


def test_features_follow_the_schema_and_say_what_an_entry_leaves_out():
    fmt, model, prepared, rules = _tiny_bert()
    greedy = next(Greedy().propose(prepared, rules))
    feeds = fmt.feeds(prepared)[0]
    facts = graph_facts(fmt, prepared, feeds, None, "ort-cpu")
    schema = Schema.of(rules.families())
    assert schema.digest == Schema.of(rules.families()).digest and len(set(schema.names)) == len(schema.names)
    entries = pool(greedy, rules)
    without = next(e for e in entries if e.kind == "without-class")
    named = features(without, greedy.applied, facts)
    assert set(named) <= set(schema.names)
    assert named["entry.kind.without-class"] == 1.0 and named[f"entry.class_rule.{without.site_class[0]}"] == 1.0
    assert named[f"entry.rule.{without.site_class[0]}"] < 1.0  # its rule keeps fewer sites than greedy
    assert named["target.ort-cpu"] == 1.0
    assert len(vector(named, schema)) == len(schema.names)


def _mlp_in_three_formats():
    """erf(tanh(x @ A + a) @ B + b) as ONNX (torch's exporter), a Dynamo FX graph and StableHLO
    (jax.export): two matrix products, one tanh and one erf in every spelling. (Not a sigmoid:
    JAX writes that as 1 / (1 + exp(-x)), no one op to count.)"""
    import jax
    import torch

    from graphopt.formats.fx.capture import dynamo_graph
    from graphopt.formats.fx.format import FxFormat
    from graphopt.formats.stablehlo.format import StableHloFormat

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)

        def forward(self, x):
            return torch.erf(self.b(torch.tanh(self.a(x))))

    model, x = Mlp().eval(), torch.randn(2, 4, 8)
    onnx_model = OnnxFormat().from_object(torch.onnx.export(model, (x,), dynamo=True).model_proto)
    fx_graph, _ = dynamo_graph(model, x)
    weights = [p.detach().numpy() for p in model.parameters()]

    def mlp(x, a, a_bias, b, b_bias):
        return jax.scipy.special.erf(jax.numpy.tanh(x @ a.T + a_bias) @ b.T + b_bias)

    exported = jax.export.export(jax.jit(mlp))(x.numpy(), *weights)
    return [
        (OnnxFormat(), onnx_model),
        (FxFormat(), fx_graph),
        (StableHloFormat(), StableHloFormat().from_object(exported)),
    ]


def test_graph_features_count_the_same_ops_in_every_format():
    for fmt, graph in _mlp_in_three_formats():
        facts = graph_facts(fmt, graph, {}, None, "ort-cpu")
        assert {op: facts.op_counts.get(op, 0) for op in ("MatMul", "Tanh", "Erf")} == {
            "MatMul": 2,
            "Tanh": 1,
            "Erf": 1,
        }, fmt.name
        named = features(Entry("all rules", "greedy", ()), [], facts)
        assert named["graph.op.MatMul"] > 0 and named["graph.op.Tanh"] > 0, fmt.name


def test_site_elements_resolve_symbols_from_the_inputs():
    assert elements("float[batch,sequence,64] int64[3]", {"batch": 2, "sequence": 16}) == 2 * 16 * 64 + 3
    assert elements("float[n,4]", {}) == 4  # an unknown symbol counts one


def test_the_dataset_round_trips_and_refuses_mixed_schemas(tmp_path):
    row = {
        "graph_id": "g",
        "fingerprint": "f",
        "arch": "bert",
        "spec": "{}",
        "target": "ort-cpu",
        "entry": "all rules",
        "kind": "greedy",
        "family": "",
        "site_class": "null",
        "position": 0,
        "features": [0.5, 1.0],
        "sites": [{"rule": "sdpa", "signature": "", "anchor": "n", "fused_now": False}],
        "kernels": 10,
        "fused": "{}",
        "fired": "{}",
        "equivalent": True,
        "rejected": "",
        "ratio": 0.9,
        "ci_low": 0.88,
        "ci_high": 0.92,
        "rounds": 40,
        "baseline_ms": 1.0,
        "candidate_ms": 0.9,
        "seconds": 2.0,
        "machine": "{}",
        "versions": "{}",
    }
    dataset.write_graph(tmp_path, "g", [row], ["a", "b"], "digest1")
    table, names, digest = dataset.read(tmp_path)
    assert (table.num_rows, names, digest) == (1, ["a", "b"], "digest1")
    assert table.to_pylist()[0]["features"] == pytest.approx([0.5, 1.0])
    assert dataset.done(tmp_path) == {"g"}
    assert dataset.label_ratio(row) == 0.9 and dataset.label_ratio(row | {"rejected": "not equivalent"}) == 1.0
    dataset.write_graph(tmp_path, "h", [row | {"graph_id": "h"}], ["a", "b"], "digest2")
    with pytest.raises(ValueError, match="feature schema"):
        dataset.read(tmp_path)


def test_offline_outcome_charges_each_entry_its_cost_and_keeps_the_best():
    graph = evaluate.Pool(
        "g", "bert", np.zeros((3, 1), np.float32), np.array([0.95, 1.0, 0.8]), np.array([4.0, 4.0, 4.0])
    )
    assert evaluate.outcome(graph, [0, 1, 2], 5.0) == 0.95  # only the first fits
    assert evaluate.outcome(graph, [2, 0], 5.0) == 0.8
    assert evaluate.outcome(graph, [0, 1, 2], math.inf) == 0.8
    assert evaluate.outcome(graph, [1], 0.0) == 1.0  # the first is judged however small the budget


def test_a_retimed_pool_is_chosen_by_its_first_timing_and_credited_with_its_second():
    first = evaluate.Pool(
        "g", "bert", np.zeros((3, 1), np.float32), np.array([0.9, 1.0, 0.8]), np.array([1.0, 1.0, 1.0])
    )
    credited = evaluate.credited(first, {("g", 0): 0.92, ("g", 2): 0.97})
    assert evaluate.outcome(credited, [0, 1, 2], math.inf) == 0.97  # entry 2 won the first timing; its second says 0.97
    assert evaluate.outcome(credited, [0], math.inf) == 0.92
    assert evaluate.outcome(credited, [1], math.inf) == 1.0  # nothing accepted: the original
    assert (
        evaluate.credited(first, {("g", 0): 0.92}).values is None
    )  # half retimed would favour one policy: first timings kept


@pytest.mark.skipif(not SMALL.exists(), reason="tests/data/policy-small not collected")
def test_a_policy_retrained_on_a_small_dataset_ranks_its_held_out_split_better_than_random(tmp_path):
    pytest.importorskip("lightgbm")
    from graphopt.policies.training.commands import read_by, train_from

    table, names, _ = dataset.read(SMALL)
    graphs = evaluate.pools(table)
    archs = sorted({g.arch for g in graphs})
    held = archs[-1:]  # the last architecture never trains
    ranker, _ = train_from(SMALL, tmp_path / "w.json", held_out=tuple(held))
    test_graphs = read_by(ranker, evaluate.held_out(graphs, held), names)
    quality = evaluate.ranking_quality(test_graphs, ranker)
    assert quality["kendall_tau"] > 0.0  # random order has an expected tau of 0
    speedups = evaluate.compare(test_graphs, ranker, (0.25,))  # a quarter of the whole search's budget
    assert speedups["learned"][0.25] >= speedups["random"][0.25]


def test_the_shipped_weights_order_a_real_run_and_say_why(tmp_path):
    """`graphopt optimize --policy learned` with the weights in the package, no training step:
    candidates come in the ranker's order, the report names the features behind it, and
    acceptance stays measured (the output matches the input within fp32 tolerance)."""
    import json
    import subprocess
    import sys

    from graphopt.policies import weights_path

    assert weights_path("ort-cpu").exists(), "the package ships weights for ORT on CPU"
    model = resources.files("graphopt.examples") / "tiny-bert.onnx"
    out, report = tmp_path / "out.onnx", tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphopt",
            "optimize",
            str(model),
            "-o",
            str(out),
            "--policy",
            "learned",
            "--budget",
            "20",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(report.read_text())
    assert document["policy"] == "learned" and document["prediction"], "the ranker ordered this graph's pool"
    first = document["prediction"][0]
    assert (
        first["drivers"] and document["candidates"][0]["label"] == first["candidate"]
    )  # the best-predicted is measured first
    assert "learned policy #1" in done.stdout + done.stderr
    if not document["kept_original"]:
        assert document["latency"]["ci95"][1] < 1.0  # kept only when faster with confidence


def _tiny_spec(arch="bert", seed=1):
    from graphopt.policies.training.corpus import Spec

    return Spec(arch, 1, 32, 2, 2, 1, 8, "dynamo", "eager", False, seed)


def test_files_from_other_projects_are_held_out_specs_built_as_their_projects_build_them(tmp_path):
    pytest.importorskip("transformers")
    from graphopt.models.corpus import ENTRIES
    from graphopt.policies.training import corpus

    specs = corpus.files()
    assert [s.arch for s in specs] == list(corpus.FILES) and set(corpus.FILES) <= set(ENTRIES)
    assert set(corpus.FILES) <= set(corpus.HELD_OUT) and not set(corpus.FILES) & set(corpus.TRAIN)
    ocr = next(s for s in specs if s.arch == "ocr-crnn")
    assert ocr.graph_id == "file-ocr-crnn" and corpus.Spec.from_json(ocr.to_json()) == ocr
    path, feeds = corpus.build(ocr, tmp_path)
    session = pytest.importorskip("onnxruntime").InferenceSession(str(path))
    assert {i.name for i in session.get_inputs()} == set(feeds)
    (scores,) = session.run(None, feeds)
    assert scores.shape == (32, 1, 40)  # 128 columns / 4 steps, batch 1, 40 classes


def test_the_jax_corpus_lowers_sampled_zoo_architectures_to_stablehlo_with_their_inputs(tmp_path):
    pytest.importorskip("jax")
    from graphopt.formats.stablehlo import StableHloFormat
    from graphopt.policies.training import corpus

    jax_corpus = corpus.of_kind("jax")
    specs = jax_corpus.sample(4, 0)
    assert {s.arch for s in specs} == set(jax_corpus.TRAIN) and not set(jax_corpus.TRAIN) & set(jax_corpus.HELD_OUT)
    prompt = next(s for s in specs if s.arch == "jax-prompt")
    path, feeds = corpus.build(prompt, tmp_path)
    fmt = StableHloFormat()
    module = fmt.load(path)
    specs_in = fmt.input_specs(module)
    assert [s.name for s in specs_in] == list(feeds)
    assert all(tuple(s.dims) == feeds[s.name].shape for s in specs_in)
    with pytest.raises(ValueError, match="unknown corpus"):
        corpus.of_kind("tflite")


@pytest.mark.slow
def test_collecting_one_graph_judges_its_whole_pool(tmp_path):
    pytest.importorskip("transformers")
    from graphopt.policies.training.collect import collect

    written = collect([_tiny_spec()], tmp_path, measure_s=1.0, progress=lambda message: None)
    assert written == [_tiny_spec().graph_id]
    table, names, _ = dataset.read(tmp_path)
    rows = table.to_pylist()
    assert rows[0]["kind"] == "greedy" and len(rows) == len({r["entry"] for r in rows}) > 1
    assert all(len(r["features"]) == len(names) for r in rows)
    judged = [r for r in rows if r["ratio"] is not None]
    assert judged and all(r["ci_low"] <= r["ratio"] <= r["ci_high"] and r["equivalent"] for r in judged)
    assert (
        collect([_tiny_spec()], tmp_path, measure_s=1.0, progress=lambda message: None) == []
    )  # resumed: nothing left

    from graphopt.policies.training.retime import retime

    accepted = sorted(r["position"] for r in rows if dataset.label_ratio(r) < 1.0)
    retime(tmp_path, tmp_path / "retimed", [_tiny_spec().arch], measure_s=0.3, progress=lambda message: None)
    if accepted:  # the tiny graph's entries are usually faster; when none is, there is nothing to retime
        second = dataset.read(tmp_path / "retimed")[0].to_pylist()
        assert sorted(r["position"] for r in second) == accepted
        assert all(r["ci_low"] <= r["ratio"] <= r["ci_high"] and r["rounds"] >= 10 for r in second)


@pytest.mark.slow
def test_collecting_on_a_local_ray_cluster_gives_the_same_dataset(tmp_path):
    """`ray start --head` on this machine, then collect with `--ray auto`, as on a real cluster."""
    pytest.importorskip("ray")
    pytest.importorskip("transformers")
    import subprocess
    import sys

    from graphopt.policies.ranker import Ranker
    from graphopt.policies.training.collect import collect
    from graphopt.policies.training.commands import train_from

    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    started = subprocess.run(
        [*ray_cli, "start", "--head", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        written = collect(
            [_tiny_spec(seed=2)], tmp_path, measure_s=1.0, ray_address="auto", progress=lambda message: None
        )
        ranker, weights = train_from(
            tmp_path, tmp_path / "w.json", held_out=(), ray_address="auto"
        )  # the fit as a Ray task
    finally:
        import ray

        ray.shutdown()
        subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, timeout=120)
    assert written == [_tiny_spec(seed=2).graph_id]
    table, names, digest = dataset.read(tmp_path)
    rows = table.to_pylist()
    assert len(rows) > 1 and digest and all(len(r["features"]) == len(names) for r in rows)
    assert all(r["equivalent"] for r in rows if r["ratio"] is not None)
    assert Ranker.load(weights).feature_schema == digest == ranker.feature_schema


def test_weights_apply_by_feature_name_and_are_refused_when_a_feature_is_gone():
    """Rules added after training only add features the ranker never saw; weights that need a
    feature the rules no longer define (a rule removed or renamed) fall back to the search."""
    import dataclasses

    from graphopt.core.protocols import SearchContext
    from graphopt.policies import weights_path
    from graphopt.policies.learned import Learned
    from graphopt.policies.ranker import Ranker

    fmt = OnnxFormat()
    model = fmt.load(resources.files("graphopt.examples") / "tiny-bert.onnx")
    fmt.prepare(model)
    rules = fmt.rules(all_rules(), model)
    greedy = next(Greedy().propose(model, rules))
    context = SearchContext(fmt.feeds(model), None, "ort-cpu")
    shipped = Ranker.load(weights_path("ort-cpu"))
    scores, entries = Learned(shipped, fmt)._scored(model, rules, greedy, context)
    assert scores is not None and len(scores) == len(entries)
    stale = dataclasses.replace(shipped, feature_names=shipped.feature_names[:-1] + ["entry.rule.a-removed-rule"])
    assert Learned(stale, fmt)._scored(model, rules, greedy, context)[0] is None
