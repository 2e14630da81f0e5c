"""``graphopt policy retime``: time the entries a run could keep once more, independently, so
that evaluation credits each policy with a measurement it did not choose by.

A run keeps the entry whose own timing was best. Among many noisy timings the smallest is the
luckiest (the winner's curse): crediting the whole search with the minimum of 8-21 timings
flatters it, and flatters any policy in proportion to how many entries it judged. Retiming
every accepted entry of a graph on a fresh export and fresh compilations, for a fixed time with
no early stop, gives each entry a second ratio measured apart from the first; evaluation then
chooses by the first and credits the second (cross-fitting, as in double machine learning).

The rows go to a folder of their own with the dataset's schema (graphopt/policies/training/dataset.py),
one file per graph; ``graphopt policy eval DATA --retimed FOLDER`` reads them. A graph whose
export no longer has the fingerprint it was collected with is skipped (it is another graph).
"""

from __future__ import annotations

import tempfile
import time

from graphopt.policies.features import features, vector
from graphopt.policies.pool import pool
from graphopt.policies.training import dataset
from graphopt.policies.training.collect import TARGET, _Context, _row, prepared, run_jobs, write_results
from graphopt.policies.training.corpus import Spec

RETIME_S = 3.0  # per entry, every round kept (no early stop: the interval is what we want)


def retime_one(spec: Spec, positions: list[int], fingerprint: str, measure_s: float = RETIME_S, target=TARGET):
    """(graph id, rows, feature names, schema digest) for the pool ``positions`` of ``spec`` on
    ``target``; no rows when the graph is not the one collected."""
    with tempfile.TemporaryDirectory(prefix="graphopt-retime-") as folder:
        context = prepared(spec, folder, measure_s, target)
        if context.greedy is None or context.fingerprint != fingerprint:
            return spec.graph_id, [], context.schema.names, context.schema.digest
        entries = pool(context.greedy, context.rules)
        rows = [_retimed(context, position, entries[position]) for position in positions if position < len(entries)]
    return spec.graph_id, rows, context.schema.names, context.schema.digest


def _retimed(context: _Context, position: int, entry) -> dict:
    from graphopt.core import harness
    from graphopt.core.evaluation_log import Evaluation

    started = time.monotonic()
    candidate = context.greedy if entry.kind == "greedy" else entry.rewrite(context.prepared, context.rules)
    key = tuple(sorted(map(repr, candidate.applied)))
    if key not in context.seen:  # an entry with the same sites as one already retimed is the same graph
        evaluation = context.seen[key] = Evaluation(candidate)
        evaluation.report = context.target.compile(candidate.graph).report
        evaluation.timing = harness.time_pair(
            (context.target, context.baseline.graph),
            (context.target, candidate.graph),
            context.baseline.feeds[0],
            context.measure_s,
            min_rounds=10**9,
            check_every=10**9,
        )
    named = features(entry, context.greedy.applied, context.facts)
    return _row(context, position, entry, context.seen[key], vector(named, context.schema), time.monotonic() - started)


def plan(table, archs) -> list[tuple[Spec, list[int], str]]:
    """For each graph of ``archs``: (spec, the positions of its accepted entries, fingerprint)."""
    by_graph: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        if row["arch"] in archs and dataset.label_ratio(row) < 1.0:
            by_graph.setdefault(row["graph_id"], []).append(row)
    return [
        (Spec.from_json(rows[0]["spec"]), sorted(r["position"] for r in rows), rows[0]["fingerprint"])
        for _, rows in sorted(by_graph.items())
    ]


def retime(data, out, archs, measure_s: float = RETIME_S, ray_address: str | None = None, progress=print) -> list[str]:
    """Retime the accepted entries of the graphs of ``archs`` in dataset ``data`` into ``out``
    (graphs already there are skipped: a rerun resumes)."""
    table, _, _ = dataset.read(data)
    target = dataset.target_of(table)
    jobs = [
        (spec, retime_one, (spec, positions, fingerprint, measure_s, target))
        for spec, positions, fingerprint in plan(table, set(archs))
        if spec.graph_id not in dataset.done(out)
    ]
    return write_results(run_jobs(jobs, ray_address), out, progress)
