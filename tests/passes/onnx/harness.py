"""Shared checks for rule tests: a rule fires where legal, keeps outputs equal, and not elsewhere."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from graphopt.core.verify import compare
from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.targets.onnxruntime import OrtTarget


def parse(text: str) -> ir.Model:
    proto = onnx.parser.parse_model(text)
    onnx.checker.check_model(proto, full_check=True)
    return ir.serde.deserialize_model(proto)


def run(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run without ORT's own optimizations, so the graph that runs is the graph we wrote (weights
    in external data included: the zoo's exports keep them in ``<name>.onnx.data``)."""
    return OrtTarget(level="disable").compile(model, report=False).run(feeds)


def ops(model: ir.Model) -> list[str]:
    return [n.op_type for n in model.graph]


def assert_rewrites(model: ir.Model, rule, feeds: dict[str, np.ndarray]) -> ir.Model:
    """Apply ``rule`` to a copy; it must fire and keep every output within verify's tolerance."""
    rewritten = onnx_files.copy(model)
    applied = rewrite_to_fixpoint(rewritten, [rule])
    assert applied, f"{rule.name} did not fire"
    assert all(s.rule == rule.name for s in applied)
    assert_same_outputs(model, rewritten, feeds)
    return rewritten


def assert_same_outputs(original: ir.Model, rewritten: ir.Model, feeds: dict[str, np.ndarray]) -> None:
    """Both graphs, run as written, agree on every output within verify's tolerance."""
    names = [v.name for v in original.graph.outputs]
    equivalence = compare(names, run(original, feeds), run(rewritten, feeds))
    assert equivalence.ok, equivalence.first_failure()


def assert_no_site(model: ir.Model, rule) -> None:
    assert find_sites(model, [rule]) == [], f"{rule.name} matched where it is not legal"
