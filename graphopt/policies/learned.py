"""``--policy learned``: the measured search's candidates, proposed in the order a trained ranker
predicts, so the best is measured first.

The policy proposes the pool (graphopt/policies/pool.py) best-predicted first, then, while the
budget lasts, refines the best measured candidate one site class at a time as the search does.
Beside the pool it scores one candidate of its own (``pool.composed``): greedy without every
family and site class whose removal it predicts to help, so that two decisions predicted apart
can be measured together; it is proposed at its own predicted place.
Acceptance stays measured (equivalent, and faster with confidence): a wrong prediction costs
budget, never a slower or wrong graph. Features are matched to the weights by name: rules added
since the weights were trained only add features the ranker never saw (they are left out of its
input), while weights that need a feature the current rules no longer define (a rule removed or
renamed) are refused. Without usable weights for the target, or when the ranker cannot tell the
entries apart, it is the measured search.
"""

from __future__ import annotations

import logging

import numpy as np

from graphopt.core.protocols import Candidate, Graph, Prediction, RuleSet, Site
from graphopt.policies.features import Schema, features, graph_facts, vector
from graphopt.policies.pool import composed, pool
from graphopt.policies.search import FamilySearch, Greedy

log = logging.getLogger("graphopt.policies")
UNDECIDED_SPREAD = 1e-6  # scores closer than this say nothing about the order


class Learned:
    name = "learned"

    def __init__(self, ranker=None, fmt=None):
        self.ranker, self.fmt = ranker, fmt
        self.explanation: list[Prediction] = []  # the first entries in predicted order, with their drivers

    def propose(self, graph: Graph, rules: RuleSet, log=None, context=None):
        greedy = next(Greedy().propose(graph, rules), None)
        if greedy is None:
            return
        scores, entries = self._scored(graph, rules, greedy, context)
        if scores is None:
            yield from FamilySearch().propose_from(greedy, graph, rules, log)
            return
        seen: set[tuple[Site, ...]] = set()
        for index in np.argsort(-scores, kind="stable"):
            entry = entries[index]
            candidate = greedy if entry.kind == "greedy" else entry.rewrite(graph, rules)
            key = tuple(sorted(candidate.applied, key=repr))
            if candidate.applied and key not in seen:
                seen.add(key)
                candidate.planned = len(entries)
                yield candidate
        if log is not None:
            yield from FamilySearch().refine(graph, rules, log, seen)

    def _scored(self, graph, rules, greedy: Candidate, context):
        """(scores, pool) or (None, pool) when the ranker cannot order this graph's pool."""
        entries = pool(greedy, rules)
        schema = Schema.of(rules.families())
        if self.ranker is None or context is None or self.fmt is None:
            return None, entries
        unknown = set(self.ranker.feature_names) - set(schema.names)
        if unknown:
            log.warning(
                "graphopt: the learned policy's weights need features these rules no longer define (%s); "
                "using the measured search",
                ", ".join(sorted(unknown)[:3]),
            )
            return None, entries
        facts = graph_facts(self.fmt, graph, context.feeds[0], context.report, context.target)
        rows = [vector(features(entry, greedy.applied, facts), self.ranker.feature_names) for entry in entries]
        scores = self.ranker.scores(rows)
        if np.ptp(scores) < UNDECIDED_SPREAD:
            return None, entries
        if (mixed := composed(entries, scores, rules)) is not None:
            entries.append(mixed)
            rows.append(vector(features(mixed, greedy.applied, facts), self.ranker.feature_names))
            scores = np.append(scores, self.ranker.scores(rows[-1:]))
        order = np.argsort(-scores, kind="stable")
        self.explanation = [
            Prediction(entries[i].label, float(scores[i]), tuple(self.ranker.drivers(rows[i]))) for i in order[:3]
        ]
        return scores, entries
