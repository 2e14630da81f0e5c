"""Helpers for FX rule tests: the graph Dynamo hands a backend, the rules applied to a copy."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from graphopt.formats.fx.capture import dynamo_graph  # noqa: E402  (the graph Dynamo makes, its inputs in its order)


def rewrite(fn, rules, *args):
    """(a rewritten copy of Dynamo's graph, fired rule -> count, the graph's inputs), through the
    FX RuleSet the engine drives (every rule to a fixpoint)."""
    from collections import Counter

    from graphopt.formats.fx.format import FxRules

    gm, inputs = dynamo_graph(fn, *args)
    candidate = FxRules(list(rules)).rewrite("all rules", gm, [r.name for r in rules])
    return candidate.graph, dict(Counter(site.rule for site in candidate.applied)), inputs


def targets(gm) -> list:
    return [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")]
