"""Features of a pool entry (graphopt/policies/pool.py): what the learned policy scores.

Three parts, all read before anything is rewritten or compiled:

- the graph: size, op mix, input size, weight bytes, static or dynamic, and what the compiler
  already fuses in it (its fusion report of the original);
- the greedy rewrite: how many sites of each rule it applies;
- the entry: which sites it keeps of those (per rule, as a fraction), what it leaves out (a
  family, a site class with its rule and the elements its values hold), and whether the
  compiler already fuses the nodes of the sites it keeps or drops (``Site.fused_now``).

A feature vector is a dict name -> float; ``Schema`` fixes the names and their order for a rule
registry, and its hash goes into the weights file so a policy trained on other rules is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections import Counter

from graphopt.core.protocols import Format, FusionReport, InputSpec, Site
from graphopt.policies.pool import Entry

KINDS = ("greedy", "all-but", "only", "without-class")
TARGETS = ("ort-cpu", "ort-CUDAExecutionProvider", "inductor", "xla-cpu")  # Target.name
# The op mix is counted in ONNX operator names, the vocabulary every Format maps its ops to
# (Format.portable_op_types): the same share of MatMul reads the same in ONNX, FX and StableHLO.
GRAPH_OPS = (
    "MatMul",
    "Gemm",
    "Conv",
    "Softmax",
    "LayerNormalization",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Gather",
    "Transpose",
    "Reshape",
    "Add",
    "Mul",
    "Div",
    "Sub",
    "Where",
    "Expand",
    "Concat",
    "Slice",
    "ReduceMean",
    "Pow",
    "Sqrt",
    "Cast",
    "BatchNormalization",
    "Max",
    "Min",
    "Clip",
    "Relu",
    "Split",
    "Unsqueeze",
)


@dataclasses.dataclass(frozen=True)
class GraphFacts:
    """What the features need to know about one graph and its inputs, read once."""

    op_counts: dict[str, int]
    input_elements: int
    weight_bytes: int
    dynamic: bool
    dims: dict[str, int]  # symbol -> the size the inputs give it
    report: FusionReport | None  # the compiler's fusion report of the original
    target: str


def graph_facts(fmt: Format, graph, feeds: dict, report: FusionReport | None, target: str) -> GraphFacts:
    """The facts of ``graph`` (of Format ``fmt``) and one set of its inputs; ops are counted in the
    vocabulary all formats share (Format.portable_op_types), so a MatMul is a MatMul in FX too."""
    specs: list[InputSpec] = fmt.input_specs(graph)
    dims: dict[str, int] = {}
    for spec in specs:
        value = feeds.get(spec.name)
        for dim, size in zip(spec.dims, getattr(value, "shape", ())):
            if isinstance(dim, str):
                dims[dim] = int(size)
    elements = sum(int(getattr(v, "size", 0)) for v in feeds.values())
    dynamic = any(not isinstance(d, int) for spec in specs for d in spec.dims)
    ops = Counter(fmt.portable_op_types(graph))
    return GraphFacts(dict(ops), elements, fmt.weight_bytes(graph), dynamic, dims, report, target)


@dataclasses.dataclass(frozen=True)
class Schema:
    """The feature names, in order, for one rule registry."""

    rules: tuple[str, ...]
    families: tuple[str, ...]

    @classmethod
    def of(cls, families: dict[str, list[str]]) -> Schema:
        return cls(tuple(r for names in families.values() for r in names), tuple(families))

    @property
    def names(self) -> list[str]:
        return (
            [
                f"graph.{n}"
                for n in (
                    "log_nodes",
                    "log_input_elements",
                    "log_weight_bytes",
                    "dynamic",
                    "log_kernels",
                    "fused_share",
                )
            ]
            + [f"graph.op.{op}" for op in GRAPH_OPS]
            + [f"target.{t}" for t in TARGETS]
            + [f"greedy.rule.{r}" for r in self.rules]
            + ["greedy.log_sites"]
            + [f"entry.kind.{k}" for k in KINDS]
            + [f"entry.rule.{r}" for r in self.rules]
            + [f"entry.family.{f}" for f in self.families]
            + [f"entry.class_rule.{r}" for r in self.rules]
            + [
                "entry.kept_share",
                "entry.log_sites",
                "entry.class_share",
                "entry.log_class_elements",
                "entry.kept_fused_now",
                "entry.dropped_fused_now",
            ]
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]


def features(entry: Entry, greedy: list[Site], facts: GraphFacts) -> dict[str, float]:
    """The named features of ``entry`` (missing names are 0)."""
    kept = entry.applied_from(greedy)
    values = _graph_part(facts)
    values.update(_greedy_part(greedy))
    values.update(_entry_part(entry, greedy, kept, facts))
    return values


def vector(named: dict[str, float], schema: Schema | list[str]) -> list[float]:
    """The values in ``schema``'s order (a Schema, or the names a ranker was trained on); a name
    the entry has no value for is 0."""
    names = schema.names if isinstance(schema, Schema) else schema
    return [float(named.get(name, 0.0)) for name in names]


def _graph_part(facts: GraphFacts) -> dict[str, float]:
    nodes = max(1, sum(facts.op_counts.values()))
    values = {
        "graph.log_nodes": math.log1p(nodes),
        "graph.log_input_elements": math.log1p(facts.input_elements),
        "graph.log_weight_bytes": math.log1p(facts.weight_bytes),
        "graph.dynamic": float(facts.dynamic),
        f"target.{facts.target}": 1.0,
    }
    if facts.report is not None:
        values["graph.log_kernels"] = math.log1p(facts.report.kernels)
        values["graph.fused_share"] = sum(facts.report.fused.values()) / max(1, facts.report.kernels)
    for op in GRAPH_OPS:
        values[f"graph.op.{op}"] = facts.op_counts.get(op, 0) / nodes
    return values


def _greedy_part(greedy: list[Site]) -> dict[str, float]:
    values = {f"greedy.rule.{rule}": math.log1p(n) for rule, n in Counter(s.rule for s in greedy).items()}
    values["greedy.log_sites"] = math.log1p(len(greedy))
    return values


def _entry_part(entry: Entry, greedy: list[Site], kept: list[Site], facts: GraphFacts) -> dict[str, float]:
    values = {
        f"entry.kind.{entry.kind}": 1.0,
        "entry.kept_share": len(kept) / max(1, len(greedy)),
        "entry.log_sites": math.log1p(len(kept)),
    }
    all_counts, kept_counts = Counter(s.rule for s in greedy), Counter(s.rule for s in kept)
    for rule, n in all_counts.items():
        values[f"entry.rule.{rule}"] = kept_counts.get(rule, 0) / n
    if entry.family:
        values[f"entry.family.{entry.family}"] = 1.0
    if entry.site_class is not None:
        in_class = [s for s in greedy if s.site_class == entry.site_class]
        values[f"entry.class_rule.{entry.site_class[0]}"] = 1.0
        values["entry.class_share"] = len(in_class) / max(1, len(greedy))
        values["entry.log_class_elements"] = math.log1p(elements(entry.site_class[1], facts.dims))
    if facts.report is not None:
        kept_set = set(kept)
        dropped = [s for s in greedy if s not in kept_set]
        values["entry.kept_fused_now"] = _fused_share(kept, facts.report)
        values["entry.dropped_fused_now"] = _fused_share(dropped, facts.report)
    return values


def _fused_share(sites: list[Site], report: FusionReport) -> float:
    return sum(s.fused_now(report) for s in sites) / len(sites) if sites else 0.0


_TENSOR = re.compile(r"\w+\[([^\]]*)\]")


def elements(signature: str, dims: dict[str, int]) -> int:
    """Elements of the values a site signature names (``float[batch,sequence,64] int64[3]``),
    symbols resolved by the inputs' sizes (an unknown symbol counts 1)."""
    total = 0
    for shape in _TENSOR.findall(signature):
        count = 1
        for dim in filter(None, (d.strip() for d in shape.split(","))):
            count *= int(dim) if dim.isdigit() else dims.get(dim, 1)
        total += count
    return total
