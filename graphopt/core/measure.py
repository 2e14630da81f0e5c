"""Timing on a noisy shared machine: interleaved A/B runs and a bootstrap interval on the ratio.

Timing A for a while and then B for a while measures the machine's mood as much as the models:
a neighbour's job that starts halfway through makes B look slower. So A and B alternate, with
the order flipped every round (AB, BA, AB...) to cancel any first-runner effect, and the statistic
is the ratio within each round, which a slow drift changes little. The verdict uses the median of
those ratios with a 95% percentile-bootstrap interval: "faster with confidence" means the whole
interval lies below 1.

Rounds cannot remove one more effect: two sessions of the very same model differ by up to about
2% on this machine (measured A/A on BERT-base, fresh session pairs: -2.0% to +0.1%), from where
their buffers and threads happen to land. So A and B may each be given as several sessions,
created in the order A1 B1 B2 A2 and used in turn (round i times pair i mod k), which averages
that effect out instead of crediting it to the candidate.

When memory holds only one compilation at a time (a model of billions of parameters), the sides
alternate in blocks instead (``in_blocks``): each compilation is made, warmed, timed for a block of
runs and let go before the next is made, in the order A B B A (which cancels a linear drift), and
run i of a B block is paired with run i of the A block beside it.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable

import numpy as np

INTERIM_CONFIDENCE = 0.999


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Latency of A (baseline) and B (candidate); ``ratio`` is B/A (below 1: B is faster)."""

    baseline_s: float
    candidate_s: float
    ratio: float
    ci_low: float
    ci_high: float
    rounds: int

    @property
    def speedup(self) -> float:
        return 1.0 / self.ratio

    def candidate_faster(self, min_gain: float = 0.0) -> bool:
        """The whole interval lies below ``1 - min_gain``."""
        return self.ci_high < 1.0 - min_gain

    def candidate_slower(self) -> bool:
        return self.ci_low > 1.0


