"""Apply rules to a fixpoint: the one place where sites turn into a rewritten graph."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxscript.optimizer
from onnx_ir.passes.common import CommonSubexpressionEliminationPass, RemoveUnusedNodesPass

from graphopt.core.protocols import Site
from graphopt.formats.onnx.matching import apply_site, ensure_unique_names, find_sites
from graphopt.formats.onnx.rules import Rule
from graphopt.formats.onnx.shape_inference import fill_contrib_shapes

MAX_ROUNDS = 50  # a rule set that has not settled after this many rounds is cycling


def rewrite_to_fixpoint(model: ir.Model, rules: list[Rule], choose=None, runs_op=None) -> list[Site]:
    """Rewrite ``model`` in place until no site is left; returns the sites applied, in order.

    ``choose(sites) -> sites`` lets a policy pick which of the found sites to apply each round;
    by default all of them are applied, in rule order (a site made stale by an earlier rewrite
    in the same round is skipped and looked for again in the next). ``runs_op``: only sites
    whose replacement the target reads (matching.find_sites).
    """
    ensure_unique_names(model)  # sites refer to nodes by name
    by_name = {r.name: r for r in rules}
    applied: list[Site] = []
    for _ in range(MAX_ROUNDS):
        sites = find_sites(model, rules, runs_op)
        order = {r.name: i for i, r in enumerate(rules)}
        sites.sort(key=lambda s: order[s.rule])
        chosen = choose(sites) if choose else sites
        progress = [s for s in chosen if apply_site(model, s, by_name)]
        applied.extend(progress)
        if not progress:
            break
        RemoveUnusedNodesPass()(model)  # what rules that keep their matches left unread
        drop_identities(model)  # rules that drop a no-op leave an Identity, which hides patterns
        _infer_shapes(model)
    if applied:
        # Rewrites that build the same helper at every site (RoPE's cos/sin tables) leave
        # identical nodes; merge them, then drop what nothing reads.
        CommonSubexpressionEliminationPass()(model)
    RemoveUnusedNodesPass()(model)
    return applied


def drop_identities(model: ir.Model) -> int:
    """Remove every ``y = Identity(x)`` whose y is not an output of its own graph, in the main
    graph and in every If/Loop/Scan body; returns how many. paddle2onnx writes one after most
    ops and the no-op rules leave them, and patterns do not see through them.

    onnx_ir's IdentityEliminationPass also removes an Identity that produces a graph output by
    renaming x, which breaks an If branch whose output is an Identity of a value from the outer
    graph (a common "return x unchanged" branch); those Identity nodes stay here."""
    dropped = 0
    for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
        if (
            node.op_type != "Identity"
            or node.domain not in ("", "ai.onnx")
            or node.graph is None
            or not node.inputs
            or node.inputs[0] is None
        ):
            continue
        if node.outputs[0] in node.graph.outputs:
            continue
        ir.convenience.replace_all_uses_with(node.outputs[0], node.inputs[0])
        node.graph.remove(node, safe=True)
        dropped += 1
    return dropped


SMALL_FILL = 1024  # elements: a ConstantOfShape this small is shape arithmetic, not a buffer


def fold_small_fills(node: ir.Node) -> bool | None:
    """onnxscript's folder keeps every ConstantOfShape (folding a large one would bloat the
    file); the small ones are shape arithmetic (the zeros Concat-ed into a Pad's pads by torch's
    exporter) and must fold for the chain after them to fold. None: the folder's own rules."""
    if node.op_type != "ConstantOfShape" or node.domain not in ("", "ai.onnx"):
        return None
    shape = ir.convenience.get_const_tensor(node.inputs[0]) if node.inputs and node.inputs[0] is not None else None
    return True if shape is not None and int(np.prod(shape.numpy())) <= SMALL_FILL else None


def _infer_shapes(model: ir.Model) -> None:
    """Give the nodes a round created their shapes: later stages check them (attention's MHA
    rules read head counts from the shapes of what the SDPA stage wrote).

    onnxscript's constant folder infers node by node and carries symbolic dimensions through
    Shape/Gather/Concat/Reshape chains, so two values of one sequence length keep one symbol;
    onnx's whole-model inference gives each a fresh ``unk__`` symbol, and rules that check "same
    dimension" then fail on legacy exports. It only folds nodes whose inputs are all constant.
    """
    try:
        onnxscript.optimizer.fold_constants(model, onnx_shape_inference=True, should_fold=fold_small_fills)
    except Exception:  # shape inference is a help: a rule that needs a missing shape does not match
        pass
    fill_contrib_shapes(model)  # onnx's inference does not know ORT's ops
