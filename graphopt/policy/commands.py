"""What ``graphopt policy collect | train | eval`` do, as functions (the CLI is a thin layer)."""

from __future__ import annotations

import math

import numpy as np

from graphopt.policy import corpus, dataset, evaluate, weights_path
from graphopt.policy.collect import TARGET, collect
from graphopt.policy.ranker import Ranker, train

TWENTIETH = 1 / 20  # the bar: the learned order with 1/20 of the budget against the whole search


def collect_corpus(folder, count: int, seed: int, archs=None, held_out: bool = True, measure_s: float = 6.0, ray_address=None, progress=print):
    """Sample ``count`` training specs (and, with ``held_out``, a third as many of the held-out
    architectures) and judge every pool entry of each into ``folder``."""
    specs = corpus.sample(count, seed, tuple(archs) if archs else corpus.TRAIN)
    if held_out:
        specs += corpus.sample(max(1, count // 3), seed + 1, corpus.HELD_OUT)
    return collect(specs, folder, measure_s=measure_s, ray_address=ray_address, progress=progress)


def train_from(folder, out=None, held_out=corpus.HELD_OUT, seed: int = 0, ray_address=None) -> tuple[Ranker, str]:
    """Train on every graph of the dataset whose architecture is not held out; save the weights.
    With ``ray_address`` the fit runs as a Ray task (the driver reads the dataset and sends the
    arrays, so workers need no shared disk)."""
    table, names, digest = dataset.read(folder)
    graphs = evaluate.training(evaluate.pools(table), held_out)
    if not graphs:
        raise ValueError(f"no training graphs in {folder} (every architecture is held out)")
    features = np.concatenate([g.features for g in graphs])
    ratios = np.concatenate([g.ratios for g in graphs])
    groups = [g.graph_id for g in graphs for _ in range(len(g.ratios))]
    if ray_address:
        import ray

        ray.init(address=ray_address, ignore_reinit_error=True, log_to_driver=False)
        ranker = ray.get(ray.remote(num_cpus=1)(train).remote(features, ratios, groups, names, digest, held_out, seed))
    else:
        ranker = train(features, ratios, groups, names, digest, held_out, seed)
    path = out or weights_path(TARGET)
    ranker.save(path)
    return ranker, str(path)


def evaluation(folder, ranker: Ranker | None = None, shares=evaluate.SHARES) -> dict:
    """The comparison on the held-out graphs of ``folder``: speedups per policy and budget share,
    ranking quality, and the learned order with 1/20 of the budget against the whole search."""
    table, _, digest = dataset.read(folder)
    ranker = ranker or Ranker.load(weights_path(TARGET))
    if ranker.feature_schema != digest:
        raise ValueError(f"the weights were trained on feature schema {ranker.feature_schema}, the dataset has {digest}")
    graphs = evaluate.held_out(evaluate.pools(table), ranker.held_out or corpus.HELD_OUT)
    if not graphs:
        raise ValueError(f"no held-out graphs in {folder}")
    speedups = evaluate.compare(graphs, ranker, tuple(sorted(set(shares) | {TWENTIETH, 1.0})))
    learned, search = speedups["learned"][TWENTIETH], speedups["search"][1.0]
    reached = {"learned": learned, "search": search, "speedup_share": learned / search,
               "gain_share": math.log(learned) / math.log(search) if search > 1 else 1.0}  # fmt: skip
    return {"graphs": len(graphs), "archs": sorted({g.arch for g in graphs}), "speedups": speedups,
            "quality": evaluate.ranking_quality(graphs, ranker), "twentieth": reached}  # fmt: skip
