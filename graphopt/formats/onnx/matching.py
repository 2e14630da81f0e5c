"""The action space: a Site is one rule matched at one place in one graph.

``find_sites`` is a dry run: it asks every rule at every node whether it matches and whether its
check passes, and records where, without inserting a node or an opset import (Rule.dry_run).
``apply_site`` re-matches one site and splices its replacement in, tagging every node it creates
with the rule's name, so a node in the output can always be traced to the rule that made it.
Sites name nodes, so node names must be unique: ``ensure_unique_names`` runs onnx_ir's NameFixPass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import onnx_ir as ir
import onnxscript.optimizer
from onnx_ir.passes.common import NameFixPass
from onnxscript.rewriter import _basics

from graphopt.core.protocols import NearMiss, Site
from graphopt.formats.onnx.rules import RULE_TAG, Rule


def ensure_unique_names(model: ir.Model) -> None:
    NameFixPass()(model)


def _graphs(graph: ir.Graph, path: str = "") -> Iterator[tuple[str, ir.Graph]]:
    yield path, graph
    for node in graph:
        for attr in node.attributes.values():
            subgraphs = (
                [attr.value]
                if attr.type == ir.AttributeType.GRAPH
                else attr.value
                if attr.type == ir.AttributeType.GRAPHS
                else []
            )
            for i, sub in enumerate(subgraphs):
                suffix = attr.name if attr.type == ir.AttributeType.GRAPH else f"{attr.name}[{i}]"
                yield from _graphs(sub, f"{path}/{node.name}/{suffix}".lstrip("/"))


def find_sites(model: ir.Model, rules: list[Rule], runs_op=None) -> list[Site]:
    """Every (rule, place) where the rule's pattern matches and its check passes, and (with
    ``runs_op(domain, op_type)``, a target's vocabulary) whose replacement the target reads.
    Changes nothing: each replacement is built detached (Rule.dry_run) and unhooked again."""
    sites = []
    for path, graph in _graphs(model.graph):
        for node in graph:
            for r in rules:
                found = r.dry_run(model, graph, node)
                if found is None:
                    continue
                if runs_op is None or all(runs_op(n.domain, n.op_type) for n in found[1].new_nodes):
                    sites.append(_site(r.name, path, node.name, found[1].match.nodes))
                discard(found[1])
    return sites


def _site(rule: str, path: str, anchor: str, nodes) -> Site:
    reads = _outside_reads(nodes)
    return Site(
        rule,
        path,
        anchor,
        tuple(n.name for n in nodes),
        site_signature(nodes, reads),
        tuple(n.op_type for n in nodes),
        tuple(sorted({v.name for v in reads})),
    )


def _outside_reads(nodes) -> list[ir.Value]:
    """The non-constant values ``nodes`` read from outside themselves."""
    inside = {id(out) for node in nodes for out in node.outputs}
    return [
        value
        for node in nodes
        for value in node.inputs
        if value is not None
        and id(value) not in inside
        and value.const_value is None
        and ir.convenience.get_const_tensor(value) is None
    ]


def site_signature(nodes, reads: list[ir.Value] | None = None) -> str:
    """The types and shapes of the non-constant values ``nodes`` read from outside themselves."""
    read = set()
    for value in _outside_reads(nodes) if reads is None else reads:
        dtype = value.dtype.name.lower() if value.dtype is not None else "?"
        read.add(f"{dtype}{value.shape if value.shape is not None else '[?]'}")
    return " ".join(sorted(read))


_EXPECTED_OP = re.compile(r"expected (\w+), got")


def discard(delta) -> None:
    """Unhook a replacement that will not be inserted. Its detached nodes still count as users
    of the graph values they read, which would make later matches see "other uses" and fail."""
    for new_node in delta.new_nodes:
        for i in range(len(new_node.inputs)):
            new_node.replace_input_with(i, None)


def near_misses(model: ir.Model, rules: list[Rule], sites: list[Site] | None = None) -> list[NearMiss]:
    """Per rule and anchor, the closest match that failed and why; nodes already in a site are skipped."""
    tracer = _basics.MatchingTracer()
    for _, graph in _graphs(model.graph):
        for node in graph:
            for r in rules:
                found = r.dry_run(model, graph, node, tracer=tracer)
                if found is not None:
                    discard(found[1])
    sites = find_sites(model, rules) if sites is None else sites
    covered = {name for site in sites for name in site.nodes}
    present = {n.op_type for _, graph in _graphs(model.graph) for n in graph}
    by_rule = {variant: r.name for r in rules for variant in r.variants}
    closest: dict[tuple[str, str], NearMiss] = {}
    for rewrite, infos in tracer.best_matches_map.items():
        for info in infos:
            matched = len(info.match_result.nodes)
            anchor = info.root_node.name
            if info.status == _basics.MatchStatus.SUCCESS or matched < 2 or anchor in covered:
                continue
            reason = info.match_result.reason or info.status.name.lower().replace("_", " ")
            expected = _EXPECTED_OP.search(reason)
            if expected and expected.group(1) not in present:
                continue  # a later stage waiting for an op an earlier stage makes: not a near miss
            key = (by_rule[rewrite], anchor)
            if key not in closest or closest[key].matched_nodes < matched:
                closest[key] = NearMiss(key[0], anchor, matched, reason)
    return list(closest.values())


def apply_site(model: ir.Model, site: Site, rules: dict[str, Rule]) -> bool:
    """Rewrite ``model`` in place at ``site``; False when the site no longer matches."""
    graph = _graph_at(model, site.graph)
    node = next((n for n in graph if n.name == site.anchor), None)
    if node is None:
        return False
    r = rules[site.rule]
    found = r.match(model, graph, node)
    if found is None:
        return False
    if tuple(n.name for n in found[1].match.nodes) != site.nodes:
        discard(found[1])
        return False
    variant, delta = found
    for initializer in delta.new_initializers:
        _register(graph, initializer)
    onnxscript.optimizer.basic_constant_propagation(delta.new_nodes)
    for i, new_node in enumerate(delta.new_nodes):
        new_node.metadata_props[RULE_TAG] = r.name
        new_node.name = f"{r.name}/{site.anchor}/{i}_{new_node.name or new_node.op_type}"
    # A rule that keeps its matched nodes (remove_nodes=False: they may feed other consumers)
    # only redirects their outputs; the rewrite loop removes what is left unused.
    removed = delta.match.nodes if variant.remove_nodes else []
    ir.convenience.replace_nodes_and_values(
        graph, node, removed, delta.new_nodes, delta.match.outputs, delta.new_outputs
    )
    return True


def _register(graph: ir.Graph, initializer: ir.Value) -> None:
    """Add a rewrite's new initializer, renamed when an earlier one took its name (a rule that
    folds weights names them after their source, and folding twice, or two folds of one shared
    weight, would otherwise leave the new node reading a value the graph does not hold)."""
    if graph.initializers.get(initializer.name) is initializer:
        return
    base, n = initializer.name, 1
    while initializer.name in graph.initializers:
        initializer.name = f"{base}_{n}"
        n += 1
    graph.initializers[initializer.name] = initializer


def _graph_at(model: ir.Model, path: str) -> ir.Graph:
    for candidate_path, graph in _graphs(model.graph):
        if candidate_path == path:
            return graph
    raise KeyError(f"no subgraph at {path!r}")
