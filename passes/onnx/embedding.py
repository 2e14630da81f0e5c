"""Embedding: BERT's word + token-type + position embeddings and their LayerNorm to ORT's
``com.microsoft::EmbedLayerNormalization``.

torch's dynamo exporter writes the embedding block of a BERT-family encoder as

    pos = Gather(position_table, Slice(position_ids_buffer, [0], Shape(input_ids)[1:2], [1]))
    out = LayerNormalization(Gather(word_table, input_ids) + Gather(type_table, token_type_ids) + pos)

which ORT runs as seven kernels (DistilBERT: the same without token types, five): ORT's
EmbedLayerNormFusion expects the legacy exporter's graph and does not fire.
EmbedLayerNormalization does the three lookups, the sums and the LayerNorm in one pass over
each row (two Casts to int32 in front: the kernel takes int32 ids).

Legality, checked: the three tables are constant 2-D float32 of one width H; gamma and beta are
1-D of H; the LayerNorm normalizes the last axis (its epsilon is carried over); every Gather is on
axis 0; the ids are int32/int64 of rank 2; the positions are rows [0, S) of a constant buffer that
holds exactly 0, 1, 2, ... (S read from input_ids' own shape), which is the kernel's default
position_ids. The kernel sums the three rows then normalizes in float32, like the graph, so the
results agree to float32 rounding. One difference on inputs models never get: an id outside
[0, vocabulary) - negative ids, which ONNX Gather wraps around - makes the kernel fail with an
error instead of returning a row; ids past the table fail in both.

Measured (``python -m bench.rule_effects``): alone, 2-layer BERT 0.989 [0.984, 0.995]; on the whole
rule set there, leaving it out costs 3.5% (all 0.735 vs all but embedding 0.769 [0.760, 0.788]);
on MiniLM and DistilBERT within the noise (1.001, 1.009 alone).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant


def _pattern(op, input_ids, segment_ids, word, segment, position, buffer, starts, ends, axes, steps, gamma, beta):
    words = op.Gather(word, input_ids, _outputs=["words"])
    segments = op.Gather(segment, segment_ids, _outputs=["segments"])
    positions = op.Gather(position, op.Slice(buffer, starts, ends, axes, steps), _outputs=["positions"])
    total = op.Add(op.Add(words, segments), positions)
    return op.LayerNormalization(total, gamma, beta, _outputs=["normed"])


def _pattern_without_segments(op, input_ids, word, position, buffer, starts, ends, axes, steps, gamma, beta):
    """DistilBERT's form: no token types."""
    words = op.Gather(word, input_ids, _outputs=["words"])
    positions = op.Gather(position, op.Slice(buffer, starts, ends, axes, steps), _outputs=["positions"])
    return op.LayerNormalization(op.Add(words, positions), gamma, beta, _outputs=["normed"])


def _check(
    context,
    input_ids,
    word,
    position,
    buffer,
    starts,
    ends,
    axes,
    steps,
    gamma,
    beta,
    words,
    positions,
    normed,
    segment_ids=None,
    segment=None,
    segments=None,
    **_,
):
    tables = [constant(t) for t in (word, segment, position) if t is not None]
    if any(t is None or t.ndim != 2 or t.dtype != np.float32 for t in tables) or len({t.shape[1] for t in tables}) != 1:
        return MatchResult().fail("the embedding tables are not constant 2-D float32 of one width")
    width = tables[0].shape[1]
    for vector in (gamma, beta):
        array = constant(vector)
        if array is None or array.shape != (width,):
            return MatchResult().fail("LayerNorm's scale or bias is not a constant of the hidden width")
    norm = normed.producer()
    if norm.attributes.get_int("axis", -1) not in (-1, 2) or len(norm.outputs) != 1:
        return MatchResult().fail("the LayerNorm is not over the last axis alone")
    for gathered in (g for g in (words, segments, positions) if g is not None):
        if gathered.producer().attributes.get_int("axis", 0) != 0:
            return MatchResult().fail("a lookup is not on axis 0")
    for ids in (i for i in (input_ids, segment_ids) if i is not None):
        if ids.dtype not in (ir.DataType.INT64, ir.DataType.INT32) or ids.shape is None or ids.shape.rank() != 2:
            return MatchResult().fail("the ids are not int32/int64 [batch, sequence]")
    array = constant(buffer)
    if (
        array is None
        or array.ndim != 2
        or array.shape[0] != 1
        or not np.array_equal(array[0], np.arange(array.shape[1]))
    ):
        return MatchResult().fail("the position buffer is not the constant 0, 1, 2, ...")
    if [constant(v).reshape(-1).tolist() if constant(v) is not None else None for v in (starts, axes, steps)] not in (
        [[0], [1], [1]],
        [[0], [-1], [1]],
    ):
        return MatchResult().fail("the positions are not rows [0, S) of the buffer")
    shape = ends.producer()
    if (
        shape is None
        or shape.op_type != "Shape"
        or shape.inputs[0] is not input_ids
        or shape.attributes.get_int("start", 0) != 1
        or shape.attributes.get_int("end", -1) != 2
    ):
        return MatchResult().fail("the position count is not input_ids' sequence length")
    return True


def _int32(op, ids):
    return ids if ids.dtype == ir.DataType.INT32 else op.Cast(ids, to=ir.DataType.INT32)


def _embed_layer_norm(op, input_ids, word, position, gamma, beta, normed, segment_ids=None, segment=None, **_):
    epsilon = normed.producer().attributes.get_float("epsilon", 1e-5)
    segment_ids = None if segment_ids is None else _int32(op, segment_ids)
    out, _mask_index = op.EmbedLayerNormalization(
        _int32(op, input_ids),
        segment_ids,
        word,
        position,
        segment,
        gamma,
        beta,
        epsilon=epsilon,
        _domain="com.microsoft",
        _outputs=2,
    )
    return out


embed_layer_norm = rule(
    "embed-layer-norm",
    "embedding",
    "LayerNorm(word[ids] + token_type[types] + position[arange])  ->  com.microsoft EmbedLayerNormalization",
    _pattern,
    _embed_layer_norm,
    _check,
    commute=True,
)
embed_layer_norm_no_types = rule(
    "embed-layer-norm-no-types",
    "embedding",
    "LayerNorm(word[ids] + position[arange]) (DistilBERT)  ->  com.microsoft EmbedLayerNormalization",
    _pattern_without_segments,
    _embed_layer_norm,
    _check,
    commute=True,
)

RULES = [embed_layer_norm, embed_layer_norm_no_types]
