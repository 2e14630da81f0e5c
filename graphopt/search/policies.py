"""Policies propose candidate graphs; the loop (search/loop.py) judges them with the target.

A policy sees only rules and sites; it never compiles or times anything itself. That keeps the
interface the learned policy implements later the same as these two:

- ``Greedy``: every rule to a fixpoint, in registry order. One candidate.
- ``FamilySearch``: the greedy candidate, then each rule family alone, then all families but
  one, so that a family whose rewrite blocks a more valuable fusion downstream (or makes ORT fire
  a fusion that costs time) is found by measurement rather than by a fixed priority. Candidates
  that come out identical to one already proposed are skipped.
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
        families = list(dict.fromkeys(r.family for r in rules))
        subsets = [("all rules", rules)]
        if len(families) > 1:
            subsets += [(f"only {f}", [r for r in rules if r.family == f]) for f in families]
            subsets += [(f"all but {f}", [r for r in rules if r.family != f]) for f in families]
        seen: set[tuple[Site, ...]] = set()
        for label, subset in subsets:
            candidate = onnx_format.copy(model)
            applied = rewrite_to_fixpoint(candidate, subset)
            key = tuple(sorted(applied, key=repr))
            if applied and key not in seen:
                seen.add(key)
                yield Candidate(label, candidate, applied)


POLICIES = {"greedy": Greedy, "search": FamilySearch}
