"""The ONNX format and its rule set, as the engine sees them (graphopt.core.protocols).

``OnnxFormat`` wraps files.py (load, save with the weights beside the output, copy) and the
questions the engine asks of a graph. ``OnnxRules`` wraps onnxscript matching (matching.py) and
the rewrite loop (rewrite.py) for one registry of rules (graphopt.passes.onnx), plus what every
ONNX candidate needs after its rewrites: the shapes the user fixed (specialize.py), and only the
value annotations the input had (see files.keep_only_annotations).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import onnx
import onnx_ir as ir
import onnxscript.optimizer

from graphopt.core.protocols import Candidate, InputSpec, NearMiss, Site
from graphopt.core.rules import by_family
from graphopt.formats.onnx import files, inputs, outputs, specialize
from graphopt.formats.onnx.feeds import verification_feeds
from graphopt.formats.onnx.inputs import SIZE_LADDER
from graphopt.formats.onnx.matching import ensure_unique_names, find_sites, near_misses
from graphopt.formats.onnx.rewrite import drop_identities, rewrite_to_fixpoint
from graphopt.formats.onnx.rules import Rule
from graphopt.formats.onnx.shape_inference import infer_shapes


def prepare(model: ir.Model, notes: list[str] | None = None) -> ir.Model:
    """Unique node names (sites refer to nodes by name) and symbolic shapes for the rules, in
    place; a note when only onnx's shape inference could run."""
    drop_identities(model)  # paddle2onnx writes an Identity after most ops: patterns would not see through them
    # A Constant node's output carries its tensor as const_value, as an initializer does: the
    # legacy exporter writes every scalar as a Constant, and onnxscript's checks (SDPA's 0 and
    # -inf, RMSNorm's epsilon) read const_value only.
    onnxscript.optimizer.basic_constant_propagation(ir.traversal.RecursiveGraphIterator(model.graph))
    ensure_unique_names(model)
    note = infer_shapes(model)  # a help, not a requirement
    if note and notes is not None:
        notes.append(note)
    return model


class OnnxFormat:
    name = "onnx"
    feed_attempts = len(SIZE_LADDER)  # size pairs to try when the model does not run on generated inputs

    def accepts(self, model: object) -> bool:
        """An ``onnx.ModelProto`` or an ``onnx_ir.Model``."""
        return isinstance(model, (onnx.ModelProto, ir.Model))

    def from_object(self, model) -> ir.Model:
        """An onnx_ir model of ``model`` (a copy: the caller's object is never rewritten)."""
        if isinstance(model, onnx.ModelProto):
            return ir.from_proto(model)
        return files.copy(model)

    def load(self, path) -> ir.Model:
        return files.load(path)

    def save(self, graph: ir.Model, path, *, like: ir.Model | None = None) -> None:
        """External weights when the model it came from had them (or above 2 GB)."""
        files.save(graph, path, external_data=like is not None and files.has_external_data(like))

    def copy(self, graph: ir.Model) -> ir.Model:
        return files.copy(graph)

    def weight_bytes(self, graph: ir.Model) -> int:
        return files.weight_bytes(graph)

    def input_specs(self, graph: ir.Model) -> list[InputSpec]:
        return inputs.input_specs(graph)

    def op_types(self, graph: ir.Model) -> Iterator[str]:
        return (files.qualified_op(n.domain, n.op_type) for n in files.iter_nodes(graph))

    def portable_op_types(self, graph: ir.Model) -> Iterator[str]:
        return self.op_types(graph)  # the shared vocabulary is ONNX's

    def prepare(self, graph: ir.Model) -> list[str]:
        notes: list[str] = []
        prepare(graph, notes)
        return notes

    def feeds(self, graph: ir.Model, shapes=None, inputs_file=None, attempt: int = 0) -> list[dict[str, np.ndarray]]:
        return verification_feeds(graph, shapes, inputs_file, attempt)

    def rules(self, rules: list[Rule], original: ir.Model, fix_dims=None, fix_shapes=None, runs_op=None) -> OnnxRules:
        """The rule set for candidates of ``original``: written with its annotations only, with
        the user's fixed shapes, offering only replacements the target reads (``runs_op``)."""
        fixed = dict(fix_dims or {}), dict(fix_shapes or {})
        return OnnxRules(rules, files.annotated_values(original), *fixed, runs_op=runs_op)

    def check_destination(self, source, output, *, in_place: bool, make_dirs: bool) -> None:
        outputs.check_destination(source, output, in_place=in_place, make_dirs=make_dirs)

    def write_output(self, graph: ir.Model | None, source, output, *, like: ir.Model, original: ir.Model) -> None:
        """``graph`` beside its weights, or (None) ``original``, the input handed back, at the IR
        version of ``like`` (what the target was given)."""
        if graph is not None:
            outputs.write_candidate(graph, output, external_data=files.has_external_data(like))
        else:
            outputs.write_original(original, source, output, ir_version=like.ir_version)

    def fingerprint(self, graph: ir.Model) -> str:
        """A digest of the graph's structure (ops, attributes, edges), not of its weights' bytes."""
        digest = hashlib.sha256()
        for node in files.iter_nodes(graph):
            digest.update(f"{node.domain}::{node.op_type}{sorted(node.attributes)}".encode())
            digest.update(",".join(v.name if v is not None else "" for v in node.inputs).encode())
        return digest.hexdigest()[:16]


