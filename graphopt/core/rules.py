"""The rule shape of the FX and StableHLO formats (rules live in passes/<format>/): a name, a
family, a one-line doc, ``match`` and ``rewrite``, pure functions of one node and of the bindings
a match returned.

ONNX rules have the same fields and the same contract, written in onnxscript's pattern language
(graphopt/formats/onnx/rules.py: pattern, check -> MatchResult with a reason, replacement).

- ``match(node)`` reads only: it returns the bindings of a match (a dict of the nodes and
  numbers the replacement needs), a reason (a string: the pattern is there but its check
  refuses it, a near miss), or None (the pattern is not there).
- ``rewrite(graph, **bindings)`` builds the replacement from the bindings alone: nothing is
  carried from match to rewrite on an object or in a closure. For FX it returns the node that
  replaces the matched one (the driver hands over its uses and removes what died); for
  StableHLO it replaces the matched op itself.

Each format's driver is its RuleSet (formats/fx/rewrite.py, formats/stablehlo/rules.py): every
rule in registry order over every node, repeated until a sweep changes nothing (a rewrite can
expose a new match) or MAX_SWEEPS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

MAX_SWEEPS = 8


@dataclasses.dataclass(frozen=True)
class NodeRule:
    name: str
    family: str
    doc: str  # one line: what it rewrites into what (the legality notes are the family's docstring)
    match: Callable[[object], dict | str | None]
    rewrite: Callable[..., object]
    preserves_gradients: bool = True  # False: same values, another (sub)gradient somewhere (FX)
    with_freezing: bool = True  # False: Inductor's freezing does this rewrite itself, better (FX)

    @property
    def summary(self) -> str:
        return self.doc

    def __repr__(self) -> str:
        return f"NodeRule({self.name})"


def by_family(rules: list) -> dict[str, list[str]]:
    """Family -> the names of ``rules`` in it, in the order given: what a RuleSet's ``families()`` returns."""
    found: dict[str, list[str]] = {}
    for rule in rules:
        found.setdefault(rule.family, []).append(rule.name)
    return found
