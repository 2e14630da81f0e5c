"""``graphopt policy eval``: the learned order against greedy, random order and the measured
search, at equal budget, on graphs whose architectures never trained it (CompilerGym-style).

Every pool entry of a held-out graph was judged once during collection, with what judging it
cost. A policy is an order over the pool; a run with budget B judges entries in that order
until their recorded costs exceed B (the first is always judged) and keeps the best accepted
one, so each policy's result at each budget is read from the same measurements. Budgets are
shares of what judging the graph's whole pool cost (1.0: the measured search run to the end),
so small and large graphs weigh alike:

- greedy: the greedy entry only (every rule to a fixpoint);
- random: the pool in random order (the mean over several shuffles);
- search: the pool in the measured search's own order (greedy, family subsets, site classes);
- learned: the pool in the ranker's order.

The result is the geometric-mean speedup over the original at ORT's defaults (ENABLE_ALL). A
run keeps the best entry by its own timing; with a retimed dataset (graphopt/policies/training/retime.py)
the kept entry is credited with its second, independent timing instead, so that no policy gains
from the luck of the timing it chose by (the winner's curse, worst for the whole search).
Ranking quality: Kendall's tau between predicted scores and measured gains per graph, and the
top-1 / top-5 slowdown (best ratio among the first k predicted over the best in the pool).
"""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np

from graphopt.policies.training.dataset import label_ratio

SHARES = (0.05, 0.1, 0.25, 0.5, 1.0)  # budgets, as shares of the whole pool's judging cost
SHUFFLES = 20


@dataclasses.dataclass
class Pool:
    """One graph's judged pool, in pool order."""

    graph_id: str
    arch: str
    features: np.ndarray
    ratios: np.ndarray  # label ratios: 1.0 unless the entry was accepted
    seconds: np.ndarray  # what judging each entry cost
    values: np.ndarray | None = None  # what keeping each entry is credited with (default: its ratio)

    def value(self, index: int) -> float:
        return float(self.ratios[index] if self.values is None else self.values[index])


def pools(table, retimed=None) -> list[Pool]:
    """The dataset's graphs as pools (rows sorted by their pool position); with ``retimed`` (a
    table of retimed rows) accepted entries are credited with their retimed ratio."""
    by_graph: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        by_graph.setdefault(row["graph_id"], []).append(row)
    result = []
    for graph_id, rows in sorted(by_graph.items()):
        rows.sort(key=lambda r: r["position"])
        result.append(
            Pool(
                graph_id,
                rows[0]["arch"],
                np.asarray([r["features"] for r in rows], dtype=np.float32),
                np.asarray([label_ratio(r) for r in rows]),
                np.asarray([r["seconds"] for r in rows]),
            )
        )
    if retimed is None:
        return result
    second = {(r["graph_id"], r["position"]): r["ratio"] for r in retimed.to_pylist()}
    return [credited(pool, second) for pool in result]


def credited(pool: Pool, second: dict) -> Pool:
    """``pool`` with each accepted entry's value taken from ``second`` ((graph id, position) ->
    retimed ratio); a graph whose accepted entries were not all retimed keeps its first timings
    (mixing the two would favour neither fairly)."""
    accepted = [i for i, ratio in enumerate(pool.ratios) if ratio < 1.0]
    if not all((pool.graph_id, i) in second for i in accepted):
        return pool
    values = np.ones(len(pool.ratios))
    for i in accepted:
        values[i] = second[(pool.graph_id, i)]
    return dataclasses.replace(pool, values=values)


def outcome(pool: Pool, order, budget_s: float) -> float:
    """What a run that judges ``order`` within ``budget_s`` is credited with: the value of the
    entry with the best accepted ratio among those judged, 1.0 when none was accepted."""
    spent, best = 0.0, None
    for count, index in enumerate(order):
        if count and spent + pool.seconds[index] > budget_s:
            break
        spent += pool.seconds[index]
        if pool.ratios[index] < 1.0 and (best is None or pool.ratios[index] < pool.ratios[best]):
            best = index
    return 1.0 if best is None else pool.value(best)


def orders(pool: Pool, ranker=None, seed: int = 0) -> dict[str, list[list[int]]]:
    """Each policy's order(s) over the pool."""
    n = len(pool.ratios)
    rng = random.Random(seed)
    shuffles = [rng.sample(range(n), n) for _ in range(SHUFFLES)]
    result = {"greedy": [[0]], "random": shuffles, "search": [list(range(n))]}
    if ranker is not None:
        result["learned"] = [list(np.argsort(-ranker.scores(pool.features), kind="stable"))]
    return result


def compare(graphs: list[Pool], ranker=None, shares=SHARES) -> dict[str, dict[float, float]]:
    """policy -> budget share -> geometric-mean speedup over the original."""
    logs: dict[str, dict[float, list[float]]] = {}
    for pool in graphs:
        for policy, policy_orders in orders(pool, ranker).items():
            for share in shares:
                ratios = [outcome(pool, order, share * float(pool.seconds.sum())) for order in policy_orders]
                logs.setdefault(policy, {}).setdefault(share, []).append(float(np.mean(np.log(ratios))))
    return {
        policy: {b: math.exp(-float(np.mean(v))) for b, v in per_budget.items()} for policy, per_budget in logs.items()
    }


def ranking_quality(graphs: list[Pool], ranker) -> dict[str, float]:
    """Mean Kendall tau (graphs whose pool is not all-equal), mean top-1 and top-5 slowdown."""
    from scipy.stats import kendalltau

    taus, top1, top5 = [], [], []
    for pool in graphs:
        scores = ranker.scores(pool.features)
        gains = 1.0 - pool.ratios
        if len(set(gains)) > 1 and len(set(scores)) > 1:
            taus.append(kendalltau(scores, gains).statistic)
        ranked = np.argsort(-scores, kind="stable")
        best = pool.ratios.min()
        top1.append(pool.ratios[ranked[0]] / best)
        top5.append(pool.ratios[ranked[:5]].min() / best)
    return {
        "kendall_tau": float(np.mean(taus)) if taus else float("nan"),
        "graphs_ranked": len(taus),
        "top1_slowdown": float(np.mean(top1)),
        "top5_slowdown": float(np.mean(top5)),
    }


def held_out(graphs: list[Pool], archs) -> list[Pool]:
    return [g for g in graphs if g.arch in set(archs)]


def training(graphs: list[Pool], archs) -> list[Pool]:
    return [g for g in graphs if g.arch not in set(archs)]
