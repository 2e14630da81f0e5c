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


class Greedy:
    name = "greedy"

    def propose(self, model: ir.Model, rules: list[Rule]) -> Iterator[Candidate]:
        candidate = onnx_format.copy(model)
        applied = rewrite_to_fixpoint(candidate, rules)
        if applied:
            yield Candidate("all rules", candidate, applied)


class FamilySearch:
    name = "search"

    def propose(self, model: ir.Model, rules: list[Rule]) -> Iterator[Candidate]:
        greedy = next(Greedy().propose(model, rules), None)
        if greedy is None:
            return
        yield greedy
        # The families that fired on the way to the fixpoint, not only those with a site in the
        # input: a stage family (gqa) matches only what an earlier one (attention) wrote.
        fired = {site.rule for site in greedy.applied}
        families = list(dict.fromkeys(r.family for r in rules if r.name in fired))
        subsets = []
        if len(families) > 1:
            subsets += [(f"all but {f}", [r for r in rules if r.family != f]) for f in families]
            subsets += [(f"only {f}", [r for r in rules if r.family == f]) for f in families]
        seen: set[tuple[Site, ...]] = {_key(greedy.applied)}
        for label, subset in subsets:
            candidate = onnx_format.copy(model)
            applied = rewrite_to_fixpoint(candidate, subset)
            if applied and _key(applied) not in seen:
                seen.add(_key(applied))
                yield Candidate(label, candidate, applied)


def _key(applied: list[Site]) -> tuple[Site, ...]:
    return tuple(sorted(applied, key=repr))


POLICIES = {"greedy": Greedy, "search": FamilySearch}