def bootstrap_ci(values, statistic=np.median, confidence=0.95, resamples=2000, seed=0) -> tuple[float, float]:
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples = rng.choice(data, size=(resamples, len(data)), replace=True)
    stats = statistic(samples, axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


FLOOR_ROUNDS = 8  # the fewest rounds a ratio and its interval rest on
SLOW_RUN_S = 0.05  # a run this slow is warm after two rounds


def time_once(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def alternate(baselines: list[Callable[[], object]], candidates: list[Callable[[], object]], warmup: int = 5):
    """Warm every session up (two rounds for runs slower than SLOW_RUN_S, else ``warmup``), then
    yield (baseline seconds, candidate seconds) one round at a time.

    Round i times session pair i mod k, and the order within a round flips every k rounds.
    """
    for done in range(warmup):
        slowest = max(time_once(run) for run in baselines + candidates)
        if done >= 1 and slowest > SLOW_RUN_S:  # caches and pools are warm after a round; slow runs need no more
            break
    round_index = 0
    while True:
        run_a = baselines[round_index % len(baselines)]
        run_b = candidates[round_index % len(candidates)]
        if (round_index // len(baselines)) % 2 == 0:
            a, b = time_once(run_a), time_once(run_b)
        else:
            b, a = time_once(run_b), time_once(run_a)
        yield a, b
        round_index += 1


def interleaved(
    baseline: Callable[[], object] | list[Callable[[], object]],
    candidate: Callable[[], object] | list[Callable[[], object]],
    *,
    min_rounds: int = 30,
    max_rounds: int | None = 20000,
    budget_s: float = 10.0,
    warmup: int = 5,
    check_every: int = 100,
    decide_at: float = 1.0,
    confidence: float = 0.95,
) -> Comparison:
    """Alternate baseline and candidate until the verdict is clear, ``max_rounds`` (None: no
    limit) or ``budget_s``.

    ``min_rounds`` is lowered (to no fewer than FLOOR_ROUNDS) when the first round shows that
    many would not fit in ``budget_s``: a 150 ms graph does not get 9 s of timing on a 3 s budget.

    Every ``check_every`` rounds (past ``min_rounds``) the interval is recomputed, and timing
    stops early once it lies wholly on one side of ``decide_at`` (1, or the ratio a decision
    needs). Looking repeatedly and stopping at the first clear look inflates the false-positive
    rate, so interim looks use a 99.9% interval (an alpha-spending rule in the spirit of
    Haybittle-Peto); the returned interval uses ``confidence`` (95%).
    """
    baselines = baseline if isinstance(baseline, list) else [baseline]
    candidates = candidate if isinstance(candidate, list) else [candidate]
    a_times, b_times = [], []
    rounds = alternate(baselines, candidates, warmup)
    deadline = time.perf_counter() + budget_s
    for a, b in rounds:
        if not a_times:  # slow graphs: as many rounds as the budget holds, never below FLOOR_ROUNDS
            min_rounds = min(min_rounds, max(FLOOR_ROUNDS, int(budget_s / max(a + b, 1e-9))))
        a_times.append(a)
        b_times.append(b)
        count = len(a_times)
        if max_rounds is not None and count >= max_rounds:
            break
        if count < min_rounds:
            continue
        if time.perf_counter() > deadline:
            break
        if count % check_every == 0:
            low, high = bootstrap_ci(
                np.asarray(b_times) / np.asarray(a_times), confidence=INTERIM_CONFIDENCE, resamples=1000
            )
            if high < decide_at or low > decide_at:
                break
    return compare_samples(a_times, b_times, confidence=confidence)


def compare_samples(a_times, b_times, confidence: float = 0.95) -> Comparison:
    ratios = np.asarray(b_times) / np.asarray(a_times)
    low, high = bootstrap_ci(ratios, confidence=confidence)
    return Comparison(
        baseline_s=statistics.median(a_times),
        candidate_s=statistics.median(b_times),
        ratio=float(np.median(ratios)),
        ci_low=low,
        ci_high=high,
        rounds=len(ratios),
    )


BLOCK_ORDER = "ABBA"  # a linear drift over the four blocks weighs on both sides alike
BLOCK_WARMUP = 1  # untimed runs first in each block: a session's first run allocates its buffers


def in_blocks(
    open_baseline: Callable[[], Callable[[], object]],
    open_candidate: Callable[[], Callable[[], object]],
    *,
    budget_s: float = 10.0,
    blocks: int = 4,
    confidence: float = 0.95,
) -> Comparison:
    """B's latency over A's with one compilation alive at a time. ``open_*`` make a fresh
    compilation and return its run function, which is dropped (the compilation with it) before
    the next is made. ``blocks`` blocks in the order A B B A A B B A ...; the timing budget is
    shared equally among them, with at least FLOOR_ROUNDS // 2 runs a block so that the pairs
    (run i of a B block with run i of the A block beside it) number at least FLOOR_ROUNDS."""
    opens = {"A": open_baseline, "B": open_candidate}
    timed: dict[str, list[list[float]]] = {"A": [], "B": []}
    runs = None
    for side in (BLOCK_ORDER * blocks)[:blocks]:
        block = _timed_block(opens[side], runs, budget_s / blocks)
        runs = len(block)
        timed[side].append(block)
    return compare_blocks(list(zip(timed["A"], timed["B"])), confidence=confidence)


def compare_blocks(pairs: list[tuple[list[float], list[float]]], confidence: float = 0.95) -> Comparison:
    """B over A from blocks timed on separate compilations, paired (an A block with the B block
    beside it). Two compilations of one graph differ by more than their runs vary (where buffers
    and threads land: an A/A timing of a 1 B decoder read 1.046 [1.008, 1.072] with runs pooled),
    so the interval resamples the pairs of blocks first and the runs within each second (a
    cluster bootstrap): with blocks that disagree it is as wide as their disagreement."""
    ratios = [np.asarray(b) / np.asarray(a) for a, b in pairs]
    low, high = _cluster_bootstrap(ratios, confidence)
    a_times = [t for a, _ in pairs for t in a]
    b_times = [t for _, b in pairs for t in b]
    pooled = np.concatenate(ratios)
    return Comparison(
        baseline_s=statistics.median(a_times),
        candidate_s=statistics.median(b_times),
        ratio=float(np.median(pooled)),
        ci_low=low,
        ci_high=high,
        rounds=len(pooled),
    )


def _cluster_bootstrap(clusters: list[np.ndarray], confidence: float, resamples: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for i in range(resamples):
        chosen = rng.integers(len(clusters), size=len(clusters))
        stats[i] = np.median(np.concatenate([rng.choice(clusters[c], size=len(clusters[c])) for c in chosen]))
    tail = (1 - confidence) / 2
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


def _timed_block(open_side: Callable[[], Callable[[], object]], runs: int | None, block_s: float) -> list[float]:
    """``runs`` timed runs of a fresh compilation (when None, as many as ``block_s`` holds, from
    the first timed run), after BLOCK_WARMUP untimed ones; the compilation is let go on return."""
    run = open_side()
    for _ in range(BLOCK_WARMUP):
        run()
    times = [time_once(run)]
    if runs is None:
        runs = max(FLOOR_ROUNDS // 2, int(block_s / max(times[0], 1e-9)))
    times += [time_once(run) for _ in range(runs - 1)]
    del run
    gc.collect()  # the compilation's memory is back before the next block's is taken
    return times
