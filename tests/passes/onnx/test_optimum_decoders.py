"""Rules on decoders as optimum exports them (``text-generation-with-past``: torch's legacy
exporter, transformers 4; the tiny fixtures under tests/data/optimum/, made by
models/optimum_decoders.py): RoPE from a ``position_ids`` input, RMSNorm written with Div(1, .),
SDPA with one-element constants, the causal mask sliced to the repeated keys' length. Each stage
must fire on the real export and keep every output (logits and the present keys/values) within
verify's float32 tolerance at the decode step (1 token after 127) and a batched prefill over a
cache (7 tokens after 5), with position ids that are not a plain range."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.feeds import verification_feeds
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import RULES, cleanup, noops, rotary, shapes
from tests.passes.onnx.harness import assert_same_outputs

OPTIMUM = Path(__file__).parents[2] / "data" / "optimum"


def _load(arch: str) -> tuple[ir.Model, list[dict[str, np.ndarray]]]:
    model = onnx_files.load(OPTIMUM / f"{arch}-tiny" / "model.onnx")
    feeds = verification_feeds(model, None, None)
    shifted = {**feeds[1], "position_ids": feeds[1]["position_ids"] + np.array([[0], [3]])}  # left padding
    return prepare(model), [*feeds, shifted]


def _rewritten(model: ir.Model, rules) -> tuple[ir.Model, Counter, Counter]:
    rewritten = onnx_files.copy(model)
    applied = rewrite_to_fixpoint(rewritten, rules)
    return rewritten, Counter(s.rule for s in applied), Counter(n.op_type for n in rewritten.graph)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi"])
def test_rope_from_position_ids_becomes_rotary_embedding(arch):
    model, feeds = _load(arch)
    rules = cleanup.RULES + shapes.RULES + noops.RULES + rotary.RULES
    rewritten, applied, made = _rewritten(model, rules)
    assert applied["rotary-position-ids"] == 4 and made["RotaryEmbedding"] == 4, applied  # Q and K, two layers
    assert made["Cos"] == 1 and made["Sin"] == 1  # one table for every layer
    for feed in feeds:
        assert_same_outputs(model, rewritten, feed)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_every_stage_fires_on_a_llama_style_export_with_equal_presents(arch):
    model, feeds = _load(arch)
    rewritten, applied, made = _rewritten(model, RULES)
    assert made["RotaryEmbedding"] == 4 and made["MultiHeadAttention"] == 2, applied
    assert made["SkipSimplifiedLayerNormalization"] == 4 and made["SimplifiedLayerNormalization"] == 1, applied
    assert applied["gqa-repeat-shape"] == 2 and not made["Softmax"]
    names = [v.name for v in rewritten.graph.outputs]
    assert names == [v.name for v in model.graph.outputs] and "present.1.value" in names
    for feed in feeds:
        assert_same_outputs(model, rewritten, feed)


def test_the_merged_decoder_keeps_multi_head_attention_where_group_query_attention_would_refuse():
    """ORT's GroupQueryAttention refuses a batch of several sequences of more than one token over
    a cache, which the merged decoder serves (its sequence length is dynamic): not replaced."""
    model, _ = _load("llama")
    _, applied, made = _rewritten(model, RULES)
    assert "gqa" not in applied and made["GroupQueryAttention"] == 0


SERVED = {  # a fixed dimension -> the shapes (batch, past, new tokens) the output must still serve
    "sequence_length": ((1, 127, 1), (3, 9, 1)),
    "batch_size": ((1, 127, 1), (1, 9, 7), (1, 0, 16)),
}


@pytest.mark.parametrize("fixed", sorted(SERVED))
def test_a_fixed_step_or_batch_gets_group_query_attention_with_equal_presents(fixed):
    """With one token a step (``--fix-dim sequence_length=1``) or a batch of one (``--fix-dim
    batch_size=1``), the rules see what ORT's GroupQueryAttention takes: it replaces the repeat,
    the cache concat and the attention, and every shape the fixed model serves keeps its outputs."""
    from graphopt.formats.onnx import inputs
    from graphopt.formats.onnx.adapter import OnnxRules

    model, _ = _load("llama")
    rules = OnnxRules(RULES, fix_dims={fixed: 1})
    candidate = rules.rewrite("all rules", model, [r.name for r in RULES])
    made = Counter(n.op_type for n in candidate.graph.graph)
    assert made["GroupQueryAttention"] == 2 and made["MultiHeadAttention"] == 0, made
    assert made["RotaryEmbedding"] == 4 and made["SkipSimplifiedLayerNormalization"] == 4
    specs = inputs.input_specs(model)
    for batch, past, new in SERVED[fixed]:
        feed = inputs.generate(model, inputs.bind_dims(specs, None, (("batch", batch), ("past", past), ("", new))))
        assert_same_outputs(model, candidate.graph, feed)
