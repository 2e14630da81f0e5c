"""What ``graphopt policy collect | train | eval`` do, as functions (the CLI is a thin layer)."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from graphopt.policies import weights_path
from graphopt.policies.features import rule_named
from graphopt.policies.ranker import Ranker, train
from graphopt.policies.training import corpus, dataset, evaluate
from graphopt.policies.training.collect import TARGET, collect

TWENTIETH = 1 / 20  # the bar: the learned order with 1/20 of the budget against the whole search


def collect_corpus(
    folder,
    count: int,
    seed: int,
    archs=None,
    held_out: bool = True,
    measure_s: float = 6.0,
    ray_address=None,
    progress=print,
    target: str = TARGET,
    hours: float | None = None,
    kind: str = "onnx",
):
    """Sample ``count`` training specs (and, with ``held_out``, a third as many of the held-out
    architectures and the corpus's files from other projects) and judge every pool entry of each
    into ``folder`` for ``target``, starting no graph after ``hours`` (a rerun resumes). Specs
    are interleaved, held-out ones among the others, so a run stopped by its hours still has
    some of each. ``kind``: the corpus (corpus.KINDS: "onnx", "jax")."""
    source = corpus.of_kind(kind)
    specs = source.sample(count, seed, tuple(archs) if archs else source.TRAIN)
    if held_out:
        held = source.sample(max(1, count // 3), seed + 1, source.HELD_OUT_ARCHS) + source.files()
        specs = _interleaved(specs, held)
    deadline = time.monotonic() + hours * 3600 if hours else None
    return collect(
        specs, folder, measure_s=measure_s, ray_address=ray_address, progress=progress, target=target, deadline=deadline
    )


def _interleaved(train_specs: list, held_specs: list) -> list:
    """One held-out spec after every few training ones, in the proportion of the two lists."""
    if not held_specs:
        return train_specs
    step = max(1, len(train_specs) // len(held_specs))
    merged, held = [], iter(held_specs)
    for index, spec in enumerate(train_specs):
        merged.append(spec)
        if (index + 1) % step == 0 and (next_held := next(held, None)) is not None:
            merged.append(next_held)
    return merged + list(held)


def train_from(
    folder, out=None, held_out=corpus.HELD_OUT, seed: int = 0, ray_address=None, rule_names: bool = False
) -> tuple[Ranker, str]:
    """Train on every graph of the dataset whose architecture is not held out; save the weights.
    Without ``rule_names`` the ranker reads no rule or family name (features.rule_named): it
    ranks by what a candidate keeps and drops, which means the same for rules added later and on
    every target, and it ranked held-out architectures as well as with them (README). With
    ``ray_address`` the fit runs as a Ray task (the driver reads the dataset and sends the
    arrays, so workers need no shared disk)."""
    table, names, digest = dataset.read(folder)
    target = dataset.target_of(table)
    graphs = evaluate.training(evaluate.pools(table), held_out)
    if not graphs:
        raise ValueError(f"no training graphs in {folder} (every architecture is held out)")
    graphs, names = _trainable(graphs, names, rule_names)
    features = np.concatenate([g.features for g in graphs])
    ratios = np.concatenate([g.ratios for g in graphs])
    groups = [g.graph_id for g in graphs for _ in range(len(g.ratios))]
    if ray_address:
        import ray

        ray.init(address=ray_address, ignore_reinit_error=True, log_to_driver=False)
        ranker = ray.get(ray.remote(num_cpus=1)(train).remote(features, ratios, groups, names, digest, held_out, seed))
    else:
        ranker = train(features, ratios, groups, names, digest, held_out, seed)
    path = out or weights_path(target)
    ranker.save(path)
    return ranker, str(path)


def evaluation(folder, ranker: Ranker | None = None, shares=evaluate.SHARES, retimed=None, archs=None) -> dict:
    """The comparison on the held-out graphs of ``folder`` (or on ``archs``): speedups per policy
    and budget share, ranking quality, and the learned order with 1/20 of the budget against the
    whole search; with ``retimed`` (a folder from ``graphopt policy retime``) kept entries are
    credited with their independent second timing. Weights trained on fewer features than the
    dataset holds (an older feature set) read the columns they know, by name."""
    table, names, _ = dataset.read(folder)
    ranker = ranker or Ranker.load(weights_path(dataset.target_of(table)))
    second = dataset.read(retimed)[0] if retimed is not None else None
    graphs = evaluate.held_out(evaluate.pools(table, second), archs or ranker.held_out or corpus.HELD_OUT)
    graphs = read_by(ranker, graphs, names)
    if not graphs:
        raise ValueError(f"no held-out graphs in {folder}")
    return _compared(graphs, ranker, shares) | {"target": dataset.target_of(table)}


def gain(folder) -> dict:
    """What a dataset holds to learn, whatever its target (with or without weights): graphs and
    candidates, how many the target's report let through to timing, how many were kept (faster by
    the engine's margin with confidence), and the whole search's geometric-mean speedup."""
    table, _, _ = dataset.read(folder)
    rows = table.select(["graph_id", "rejected", "ratio"]).to_pylist()
    best: dict[str, float] = {}
    for row in rows:
        best[row["graph_id"]] = min(best.get(row["graph_id"], 1.0), dataset.label_ratio(row))
    reasons = [row["rejected"] for row in rows if row["rejected"]]
    return {
        "target": dataset.target_of(table),
        "graphs": len(best),
        "candidates": len(rows),
        "timed": sum(1 for row in rows if row["ratio"] is not None),
        "kept": sum(1 for row in rows if dataset.label_ratio(row) < 1.0),
        "graphs_gaining": sum(1 for ratio in best.values() if ratio < 1.0),
        "search_speedup": math.exp(-sum(math.log(r) for r in best.values()) / max(len(best), 1)),
        "top_rejection": max(set(reasons), key=reasons.count) if reasons else None,
    }


def read_by(ranker: Ranker, graphs: list, names: list[str]) -> list:
    """``graphs`` (pools whose feature columns are ``names``) with the columns ``ranker`` reads,
    in its order."""
    missing = [name for name in ranker.feature_names if name not in names]
    if missing:
        raise ValueError(
            f"the weights were trained on features the dataset does not hold ({', '.join(missing[:3])}): "
            "featurize the dataset again (graphopt policy featurize) or train weights on it"
        )
    return _columns(graphs, [names.index(name) for name in ranker.feature_names])


def _trainable(graphs: list, names: list[str], rule_names: bool) -> tuple[list, list[str]]:
    """(graphs, names) with only the features a ranker is trained on: all of them with
    ``rule_names``, else the target-neutral ones (features.rule_named)."""
    columns = [i for i, name in enumerate(names) if rule_names or not rule_named(name)]
    return _columns(graphs, columns), [names[i] for i in columns]


def _columns(graphs: list, columns: list[int]) -> list:
    return [dataclasses.replace(g, features=g.features[:, columns]) for g in graphs]


def _compared(graphs, ranker: Ranker, shares) -> dict:
    speedups = evaluate.compare(graphs, ranker, tuple(sorted(set(shares) | {TWENTIETH, 1.0})))
    learned, search = speedups["learned"][TWENTIETH], speedups["search"][1.0]
    reached = {
        "learned": learned,
        "search": search,
        "speedup_share": learned / search,
        "gain_share": math.log(learned) / math.log(search) if search > 1 else 1.0,
    }
    return {
        "graphs": len(graphs),
        "retimed": sum(g.values is not None for g in graphs),
        "archs": sorted({g.arch for g in graphs}),
        "speedups": speedups,
        "quality": evaluate.ranking_quality(graphs, ranker),
        "twentieth": reached,
    }


def leave_one_out(folder, seed: int = 0, rule_names: bool = False) -> dict[str, dict]:
    """For each architecture of the dataset: a ranker trained on every other one (the held-out
    architectures included: none of them is judged here but the one left out), judged on it;
    trained on the features ``train_from`` would use."""
    table, names, digest = dataset.read(folder)
    graphs, names = _trainable(evaluate.pools(table), names, rule_names)
    result = {}
    for arch in sorted({g.arch for g in graphs}):
        rest = [g for g in graphs if g.arch != arch]
        if not rest:
            continue
        features = np.concatenate([g.features for g in rest])
        ratios = np.concatenate([g.ratios for g in rest])
        groups = [g.graph_id for g in rest for _ in range(len(g.ratios))]
        ranker = train(features, ratios, groups, names, digest, (arch,), seed)
        result[arch] = _compared([g for g in graphs if g.arch == arch], ranker, evaluate.SHARES)
    return result
