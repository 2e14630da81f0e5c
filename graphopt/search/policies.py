"""Policies propose candidate graphs; the loop (search/loop.py) judges them with the target.

A policy sees only rules and sites; it never compiles or times anything itself. That keeps the
interface the learned policy implements later the same as these two:

- ``Greedy``: every rule to a fixpoint, in registry order. One candidate.
- ``FamilySearch``: the greedy candidate, then all families but one, then each family alone, so
  that a family whose rewrite blocks a more valuable fusion downstream (or makes ORT fire a
  fusion that costs time: attention on a GQA decoder, say) is found by measurement rather than
  by a fixed priority. "All but one" comes before "only one" because the budget usually ends
  the search early and dropping one harmful family from the greedy result is the likelier win.
  Families that do not fire on the way to the greedy fixpoint are left out, and candidates
  identical to one already proposed are skipped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import onnx_ir as ir

from graphopt.formats import onnx_format
from graphopt.rules import Rule
from graphopt.search.rewrite import rewrite_to_fixpoint
from graphopt.search.sites import Site


@dataclasses.dataclass
class Candidate:
    label: str
    model: ir.Model
    applied: list[Site]
    rules: tuple[Rule, ...] = ()  # what it was rewritten with, to derive refinements from it
    excluded: frozenset[tuple[str, str]] = frozenset()  # site classes left out (Site.site_class)
    planned: int | None = None  # the policy's estimate, when proposing this one, of how many it will propose


def rewrite_candidate(label: str, model: ir.Model, rules, excluded=frozenset()) -> Candidate:
    """``model`` rewritten to a fixpoint with ``rules``, skipping sites of the ``excluded`` classes."""
    candidate = onnx_format.copy(model)
    choose = (lambda sites: [s for s in sites if s.site_class not in excluded]) if excluded else None
    applied = rewrite_to_fixpoint(candidate, list(rules), choose)
    return Candidate(label, candidate, applied, tuple(rules), frozenset(excluded))


class Greedy:
    name = "greedy"

    def propose(self, model: ir.Model, rules: list[Rule], judged=None) -> Iterator[Candidate]:
        candidate = rewrite_candidate("all rules", model, rules)
        if candidate.applied:
            candidate.planned = 1
            yield candidate


class FamilySearch:
    """Families first (all, all but one, only one), then site classes: starting from the best
    candidate judged so far, leave out one class of sites at a time (one rule on values of one
    shape: in a transformer, that rule in every layer), largest class first.

    ``judged`` is the live list of evaluations the loop appends to; the generator reads it
    between candidates, so each refinement starts from what has been measured so far.
    """

    name = "search"

    def propose(self, model: ir.Model, rules: list[Rule], judged=None) -> Iterator[Candidate]:
        greedy = next(Greedy().propose(model, rules), None)
        if greedy is None:
            return
        families = fired_families(greedy.applied, rules)
        subsets = []
        if len(families) > 1:
            subsets += [(f"all but {f}", [r for r in rules if r.family != f]) for f in families]
            subsets += [(f"only {f}", [r for r in rules if r.family == f]) for f in families]
        # an estimate: the site-class phase refines the best candidate, one class at a time
        greedy.planned = 1 + len(subsets) + len({s.site_class for s in greedy.applied})
        yield greedy
        seen: set[tuple[Site, ...]] = {_key(greedy.applied)}
        for label, subset in subsets:
            candidate = rewrite_candidate(label, model, subset)
            if candidate.applied and _key(candidate.applied) not in seen:
                seen.add(_key(candidate.applied))
                candidate.planned = greedy.planned
                yield candidate
        if judged is not None:
            yield from self._site_classes(model, judged, seen)

    def _site_classes(self, model: ir.Model, judged, seen) -> Iterator[Candidate]:
        tried: set[tuple[int, tuple[str, str]]] = set()
        while True:
            accepted = [e for e in judged if e.accepted]
            if not accepted:
                return
            best = min(accepted, key=lambda e: e.timing.ratio).candidate
            classes = Counter(site.site_class for site in best.applied)
            untried = [c for c, _ in classes.most_common() if (id(best), c) not in tried]
            if not untried:
                return
            site_class = untried[0]
            tried.add((id(best), site_class))
            rule_classes = sum(1 for c in classes if c[0] == site_class[0])
            where = f" on {site_class[1] or 'constants'}" if rule_classes > 1 else ""
            label = f"{best.label}, without {site_class[0]}{where}"
            candidate = rewrite_candidate(label, model, best.rules, best.excluded | {site_class})
            if candidate.applied and _key(candidate.applied) not in seen:
                seen.add(_key(candidate.applied))
                candidate.planned = len(judged) + len(untried)
                yield candidate


def fired_families(applied: list[Site], rules: list[Rule]) -> list[str]:
    """The families of the rules that fired on the way to a fixpoint, in registry order: not
    only those with a site in the input, since a stage family (gqa) matches only what an earlier
    one (attention) wrote."""
    fired = {site.rule for site in applied}
    return list(dict.fromkeys(r.family for r in rules if r.name in fired))


def _key(applied: list[Site]) -> tuple[Site, ...]:
    return tuple(sorted(applied, key=repr))


POLICIES = {"greedy": Greedy, "search": FamilySearch}
