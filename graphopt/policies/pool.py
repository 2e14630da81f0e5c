"""The candidate pool: every candidate the measured search can propose from a graph's greedy
rewrite, fixed and enumerable, so that collection, training and the learned policy talk about
the same things.

From the greedy candidate (every rule to a fixpoint): all families but one and each family
alone (the families that fired), then the greedy candidate with one site class left out (one
rule on values of one shape: that rule in every layer of a transformer). A pool entry is a
recipe (rules, excluded site classes), not a rewritten graph: its features are read from the
greedy candidate's sites (graphopt/policies/features.py) without rewriting anything, and only the
entries a policy chooses to measure are rewritten.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from graphopt.core.protocols import Candidate, Graph, RuleSet, Site
from graphopt.policies.search import family_subsets, fired_families, without_label


@dataclasses.dataclass(frozen=True)
class Entry:
    """One candidate of the pool: ``rules`` to a fixpoint except at the ``excluded`` site classes."""

    label: str
    kind: str  # "greedy", "all-but", "only", "without-class", "composed"
    rules: tuple[str, ...]
    excluded: frozenset = frozenset()
    family: str = ""  # the family left out ("all-but") or kept ("only")
    site_class: tuple[str, str] | None = None  # the class left out ("without-class")

    def applied_from(self, greedy: list[Site]) -> list[Site]:
        """The greedy candidate's sites this entry keeps: what it will apply, up to the stage
        rules whose sites appear only once an earlier rule has fired (an estimate, read without
        rewriting)."""
        kept = set(self.rules)
        return [s for s in greedy if s.rule in kept and s.site_class not in self.excluded]

    def rewrite(self, graph: Graph, rules: RuleSet) -> Candidate:
        return rules.rewrite(self.label, graph, self.rules, self.excluded)


def pool(greedy: Candidate, rules: RuleSet) -> list[Entry]:
    """The pool for a graph whose greedy candidate is ``greedy``: greedy first, then family
    subsets, then one site class left out at a time (largest class first)."""
    everything = tuple(name for names in rules.families().values() for name in names)
    entries = [Entry("all rules", "greedy", everything)]
    for subset in family_subsets(rules, fired_families(greedy.applied, rules)):
        entries.append(Entry(subset.label, subset.kind, subset.rules, family=subset.family))
    classes = Counter(site.site_class for site in greedy.applied)
    for site_class, _ in classes.most_common():
        entries.append(
            Entry(
                without_label("all rules", site_class, classes),
                "without-class",
                everything,
                frozenset({site_class}),
                site_class=site_class,
            )
        )
    return entries


def composed(entries: list[Entry], scores, rules: RuleSet) -> Entry | None:
    """One candidate outside the pool, composed from the actions predicted to help: greedy without
    every family whose "all-but" entry and every site class whose "without-class" entry scores
    above greedy itself. None when fewer than two actions are predicted to help (one action alone
    is a pool entry already). ``entries[0]`` is greedy, as ``pool`` makes it."""
    above = [entry for entry, score in zip(entries, scores) if score > scores[0]]
    families = {entry.family for entry in above if entry.kind == "all-but"}
    classes = frozenset(entry.site_class for entry in above if entry.kind == "without-class")
    if len(families) + len(classes) < 2:
        return None
    kept = tuple(name for family, names in rules.families().items() if family not in families for name in names)
    left_out = sorted(families) + [f"{rule}{' on ' + where if where else ''}" for rule, where in sorted(classes)]
    return Entry(f"all rules, without {', '.join(left_out)}", "composed", kept, classes)
