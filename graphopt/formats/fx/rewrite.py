"""The FX driver: sites of FX rules found by a dry run, and rules applied to a fixpoint.

A rule (graphopt/core/rules.py) matches at one node and returns bindings, a reason or None;
``rewrite(graph, **bindings)`` builds the replacement just before the matched node, which then
hands its uses over and is erased, and whatever died with it is removed. Nodes nothing reads are
skipped, so the inside of a pattern already replaced is never matched again. A site is anchored
at the matched node's name; its signature is the node's dtype and shape (the same rule on the
same shapes in every layer is one site class).
"""

from __future__ import annotations

import torch
import torch.fx

from graphopt.core.protocols import NearMiss, Site
from graphopt.core.rules import MAX_SWEEPS
from graphopt.formats.fx.ops import kind, meta


def _candidates(gm: torch.fx.GraphModule):
    for node in list(gm.graph.nodes):
        if not node._erased and node.op not in ("placeholder", "output", "get_attr") and node.users:
            yield node


def signature(node: torch.fx.Node) -> str:
    example = meta(node)
    if isinstance(example, torch.Tensor):
        return f"{str(example.dtype).removeprefix('torch.')}[{','.join(str(d) for d in example.shape)}]"
    return type(example).__name__


def site_at(rule, node: torch.fx.Node) -> Site:
    return Site(rule.name, "", node.name, (node.name,), signature(node), (kind(node) or node.op,))


def find(gm: torch.fx.GraphModule, rules) -> list[tuple[object, dict, Site]]:
    """(rule, bindings, site) for every node some rule matches, changing nothing."""
    return [
        (rule, found, site_at(rule, node))
        for node in _candidates(gm)
        for rule in rules
        if isinstance(found := rule.match(node), dict)
    ]


def near_misses(gm: torch.fx.GraphModule, rules) -> list[NearMiss]:
    """Where a rule's pattern is found but its check refuses, with the reason."""
    return [
        NearMiss(rule.name, node.name, 1, found)
        for node in _candidates(gm)
        for rule in rules
        if isinstance(found := rule.match(node), str)
    ]


def _apply(gm: torch.fx.GraphModule, rule, node: torch.fx.Node, bindings: dict) -> None:
    with gm.graph.inserting_before(node):
        replacement = rule.rewrite(gm.graph, **bindings)
    if "example_value" in node.meta:
        replacement.meta.setdefault("example_value", node.meta["example_value"])
    node.replace_all_uses_with(replacement)
    gm.graph.erase_node(node)


def sweep(gm: torch.fx.GraphModule, rules, keep=lambda site: True) -> list[Site]:
    """One pass of every rule, in order, over every node (in place); the sites rewritten."""
    applied = []
    for rule in rules:
        for node in _candidates(gm):
            if node._erased or not node.users:
                continue
            found = rule.match(node)
            if isinstance(found, dict) and keep(site := site_at(rule, node)):
                _apply(gm, rule, node, found)
                applied.append(site)
    return applied


def rewrite_to_fixpoint(gm: torch.fx.GraphModule, rules, keep=lambda site: True) -> list[Site]:
    """Sweeps until one changes nothing (or MAX_SWEEPS), in place; the sites rewritten. ``keep``
    says whether a site may be rewritten (the excluded site classes may not)."""
    applied: list[Site] = []
    for _ in range(MAX_SWEEPS):
        done = sweep(gm, rules, keep)
        if not done:
            break
        applied += done
    if applied:
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    return applied