@dataclasses.dataclass
class OnnxRules:
    """One registry of ONNX rules, with what every candidate gets after its rewrites."""

    rules: list[Rule]
    annotations: frozenset[str] | None = None  # value_info names the input recorded (None: keep all)
    fix_dims: dict[str, int] = dataclasses.field(default_factory=dict)
    fix_shapes: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    runs_op: Callable[[str, str], bool] | None = None  # the target's vocabulary; None: any op

    def families(self) -> dict[str, list[str]]:
        return by_family(self.rules)

    def sites(self, graph: ir.Model) -> list[Site]:
        return find_sites(graph, self.rules, self.runs_op)

    def near_misses(self, graph: ir.Model, sites: list[Site]) -> list[NearMiss]:
        return near_misses(graph, self.rules, sites)

    def fixed_input(self, graph: ir.Model) -> tuple[Candidate | None, list[str]]:
        """The input with only the user's fixed shapes applied (a candidate of its own), and what
        was fixed, for the report."""
        if not self.fixes_shapes:
            return None, []
        fixed = files.copy(graph)
        notes = self.finish(fixed)
        return Candidate("fixed shapes only", fixed, []), notes

    def rewrite(self, label: str, graph: ir.Model, rules: Sequence[str], excluded=frozenset()) -> Candidate:
        """A copy of ``graph`` rewritten to a fixpoint with ``rules``, skipping the ``excluded``
        site classes and single sites, then fixed and annotated as it will be written."""
        chosen = [r for r in self.rules if r.name in set(rules)]
        candidate = files.copy(graph)
        choose = (
            (lambda sites: [s for s in sites if s.site_class not in excluded and s not in excluded])
            if excluded
            else None
        )
        # The user's fixed sizes first: the rules then see the shapes the output will serve (ORT's
        # GroupQueryAttention over a cache takes one query token, which only a fixed sequence
        # length of 1 shows), and the shape arithmetic they match is folded where it became static.
        specialize.fix_shapes(candidate, self.fix_dims, self.fix_shapes)
        applied = rewrite_to_fixpoint(candidate, chosen, choose, self.runs_op)
        self._annotate(candidate)
        return Candidate(label, candidate, applied, tuple(r.name for r in chosen), frozenset(excluded))

    @property
    def fixes_shapes(self) -> bool:
        return bool(self.fix_dims or self.fix_shapes)

    def finish(self, graph: ir.Model) -> list[str]:
        """The fixed shapes and the input's annotations, in place; returns what was fixed."""
        fixed = specialize.fix_shapes(graph, self.fix_dims, self.fix_shapes)
        self._annotate(graph)
        return fixed

    def _annotate(self, graph: ir.Model) -> None:
        """Only the value annotations the input had (files.keep_only_annotations)."""
        if self.annotations is not None:
            files.keep_only_annotations(graph, self.annotations)
