"""``graphopt policy featurize``: a dataset's feature vectors read again with today's features,
its measurements kept.

Timings are what a dataset costs (hours of a quiet machine); features are cheap to read but
change as the policy learns to read graphs better. Each graph is exported again from its spec
(the corpus is deterministic), its original compiled for the target's fusion report, its greedy
rewrite and pool made, and every stored row gets the features of the pool entry with its label.
Nothing is timed. A graph is skipped, and says why, when it is no longer the graph that was
measured: another fingerprint, or a greedy rewrite that applies other sites (the rules changed
since), since its labels would then describe other candidates.
"""

from __future__ import annotations

import tempfile

from graphopt.policies.features import features, vector
from graphopt.policies.pool import pool
from graphopt.policies.training import dataset
from graphopt.policies.training.collect import prepared, run_jobs, write_results
from graphopt.policies.training.corpus import Spec


class NotTheGraphMeasured(Exception):
    """The spec no longer exports, or no longer rewrites, into the graph its rows measured."""


def featurize_one(spec: Spec, rows: list[dict], target: str):
    """(graph id, ``rows`` with today's features, feature names, schema digest)."""
    with tempfile.TemporaryDirectory(prefix="graphopt-featurize-") as folder:
        context = prepared(spec, folder, 0.0, target)
        if context.fingerprint != rows[0]["fingerprint"]:
            raise NotTheGraphMeasured("the export's fingerprint changed")
        if context.greedy is None or _sites(context.greedy.applied) != _stored_greedy_sites(rows):
            raise NotTheGraphMeasured("the greedy rewrite applies other sites than those measured")
        entries = {entry.label: entry for entry in pool(context.greedy, context.rules)}
        kept = []
        for row in rows:
            entry = entries.get(row["entry"])
            if entry is not None:
                named = features(entry, context.greedy.applied, context.facts)
                kept.append(row | {"features": vector(named, context.schema)})
    return spec.graph_id, kept, context.schema.names, context.schema.digest


def _sites(sites) -> set[tuple[str, str]]:
    return {(site.rule, site.anchor) for site in sites}


def _stored_greedy_sites(rows: list[dict]) -> set[tuple[str, str]] | None:
    greedy = next((row for row in rows if row["kind"] == "greedy"), None)
    return None if greedy is None else {(site["rule"], site["anchor"]) for site in greedy["sites"]}


def featurize(data, out, ray_address: str | None = None, progress=print) -> list[str]:
    """Every graph of dataset ``data`` with today's features into ``out`` (graphs already there
    are skipped: a rerun resumes)."""
    table, _, _ = dataset.read(data)
    target = dataset.target_of(table)
    by_graph: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        by_graph.setdefault(row["graph_id"], []).append(row)
    done = dataset.done(out)
    specs = {graph_id: Spec.from_json(rows[0]["spec"]) for graph_id, rows in by_graph.items() if graph_id not in done}
    jobs = [(spec, featurize_one, (spec, by_graph[graph_id], target)) for graph_id, spec in sorted(specs.items())]
    return write_results(run_jobs(jobs, ray_address), out, progress)
