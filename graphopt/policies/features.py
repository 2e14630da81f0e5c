"""Features of a pool entry (graphopt/policies/pool.py): what the learned policy scores.

Three parts, all read before anything is rewritten or compiled:

- the graph: size, op mix, input size, weight bytes, static or dynamic, and what the compiler
  already fuses in it (its fusion report of the original);
- the greedy rewrite: how many sites of each rule it applies;
- the entry: which sites it keeps of those (per rule, as a fraction), what it leaves out (a
  family, a site class with its rule and the elements its values hold), and whether the
  compiler already fuses the nodes of the sites it keeps or drops (``Site.fused_now``).

Most of it means the same on every format and target (the rule names do not): the graph's ops
and each entry's kept and dropped sites by category (graphopt/policies/categories.py:
contraction, normalization, activation, softmax, data movement, shape arithmetic...), the bytes
the sites read and an element-operations estimate of their work, how many layers a site class
repeats in, and the share of them the target fuses now in its own report. A policy for a new
compiler learns from these without any rule written for it.

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
from graphopt.policies.categories import CATEGORIES, category
from graphopt.policies.categories import shares as category_shares
from graphopt.policies.pool import Entry

KINDS = ("greedy", "all-but", "only", "without-class", "composed")
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
            + NEUTRAL_NAMES
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]


# The target-neutral part, after the names above (weights trained before it stay readable: a
# ranker reads the names it was trained on, and these only add names).
NEUTRAL_NAMES = (
    [f"graph.category.{c}" for c in CATEGORIES]
    + [f"entry.{side}.{c}" for side in ("kept", "dropped") for c in CATEGORIES]
    + [f"entry.{side}.{m}" for side in ("kept", "dropped") for m in ("log_bytes", "log_element_ops", "fused_now")]
    + ["entry.log_class_multiplicity", "entry.log_mean_multiplicity", "entry.dropped_share"]
)


def rule_named(name: str) -> bool:
    """Whether a feature is a rule's or family's identity (the part that is not target-neutral)."""
    return name.startswith(("greedy.rule.", "entry.rule.", "entry.family.", "entry.class_rule."))


def features(entry: Entry, greedy: list[Site], facts: GraphFacts) -> dict[str, float]:
    """The named features of ``entry`` (missing names are 0)."""
    kept = entry.applied_from(greedy)
    values = _graph_part(facts)
    values.update(_greedy_part(greedy))
    values.update(_entry_part(entry, greedy, kept, facts))
    values.update(_neutral_part(entry, greedy, kept, facts))
    return values


def _neutral_part(entry: Entry, greedy: list[Site], kept: list[Site], facts: GraphFacts) -> dict[str, float]:
    """What the entry keeps and leaves out, in categories, bytes and work; how often it repeats."""
    values = {f"graph.category.{c}": share for c, share in _graph_categories(facts.op_counts).items()}
    kept_set = set(kept)
    sides = {"kept": kept, "dropped": [s for s in greedy if s not in kept_set]}
    for side, sites in sides.items():
        ops = [op for site in sites for op in site.op_types]
        values.update({f"entry.{side}.{c}": share for c, share in category_shares(ops).items()})
        values[f"entry.{side}.log_bytes"] = math.log1p(sum(site_bytes(s.signature, facts.dims) for s in sites))
        work = sum(elements(s.signature, facts.dims) * max(1, len(s.op_types)) for s in sites)
        values[f"entry.{side}.log_element_ops"] = math.log1p(work)
        if facts.report is not None:
            values[f"entry.{side}.fused_now"] = _fused_share(sites, facts.report)
    classes = Counter(s.site_class for s in greedy)
    if entry.site_class is not None:
        values["entry.log_class_multiplicity"] = math.log1p(classes[entry.site_class])
    if kept:
        values["entry.log_mean_multiplicity"] = math.log1p(sum(classes[s.site_class] for s in kept) / len(kept))
    values["entry.dropped_share"] = len(sides["dropped"]) / max(1, len(greedy))
    return values


def _graph_categories(op_counts: dict[str, int]) -> dict[str, float]:
    totals = Counter()
    for op, count in op_counts.items():
        totals[category(op)] += count
    nodes = sum(totals.values())
    return {name: count / nodes for name, count in totals.items()} if nodes else {}


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


_TYPED_TENSOR = re.compile(r"(\w+)\[([^\]]*)\]")
_MLIR_TENSOR = re.compile(r"tensor<([^>]*)>")
_MLIR_DTYPES = {"f32": "float", "f64": "double", "f16": "float16", "bf16": "bfloat16", "i64": "int64", "i1": "bool"}
_MLIR_DTYPES |= {"i32": "int32", "i8": "int8", "ui8": "uint8", "i16": "int16"}
_ITEM_BYTES = {"double": 8, "float64": 8, "int64": 8, "uint64": 8}  # any other dtype not listed: 4 bytes
_ITEM_BYTES |= {"float16": 2, "bfloat16": 2, "int16": 2, "uint16": 2}
_ITEM_BYTES |= {"int8": 1, "uint8": 1, "bool": 1, "float8e4m3fn": 1, "float8e5m2": 1}


def elements(signature: str, dims: dict[str, int]) -> int:
    """Elements of the values a site signature names (ONNX and FX: ``float[batch,sequence,64]
    int64[3]``; StableHLO: ``tensor<1x16x64xf32>``), symbols resolved by the inputs' sizes (an
    unknown symbol or a dynamic ``?`` counts 1)."""
    return sum(count for count, _ in _tensors(signature, dims))


def site_bytes(signature: str, dims: dict[str, int]) -> int:
    """Bytes of the values a site signature names (4 per element unless its dtype says otherwise)."""
    return sum(count * _ITEM_BYTES.get(dtype, 4) for count, dtype in _tensors(signature, dims))


def _tensors(signature: str, dims: dict[str, int]) -> list[tuple[int, str]]:
    """(elements, dtype) of each value a signature names."""
    found = [(_count(shape.split(","), dims), dtype.lower()) for dtype, shape in _TYPED_TENSOR.findall(signature)]
    for body in _MLIR_TENSOR.findall(signature):
        *shape, dtype = body.split("x")
        found.append((_count(shape, dims), _MLIR_DTYPES.get(dtype, dtype)))
    return found


def _count(shape: list[str], dims: dict[str, int]) -> int:
    count = 1
    for dim in filter(None, (d.strip() for d in shape)):
        count *= int(dim) if dim.isdigit() else dims.get(dim, 1)
    return count
