"""GQA family: on real LLaMA-style exports (prefill and the KV-cache decode step) attention over
repeated K/V heads becomes GroupQueryAttention with equal outputs, padded and left-padded masks
and other batch sizes included; a repeat in the other head order, or a multi-token step over a
cache (which ORT's kernel refuses for batch > 1), is not taken."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx_ir as ir
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.formats.onnx.shape_inference import infer_shapes
from graphopt.passes.onnx import attention, gqa, normalization, rotary
from tests.passes.onnx.harness import assert_rewrites, assert_same_outputs, parse

DECODER_RULES = normalization.RULES + rotary.RULES + attention.RULES + gqa.RULES


def _fused(model) -> Counter:
    return Counter(n.op_type for n in model.graph.all_nodes() if n.domain == "com.microsoft")


def _rewrite(path):
    original = onnx_files.load(path)
    rewritten = onnx_files.copy(original)
    infer_shapes(rewritten)
    applied = rewrite_to_fixpoint(rewritten, DECODER_RULES)
    return original, rewritten, Counter(s.rule for s in applied)


@pytest.mark.slow
def test_prefill_attention_becomes_group_query_attention(tiny_export):
    path, feeds = tiny_export("llama")
    original, rewritten, counts = _rewrite(path)
    assert counts["gqa"] == 2, counts
    assert _fused(rewritten)["GroupQueryAttention"] == 2
    assert _fused(rewritten)["MultiHeadAttention"] == 0
    # Q and K share positions and tables: GroupQueryAttention rotates them itself.
    assert _fused(rewritten)["RotaryEmbedding"] == 0
    assert all(n.attributes.get_int("do_rotary", 0) == 1 for n in rewritten.graph if n.op_type == "GroupQueryAttention")
    # Q, K and V come from one MatMul over the concatenated weights (packed QKV).
    assert counts["gqa-packed-qkv"] == 2
    assert all(
        n.inputs[1] is None and n.inputs[2] is None for n in rewritten.graph if n.op_type == "GroupQueryAttention"
    )
    # No copy of K or V per query head is left (the mask's integer Expand is not one).
    assert not [n for n in rewritten.graph if n.op_type == "Expand" and n.inputs[0].dtype == ir.DataType.FLOAT]
    assert_same_outputs(original, rewritten, feeds)
    rng = np.random.default_rng(3)
    mask = np.ones((3, 9), np.int64)
    mask[1, 6:] = 0  # right padding
    mask[2, :2] = 0  # left padding
    assert_same_outputs(original, rewritten, {"input_ids": rng.integers(0, 1000, (3, 9)), "attention_mask": mask})


@pytest.mark.slow
def test_decode_step_appends_to_the_cache_inside_group_query_attention(tiny_export):
    path, feeds = tiny_export("llama-decode")
    original, rewritten, counts = _rewrite(path)
    assert counts["gqa"] == 2, counts
    # The present key/value outputs now come from GroupQueryAttention, not a Concat.
    presents = [v for v in rewritten.graph.outputs if v.name.startswith("present_")]
    assert presents and all(v.producer().op_type == "GroupQueryAttention" for v in presents)
    assert _fused(rewritten)["RotaryEmbedding"] == 0
    assert_same_outputs(original, rewritten, feeds)
    twice = {k: np.concatenate([v, v]) for k, v in feeds.items()}
    twice["attention_mask"][1, :5] = 0  # the second row left-padded
    assert_same_outputs(original, rewritten, twice)


def _grouped(unsqueeze_axis: int = 2, query_length: int = 1, batch: int = 1) -> str:
    """MultiHeadAttention over K/V with 2 heads repeated to 4 (head size 8) and a cache of 3."""
    t, b, s = 3 + query_length, batch, query_length
    return f"""<ir_version: 8, opset_import: ["" : 18, "com.microsoft" : 1]>
    g (float[{b},{s},32] q, float[{b},{s},16] k, float[{b},{s},16] v,
       float[{b},2,3,8] past_k, float[{b},2,3,8] past_v, float[{b},1,{s},{t}] mask)
      => (float[{b},{s},32] y, float[{b},2,{t},8] present_k, float[{b},2,{t},8] present_v)
      <int64[4] split = {{{b}, {s}, 2, 8}}, int64[1] axis = {{{unsqueeze_axis}}},
       int64[5] expand = {{{b}, 2, 2, {t}, 8}}, int64[4] flat = {{{b}, 4, {t}, 8}}> {{
        ks = Reshape(k, split)
        kh = Transpose<perm = [0, 2, 1, 3]>(ks)
        present_k = Concat<axis = -2>(past_k, kh)
        vs = Reshape(v, split)
        vh = Transpose<perm = [0, 2, 1, 3]>(vs)
        present_v = Concat<axis = -2>(past_v, vh)
        ku = Unsqueeze(present_k, axis)
        kg = Expand(ku, expand)
        kr = Reshape(kg, flat)
        vu = Unsqueeze(present_v, axis)
        vg = Expand(vu, expand)
        vr = Reshape(vg, flat)
        y = com.microsoft.MultiHeadAttention<num_heads = 4>(q, kr, vr, , , mask)
    }}"""


def _feeds(query_length: int = 1, batch: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t, b, s = 3 + query_length, batch, query_length
    normal = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    mask = np.zeros((b, 1, s, t), np.float32)
    mask[..., 0] = np.finfo(np.float32).min  # the oldest cached position masked out
    mask[..., 3 + np.arange(s)[:, None] < np.arange(t)[None, :]] = np.finfo(np.float32).min  # causal
    return {
        "q": normal(b, s, 32),
        "k": normal(b, s, 16),
        "v": normal(b, s, 16),
        "past_k": normal(b, 2, 3, 8),
        "past_v": normal(b, 2, 3, 8),
        "mask": mask,
    }


def _model(**kwargs):
    model = parse(_grouped(**kwargs))
    infer_shapes(model)
    return model


def test_hand_written_grouped_attention_with_cache_fuses_with_equal_outputs():
    rewritten = assert_rewrites(_model(), gqa.gqa, _feeds())
    assert [n.op_type for n in rewritten.graph if n.domain == "com.microsoft"] == ["GroupQueryAttention"]
    # Q, K and V are graph inputs here, not projections of one tensor: nothing to pack.
    assert find_sites(rewritten, [gqa.gqa_packed]) == []


def test_heads_repeated_in_tile_order_are_not_grouped_query_attention():
    # Unsqueeze at axis 1 then Expand repeats the K/V heads as [k0, k1, k0, k1]: query head h
    # would read K/V head h % 2, GroupQueryAttention reads h // 2.
    model = _model(unsqueeze_axis=1)
    assert find_sites(model, gqa.RULES) == []


def test_multi_token_step_over_a_cache_is_left_alone_at_batch_two():
    # ORT's GroupQueryAttention refuses more than one new token over a cache unless the batch is 1
    model = _model(query_length=2, batch=2)
    assert find_sites(model, gqa.RULES) == []
    assert find_sites(_model(query_length=1, batch=2), gqa.RULES)  # the same graph at one token is taken


def test_multi_token_step_over_a_cache_at_batch_one_fuses_with_equal_outputs():
    rewritten = assert_rewrites(_model(query_length=3), gqa.gqa, _feeds(query_length=3))
    assert [n.op_type for n in rewritten.graph if n.domain == "com.microsoft"] == ["GroupQueryAttention"]
