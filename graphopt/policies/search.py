"""Policies propose candidates; the judge (core/judge.py) judges them with the target.

A policy sees the graph only through its format's RuleSet (families, sites, rewrites) and what
has been measured so far (the evaluation log); it never compiles or times anything itself. That
keeps the interface the learned policy implements later the same as these two:

- ``Greedy``: every rule to a fixpoint, in registry order. One candidate.
- ``FamilySearch``: the greedy candidate, then all families but one, then each family alone, so
  that a family whose rewrite blocks a more valuable fusion downstream (or makes the compiler
  fire a fusion that costs time: attention on a GQA decoder, say) is found by measurement rather
  than by a fixed priority. "All but one" comes before "only one" because the budget usually ends
  the search early and dropping one harmful family from the greedy result is the likelier win.
  Families that do not fire on the way to the greedy fixpoint are left out, and candidates
  identical to one already proposed are skipped. Then site classes: starting from the best
  candidate measured so far, one class of sites at a time is left out (one rule on values of one
  shape: in a transformer, that rule in every layer), largest class first.

The learned policy (graphopt/policies/learned.py) proposes the same candidates in a predicted order.
``context`` (protocols.SearchContext: the inputs, the original's fusion report, the target) is
what a policy may read besides the graph; these two do not need it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

from graphopt.core.protocols import Candidate, Graph, Prediction, RuleSet, Site


class Greedy:
    name = "greedy"

    def __init__(self) -> None:
        self.explanation: list[Prediction] = []  # greedy predicts nothing

    def propose(self, graph: Graph, rules: RuleSet, log=None, context=None) -> Iterator[Candidate]:
        candidate = rules.rewrite("all rules", graph, _all(rules))
        if candidate.applied:
            candidate.planned = 1
            yield candidate


class FamilySearch:
    name = "search"

    def __init__(self, site_classes: bool = True):
        self.explanation: list[Prediction] = []  # the search predicts nothing: it measures
        self.site_classes = site_classes  # refine the best candidate one site class at a time

    def propose(self, graph: Graph, rules: RuleSet, log=None, context=None) -> Iterator[Candidate]:
        greedy = next(Greedy().propose(graph, rules), None)
        if greedy is not None:
            yield from self.propose_from(greedy, graph, rules, log)

    def propose_from(self, greedy: Candidate, graph: Graph, rules: RuleSet, log=None) -> Iterator[Candidate]:
        """The search after its first step, ``greedy`` (every rule to a fixpoint) already made."""
        subsets = family_subsets(rules, fired_families(greedy.applied, rules))
        greedy.planned = 1 + len(subsets) + len({s.site_class for s in greedy.applied})  # an estimate
        yield greedy
        seen: set[tuple[Site, ...]] = {_key(greedy.applied)}
        for subset in subsets:
            candidate = rules.rewrite(subset.label, graph, subset.rules)
            if candidate.applied and _key(candidate.applied) not in seen:
                seen.add(_key(candidate.applied))
                candidate.planned = greedy.planned
                yield candidate
        if log is not None and self.site_classes:
            yield from self.refine(graph, rules, log, seen)

    def refine(self, graph: Graph, rules: RuleSet, log, seen) -> Iterator[Candidate]:
        """From the best candidate measured so far, one site class left out at a time (largest
        first), skipping applied-site sets in ``seen``; until nothing is left to try."""
        tried: set[tuple[str, tuple[str, str]]] = set()
        while True:
            best = log.best()
            if best is None:
                return
            best = best.candidate
            classes = Counter(site.site_class for site in best.applied)
            untried = [c for c, _ in classes.most_common() if (best.label, c) not in tried]
            if not untried:
                return
            site_class = untried[0]
            tried.add((best.label, site_class))
            label = without_label(best.label, site_class, classes)
            candidate = rules.rewrite(label, graph, best.rules, best.excluded | {site_class})
            if candidate.applied and _key(candidate.applied) not in seen:
                seen.add(_key(candidate.applied))
                candidate.planned = len(log) + len(untried)
                yield candidate


def without_label(base: str, site_class: tuple[str, str], classes) -> str:
    """The one label of ``base`` with one site class left out, for the search and the learned
    pool alike: the values' types and shapes are named only when the rule has several classes."""
    rule_classes = sum(1 for c in classes if c[0] == site_class[0])
    where = f" on {site_class[1] or 'constants'}" if rule_classes > 1 else ""
    return f"{base}, without {site_class[0]}{where}"


def _all(rules: RuleSet) -> list[str]:
    return [name for names in rules.families().values() for name in names]


class FamilySubset(NamedTuple):
    label: str
    kind: str  # "all-but" (every rule but the family's) or "only" (the family's rules alone)
    family: str
    rules: tuple[str, ...]


def family_subsets(rules: RuleSet, families: list[str]) -> list[FamilySubset]:
    """Each of ``families`` left out, then each alone (none when fewer than two fired)."""
    if len(families) < 2:
        return []
    by_family = rules.families()
    everything = _all(rules)
    but = [
        FamilySubset(f"all but {f}", "all-but", f, tuple(n for n in everything if n not in by_family[f]))
        for f in families
    ]
    only = [FamilySubset(f"only {f}", "only", f, tuple(by_family[f])) for f in families]
    return but + only


def fired_families(applied: list[Site], rules: RuleSet) -> list[str]:
    """The families of the rules that fired on the way to a fixpoint, in registry order: not
    only those with a site in the input, since a stage family (gqa) matches only what an earlier
    one (attention) wrote."""
    fired = {site.rule for site in applied}
    return [family for family, names in rules.families().items() if fired & set(names)]


def _key(applied: list[Site]) -> tuple[Site, ...]:
    return tuple(sorted(applied, key=repr))


def greedy_policy(fmt=None, target=None) -> Greedy:
    return Greedy()


def search_policy(fmt=None, target=None) -> FamilySearch:
    return FamilySearch()
