"""Verify and measure, for any Target: are two graphs equivalent, and which is faster?

Equivalence runs both on every verification input and compares each output with verify's
per-dtype tolerances. Timing is measure.py's interleaved A/B on fresh compilations of both sides,
created A1 B1 B2 A2 (two compilations of one graph differ by 1-2% on this machine, from where
their buffers and threads land; alternating creation keeps that from favouring either side), or,
when memory holds only one compilation at a time, in blocks A B B A (measure.in_blocks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphopt.core.measure import Comparison, in_blocks, interleaved
from graphopt.core.protocols import Compiled, Feeds, Graph, Target
from graphopt.core.verify import Equivalence, compare

Side = tuple[Target, Graph]


def paired(a: Side, b: Side, pairs: int = 2) -> tuple[list[Compiled], list[Compiled]]:
    """Fresh compilations of two (target, graph) sides, created A1 B1 B2 A2 ...: the same graph
    under two settings, or two graphs under one."""
    a_runs: list[Compiled] = []
    b_runs: list[Compiled] = []
    for i in range(pairs):
        order = [(a, a_runs), (b, b_runs)]
        for (target, graph), out in order if i % 2 == 0 else reversed(order):
            out.append(target.compile(graph, report=False))
    return a_runs, b_runs


def runner(compiled: Compiled, feeds: Feeds):
    return lambda: compiled.run(feeds)


def time_pair(
    a: Side, b: Side, feeds: Feeds, budget_s: float, decide_at: float | None = None, alive: int = 4, **options
) -> Comparison:
    """B's latency over A's on fresh compilations of each, ``alive`` of them at once (the memory
    plan's width, core/memory.py): 4 or 2 interleaved run by run, 1 in blocks A B B A.
    ``options`` go to ``measure.interleaved`` (``min_rounds``, ``check_every``: a fixed-length
    timing)."""
    if alive == 1:
        return in_blocks(opener(a, feeds), opener(b, feeds), budget_s=budget_s)
    a_runs, b_runs = paired(a, b, alive // 2)
    if decide_at is not None:
        options["decide_at"] = decide_at  # else interleaved's own default (1.0)
    return interleaved(
        [runner(c, feeds) for c in a_runs], [runner(c, feeds) for c in b_runs], budget_s=budget_s, **options
    )


def opener(side: Side, feeds: Feeds):
    """A function that makes a fresh compilation of ``side`` and returns its run function."""
    target, graph = side
    return lambda: runner(target.compile(graph, report=False), feeds)


def equivalence(
    names: list[str], expected: Sequence[list[np.ndarray]], compiled: Compiled, feeds: Sequence[Feeds], tolerances=None
) -> Equivalence:
    """``compiled`` against the expected outputs on every feed, merged into one verdict."""
    result = None
    for feed, outputs in zip(feeds, expected):
        this = compare(names, outputs, compiled.run(feed), tolerances)
        result = this if result is None else result.merged(this)
    return result
