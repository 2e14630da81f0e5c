"""Applying FX rules to a GraphModule: match at each node, build the replacement before it,
hand its uses over, drop what became dead.

A rule's ``match(node)`` is pure: it returns None or a ``build(graph) -> Node`` that inserts the
replacement (called with the graph's insertion point just before ``node``). Nodes nothing reads
are skipped, so the interior of a pattern already replaced is never matched again.
"""

from __future__ import annotations

import torch.fx


def apply_rule(gm: torch.fx.GraphModule, rule) -> int:
    """Rewrite every site of ``rule`` in ``gm`` (in place); returns how many were rewritten."""
    count = 0
    for node in list(gm.graph.nodes):
        if node._erased or node.op in ("placeholder", "output", "get_attr") or not node.users:
            continue
        build = rule.match(node)
        if build is None:
            continue
        with gm.graph.inserting_before(node):
            replacement = build(gm.graph)
        if "example_value" in node.meta:
            replacement.meta.setdefault("example_value", node.meta["example_value"])
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    return count


def apply_rules(gm: torch.fx.GraphModule, rules) -> dict[str, int]:
    """Each rule in order over ``gm`` (in place): rule name -> sites rewritten (fired ones only)."""
    fired = {}
    for rule in rules:
        count = apply_rule(gm, rule)
        if count:
            fired[rule.name] = count
    return fired
