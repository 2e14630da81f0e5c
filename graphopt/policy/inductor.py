"""The learned policy for Inductor: which of graphopt's FX rules (passes/fx) to apply to a Dynamo
graph before Inductor compiles it with its weights frozen, as the torch backend's Inductor
contender does (graphopt/torch_choice.py).

The pool is every choice the Inductor contender could make: with the weights frozen into the
kernels or not, and each subset of the rules that fire on the graph (all of them, each left
out, each alone, none; none without freezing is Inductor as is, the baseline, so not an entry). Collection captures
a corpus spec's forward as Dynamo hands it to a backend, judges each entry against Inductor as
``torch.compile`` runs it by default (checked against eager, timed interleaved), and writes the
rows in the dataset's schema (graphopt/policy/dataset.py) with ``target`` "inductor": the same
training and evaluation read them. Features are the graph's op mix by meaning
(graphopt/formats/fx/ops.py ``kind``), its sizes, the rules' site counts and which the entry
keeps; their names have their own digest, so ONNX weights are never applied to FX graphs.

No Inductor weights ship: on the collected corpus (data/policy/inductor) only 3 of 24 graphs
have any entry faster than Inductor as is by 1.5% with confidence, too little to steer the
backend's Inductor contender (which stays: every FX rule, weights frozen, timed against
Inductor). ``graphopt policy collect --target inductor`` / ``train`` / ``eval`` make and judge
them once a larger corpus is collected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections import Counter

TARGET = "inductor"
KINDS = ("greedy", "all-but", "only", "none")
FX_OPS = ("linear", "matmul", "bmm", "baddbmm", "softmax", "layer_norm", "gelu", "erf", "tanh", "sigmoid", "silu", "relu", "hardtanh",
          "conv2d", "batch_norm", "mul", "add", "div", "sub", "pow", "rsqrt", "sqrt", "mean", "transpose", "permute", "view", "reshape",
          "contiguous", "scaled_dot_product_attention", "embedding", "cat", "getitem", "masked_fill", "where", "to", "clamp")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FxEntry:
    """One pool entry: the FX rules applied (in the registry's order), weights frozen or not."""

    label: str
    kind: str
    rules: tuple[str, ...]
    family: str = ""  # the rule left out ("all-but") or kept ("only")
    freeze: bool = True


def fx_pool(fired: list[str], fired_unfrozen: list[str] | None = None) -> list[FxEntry]:
    """The subsets of the rules that fired: all, each left out, each alone, none (no repeats),
    frozen; then, with ``fired_unfrozen`` (the rules that fire when weights stay inputs), the
    same without freezing, but for the empty set (Inductor as is)."""
    entries = _subsets(fired, True)
    if fired_unfrozen is not None:
        entries += [e for e in _subsets(fired_unfrozen, False) if e.rules]
    return entries


def _subsets(fired: list[str], freeze: bool) -> list[FxEntry]:
    suffix = ", frozen" if freeze else ""
    entries = [FxEntry(f"all rules{suffix}", "greedy", tuple(fired), freeze=freeze)]
    if len(fired) > 1:
        entries += [FxEntry(f"all but {rule}{suffix}", "all-but", tuple(r for r in fired if r != rule), rule, freeze) for rule in fired]
        entries += [FxEntry(f"only {rule}{suffix}", "only", (rule,), rule, freeze) for rule in fired]
    entries.append(FxEntry(f"no rules{suffix}", "none", (), freeze=freeze))
    unique: dict[tuple[str, ...], FxEntry] = {}
    for entry in entries:
        unique.setdefault(entry.rules, entry)
    return list(unique.values())


def feature_names(rule_names: list[str]) -> list[str]:
    return (["graph.log_nodes", "graph.log_input_elements", "graph.log_weight_bytes", "graph.log_batch_tokens"]
            + [f"graph.op.{op}" for op in FX_OPS] + [f"greedy.rule.{r}" for r in rule_names] + ["greedy.log_sites"]
            + [f"entry.kind.{k}" for k in KINDS] + [f"entry.rule.{r}" for r in rule_names] + [f"entry.family.{r}" for r in rule_names]
            + ["entry.kept_share", "entry.log_sites", "entry.freeze"])  # fmt: skip


def schema_digest(names: list[str]) -> str:
    return hashlib.sha256(("fx\n" + "\n".join(names)).encode()).hexdigest()[:16]


def graph_part(gm, args) -> dict[str, float]:
    """The graph's op mix (shares of its calls), size, and what its inputs and weights hold."""
    import torch

    from graphopt.formats.fx.ops import kind
    from graphopt.formats.fx.weights import weight_inputs

    kinds = Counter(k for k in map(kind, gm.graph.nodes) if k)
    calls = max(1, sum(kinds.values()))
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    weights = set(weight_inputs(gm, args))
    weight_bytes = sum(t.numel() * t.element_size() for i, t in enumerate(args) if i in weights and isinstance(t, torch.Tensor))
    activations = [t for i, t in enumerate(args) if i not in weights and isinstance(t, torch.Tensor)]
    first = activations[0] if activations else (tensors[0] if tensors else None)
    values = {"graph.log_nodes": math.log1p(calls), "graph.log_weight_bytes": math.log1p(weight_bytes),
              "graph.log_input_elements": math.log1p(sum(t.numel() for t in activations)),
              "graph.log_batch_tokens": math.log1p(math.prod(first.shape[:2]) if first is not None and first.dim() >= 2 else 1)}  # fmt: skip
    values.update({f"graph.op.{op}": kinds.get(op, 0) / calls for op in FX_OPS})
    return values


def entry_features(entry: FxEntry, fired: dict[str, int], graph: dict[str, float]) -> dict[str, float]:
    kept = sum(fired[r] for r in entry.rules)
    values = dict(graph)
    values.update({f"greedy.rule.{r}": math.log1p(n) for r, n in fired.items()})
    values["greedy.log_sites"] = math.log1p(sum(fired.values()))
    values.update({f"entry.kind.{entry.kind}": 1.0, "entry.kept_share": kept / max(1, sum(fired.values())), "entry.log_sites": math.log1p(kept),
                   "entry.freeze": float(entry.freeze)})  # fmt: skip
    values.update({f"entry.rule.{r}": 1.0 for r in entry.rules})
    if entry.family:
        values[f"entry.family.{entry.family}"] = 1.0
    return values


def vectors(entries: list[FxEntry], fired: dict[str, int], graph: dict[str, float], names: list[str]) -> list[list[float]]:
    return [[float(entry_features(e, fired, graph).get(n, 0.0)) for n in names] for e in entries]


def captured(spec):
    """``spec``'s forward as Dynamo hands it to a backend: (the largest graph, its inputs)."""
    import torch

    from graphopt.policy.corpus_models import module_and_inputs

    torch.manual_seed(spec.seed)
    module, inputs, _ = module_and_inputs(spec)
    graphs = []

    def grab(gm, example_inputs):
        graphs.append((gm, list(example_inputs)))
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad():
        torch.compile(module.eval(), backend=grab, dynamic=False)(**inputs)
    return max(graphs, key=lambda g: len(g[0].graph.nodes))


def collect_fx_one(spec, measure_s: float = 4.0) -> tuple[str, list[dict], list[str], str]:
    """Capture ``spec`` and judge its whole FX pool on Inductor: (graph id, rows, names, digest)."""
    import torch

    from graphopt.targets.inductor import all_fx_rules as all_rules
    from graphopt.torch_choice import build_inductor

    names = feature_names([r.name for r in all_rules()])
    digest = schema_digest(names)
    gm, args = captured(spec)
    fired = fired_rules(gm, args, all_rules())
    frozen = [name for name in fired if name in {r.name for r in all_rules(frozen=True)}]
    with torch.no_grad():
        plain = build_inductor(gm, args, [], args)
        graph, entries = graph_part(gm, args), fx_pool(frozen, list(fired))
        rows = [_judged(spec, gm, args, plain, entry, fired, graph, names, position, measure_s) for position, entry in enumerate(entries)]
    return spec.graph_id, rows, names, digest


def fired_rules(gm, args, rules) -> dict[str, int]:
    """The rules of ``rules`` that rewrite ``gm`` (each checked eagerly) -> sites, in order."""
    from graphopt.targets.inductor import rewritten

    _, fired, _ = rewritten(gm, args, rules)
    return {r.name: fired[r.name] for r in rules if r.name in fired}


def _judged(spec, gm, args, plain, entry: FxEntry, fired, graph, names, position, measure_s) -> dict:
    from graphopt.evaluation_log import MIN_GAIN
    from graphopt.targets.inductor import all_fx_rules as all_rules
    from graphopt.torch_choice import build_inductor, check, time_against

    started = time.monotonic()
    rejected, timing, report, equivalent = "", None, None, None
    try:
        contender = build_inductor(gm, args, [r for r in all_rules() if r.name in entry.rules], args, freeze=entry.freeze)
        report = contender.run.report
        problem = check(gm, contender, args)
        equivalent = problem is None
        if problem:
            rejected = f"not equivalent: {problem}"
        else:
            timing = time_against(plain, [contender], args, measure_s)[contender.name]
            if not timing.candidate_faster(MIN_GAIN):
                rejected = f"not {MIN_GAIN:.1%} faster with confidence"
    except Exception as error:  # a compile failure is a rejected entry, as in a run
        rejected = f"fails: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
    return _row(spec, entry, position, fired, graph, names, report, equivalent, rejected, timing, time.monotonic() - started)


def _row(spec, entry, position, fired, graph, names, report, equivalent, rejected, timing, seconds) -> dict:
    from graphopt.policy.collect import machine, versions

    sites = [{"rule": r, "signature": "", "anchor": str(i), "fused_now": False} for r in entry.rules for i in range(fired[r])]
    features = [float(entry_features(entry, fired, graph).get(n, 0.0)) for n in names]
    return {
        "graph_id": spec.graph_id, "fingerprint": spec.graph_id, "arch": spec.arch, "spec": spec.to_json(), "target": TARGET,
        "entry": entry.label, "kind": entry.kind, "family": entry.family, "site_class": "null", "position": position,
        "features": features, "sites": sites, "kernels": report.kernels if report else None,
        "fused": json.dumps(report.fused if report else {}), "fired": json.dumps({r: fired[r] for r in entry.rules}),
        "equivalent": equivalent, "rejected": rejected,
        "ratio": timing.ratio if timing else None, "ci_low": timing.ci_low if timing else None, "ci_high": timing.ci_high if timing else None,
        "rounds": timing.rounds if timing else None, "baseline_ms": timing.baseline_s * 1e3 if timing else None,
        "candidate_ms": timing.candidate_s * 1e3 if timing else None, "seconds": seconds,
        "machine": json.dumps(machine()), "versions": json.dumps(versions()),
    }  # fmt: skip
