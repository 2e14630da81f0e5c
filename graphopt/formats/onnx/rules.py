"""What an ONNX rewrite rule is in graphopt: a pattern, a check and a replacement.

A rule is a pure triple written in onnxscript's pattern language:

- ``pattern(op, x, ...)``: ordinary op calls describing the subgraph to find;
- ``check(context, **bindings)``: returns a MatchResult, failed with the reason when the match
  is not legal (a dtype, a broadcast, a constant that is not the one the rewrite needs);
- ``replacement(op, **bindings)``: the subgraph to put in its place.

Nothing is carried from check to replacement on an object: both are functions of the bindings.
The rule's docstring (``doc``) says what it rewrites and when that is legal; ``graphopt rules``
prints it. Rules know nothing of policies: the search sees them only as (rule, site) actions.
The registry of rules is graphopt.passes.onnx (the families import this module, never the
other way round).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable

from onnxscript.rewriter import _pattern_ir
from onnxscript.rewriter import pattern as orp

RULE_TAG = "graphopt.rule"  # metadata key on every node a rule creates


@dataclasses.dataclass(frozen=True, eq=False)
class Rule:
    name: str
    family: str
    doc: str
    variants: tuple[orp.RewriteRule, ...]  # the pattern and, for commutative ops, its commuted forms

    @functools.cached_property
    def root_ops(self) -> frozenset[tuple[str, str]] | None:
        """The (domain, op type) a node must have for some variant to match there, or None when
        a variant's pattern does not fix them. Asking onnxscript's matcher at every node of a
        decoder costs ~15 us a rule a node (1.6 million asks, 24 s, on a 44 M-parameter decoder);
        a node of another op type is turned away here first."""
        ops = set()
        for variant in self.variants:
            pattern = variant._target_pattern
            if not pattern.has_single_output_node:
                return None
            root = pattern.output_node
            domain, op = (
                p.value() if isinstance(p, _pattern_ir.StringConstantPattern) else None for p in (root.domain, root.op)
            )
            if not isinstance(domain, str) or not isinstance(op, str):
                return None
            ops.add((_canonical_domain(domain), op))
        return frozenset(ops)

    def may_match(self, node) -> bool:
        return self.root_ops is None or (_canonical_domain(node.domain), node.op_type) in self.root_ops

    def match(self, model, graph, node, tracer=None):
        """``(variant, replacement)`` for the first variant that matches at ``node``, or None."""
        if not self.may_match(node):
            return None
        for variant in self.variants:
            delta = variant.try_rewrite(model, graph, node, tracer=tracer)
            if delta is not None:
                return variant, delta
        return None

    @property
    def summary(self) -> str:
        """The doc's first sentence (of its first paragraph), on one line: what ``graphopt rules`` prints."""
        text = " ".join(self.doc.split("\n\n")[0].split())
        end = re.search(r"[.:](\s|$)", text)
        return text[: end.start() + 1].rstrip(":") if end else text

    def dry_run(self, model, graph, node, tracer=None):
        """``(variant, replacement)`` like ``match``, changing nothing: onnxscript's try_rewrite
        also adds the replacement's opset imports to the graph, which finding sites must not do.
        onnxscript has no public dry run, so this calls the two steps of try_rewrite itself."""
        if not self.may_match(node):
            return None
        for variant in self.variants:
            found = variant.match(model, graph, node, check_nodes_are_removable=variant.remove_nodes, tracer=tracer)
            if not found:
                continue
            replacement = variant._replacement_pattern.get_replacement(found)
            if replacement is not None:
                return variant, replacement
        return None

    def __repr__(self) -> str:
        return f"Rule({self.name})"


def _canonical_domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def rule(
    name: str,
    family: str,
    doc: str,
    pattern,
    replacement,
    check: Callable | None = None,
    *,
    commute: bool = False,
    remove_nodes: bool = True,
) -> Rule:
    """Build a Rule from its pattern, replacement and (optional) check functions.

    ``pattern`` may be a sequence: the spellings of one pattern (a Squeeze, an Unsqueeze or a
    Flatten; a Gemm or a MatMul), tried in order, with one ``replacement`` for all of them or a
    sequence of one each; the check is the same. With ``commute``, each also matches with the
    operands of its Add/Mul nodes swapped (exporters write ``x * c`` and ``c * x``
    interchangeably). With ``remove_nodes=False`` the matched nodes stay (they may feed other
    matches, like the cos/sin tables every RoPE site shares) and the rewrite loop removes them
    once nothing reads them.
    """
    patterns = tuple(pattern) if isinstance(pattern, (list, tuple)) else (pattern,)
    replacements = tuple(replacement) if isinstance(replacement, (list, tuple)) else (replacement,) * len(patterns)
    if len(replacements) != len(patterns):
        raise ValueError(f"{name}: {len(patterns)} patterns, {len(replacements)} replacements")
    variants = []
    for spelled, replaced in zip(patterns, replacements):
        rewrite = orp.RewriteRule(spelled, replaced, check, name=name, remove_nodes=remove_nodes)
        variants += rewrite.commute() if commute else [rewrite]
    return Rule(name=name, family=family, doc=doc.strip(), variants=tuple(variants))


def adopt(name: str, family: str, doc: str, rewrites) -> Rule:
    """A Rule made of rewrite rules written for onnxscript's own rule sets (its ORT fusions).

    They keep what they computed in ``check`` on the rule object until ``rewrite`` (onnxscript's
    class-based style); that is safe here because graphopt calls both within one ``match`` or ``dry_run``.
    Rules that extract functions (``as_function``) or need per-graph setup are not adoptable:
    single-site application cannot honour them.
    """
    rewrites = tuple(rewrites)
    for r in rewrites:
        if r.as_function or _visits(r.graph_pre_visitor, "setup") or _visits(r.graph_post_visitor, "cleanup"):
            raise ValueError(f"{r.name}: rules that make functions or visit graphs cannot be adopted")
    return Rule(name=name, family=family, doc=doc.strip(), variants=rewrites)


def _visits(visitor, base_name: str) -> bool:
    """True when a graph visitor does something (class-based rules all have the base no-op)."""
    if visitor is None:
        return False
    return getattr(visitor, "__func__", None) is not getattr(orp.RewriteRuleClassBase, base_name)
