"""StableHLO rules as the engine sees them (graphopt.core.protocols.RuleSet): sites found by a dry
run over the entry function, rewrites applied to a fixpoint on a freshly parsed module
(core/rules.py: the rule shape, MAX_SWEEPS).

A site is anchored at the matched op's place among the function's ops (``dot_general#12``) and
its signature is the op's operand types, so the same rule on the same shapes in every layer is
one site class. A rewrite parses the module's text, marks the ops of single sites left out,
applies one match at a time of the chosen rules (found afresh after each rewrite: a rewrite may
erase an op another match bound, or expose a new match) until none is left, verifies the module
(MLIR's verifier: types, dominance) and prints it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from graphopt.core.errors import GraphoptError
from graphopt.core.protocols import Candidate, NearMiss, Site
from graphopt.core.rules import by_family
from graphopt.formats.stablehlo.files import StableHloModule
from graphopt.formats.stablehlo.module import entry_function, parsed, walk

MAX_REWRITES = 10_000  # a guard: every rewrite removes its match, so the loop ends long before
LEFT_OUT = "graphopt.left_out"  # a discardable attribute on the ops of single sites left out, while rewriting


def _matches(module, rules, ops: bool = False) -> list[tuple]:
    """(rule, what its match returned, the site[, the op]) for every op of the entry function a
    rule's pattern is found at: bindings (a site) or a reason (a near miss)."""
    found = []
    for index, op in enumerate(walk(entry_function(module).operation)):
        for rule in rules:
            result = rule.match(op)
            if result is not None:
                anchor = f"{op.name.removeprefix('stablehlo.')}#{index}"
                signature = " ".join(str(value.type) for value in op.operands)
                site = Site(rule.name, "", anchor, (anchor,), signature, (op.name,))
                found.append((rule, result, site, op) if ops else (rule, result, site))
    return found


def _found(module, rules) -> list[tuple[object, dict, Site]]:
    return [(rule, result, site) for rule, result, site in _matches(module, rules) if isinstance(result, dict)]


def _next_match(module, rules, excluded):
    """The first match of ``rules`` not left out: by its site class, or by its op's mark."""
    for rule, result, site, op in _matches(module, rules, ops=True):
        if isinstance(result, dict) and site.site_class not in excluded and LEFT_OUT not in op.attributes:
            return rule, result, site
    return None


def _mark_left_out(module, rules, excluded) -> None:
    from jaxlib.mlir import ir

    for _, result, site, op in _matches(module, rules, ops=True):
        if isinstance(result, dict) and site in excluded:
            op.attributes[LEFT_OUT] = ir.UnitAttr.get()


def _unmark(module) -> None:
    for op in walk(module.operation):
        if LEFT_OUT in op.attributes:
            del op.attributes[LEFT_OUT]


@dataclasses.dataclass
class StableHloRules:
    rules: list

    def families(self) -> dict[str, list[str]]:
        return by_family(self.rules)

    def sites(self, graph: StableHloModule) -> list[Site]:
        with parsed(graph.text) as module:
            return [site for _, _, site in _found(module, self.rules)]

    def near_misses(self, graph: StableHloModule, sites: list[Site]) -> list[NearMiss]:
        with parsed(graph.text) as module:
            return [
                NearMiss(rule.name, site.anchor, 1, result)
                for rule, result, site in _matches(module, self.rules)
                if isinstance(result, str)
            ]

    def fixed_input(self, graph: StableHloModule) -> tuple[Candidate | None, list[str]]:
        return None, []

    def rewrite(self, label: str, graph: StableHloModule, rules: Sequence[str], excluded=frozenset()) -> Candidate:
        chosen = [r for r in self.rules if r.name in set(rules)]
        applied: list[Site] = []
        with parsed(graph.text) as module:
            _mark_left_out(module, chosen, excluded)
            for _ in range(MAX_REWRITES):
                found = _next_match(module, chosen, excluded)
                if found is None:
                    break
                rule, match, site = found
                rule.rewrite(module, **match)
                applied.append(site)
            _unmark(module)
            if not module.operation.verify():
                raise GraphoptError(
                    f"a StableHLO rewrite ({', '.join(sorted({s.rule for s in applied}))}) left an invalid module"
                )
            text = str(module.operation.get_asm(enable_debug_info=False))
        return Candidate(label, graph.with_text(text), applied, tuple(r.name for r in chosen), frozenset(excluded))
