"""Embedding family: BERT's (and DistilBERT's) embedding block as torch exports it becomes EmbedLayerNormalization
with equal outputs at other batch sizes and lengths; a position buffer that is not 0, 1, 2, ...
(the kernel's implied positions) is left alone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx_ir as ir
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import embedding
from tests.passes.onnx.harness import assert_same_outputs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("arch", "rule"), [("bert", "embed-layer-norm"), ("distilbert", "embed-layer-norm-no-types")])
def test_bert_embeddings_become_embed_layer_norm(tiny_export, arch, rule):
    path, _ = tiny_export(arch)
    original = onnx_files.load(path)
    rewritten = onnx_files.copy(original)
    assert [s.rule for s in rewrite_to_fixpoint(rewritten, embedding.RULES)] == [rule]
    before, made = Counter(n.op_type for n in original.graph), Counter(n.op_type for n in rewritten.graph)
    assert made["EmbedLayerNormalization"] == 1
    assert made["LayerNormalization"] == before["LayerNormalization"] - 1  # the embeddings' own
    rng = np.random.default_rng(1)
    for batch, seq in [(1, 16), (3, 9)]:
        feeds = {
            "input_ids": rng.integers(0, 1000, (batch, seq)),
            "attention_mask": np.ones((batch, seq), np.int64),
        }
        if arch == "bert":
            feeds["token_type_ids"] = rng.integers(0, 2, (batch, seq))
        assert_same_outputs(original, rewritten, feeds)


def test_positions_that_are_not_a_count_are_left_alone(tiny_export):
    path, _ = tiny_export("bert")
    model = onnx_files.load(path)
    buffer = model.graph.initializers["model.embeddings.position_ids"]
    shuffled = buffer.const_value.numpy()[:, ::-1].copy()  # positions counting down
    buffer.const_value = ir.tensor(shuffled, name=buffer.name)
    assert find_sites(model, embedding.RULES) == []
