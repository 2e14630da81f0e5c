"""Rotary family: RoPE as torch writes it becomes ORT's RotaryEmbedding with equal outputs, in
the prefill (Range positions) and decode-step (arange + offset) forms; slices that are not the
two halves, or positions that skip, are not RoPE."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import rotary
from tests.passes.onnx.harness import assert_rewrites, assert_same_outputs, parse

INV_FREQ = ", ".join(f"{1.0 / (10000 ** (2 * i / 8)):.8f}" for i in range(4))


def _rope(lo_end: int = 4, hi_start: int = 4, delta: int = 1) -> str:
    return (
        f"""<ir_version: 8, opset_import: ["" : 18]>
    g (float[1,2,3,8] x, int64 start) => (float[1,2,3,8] y)
      <float[4] inv_freq = {{{INV_FREQ}}}, int64 three = {{3}}, int64 step = {{{delta}}},
       int64[2] uaxes = {{0, 2}}, int64[1] head = {{1}}, int64[1] zero = {{0}}, int64[1] lo_end = {{{lo_end}}},
       int64[1] hi_start = {{{hi_start}}}, int64[1] big = {{9223372036854775807}}, """
        f"""int64[1] last = {{3}}, int64[1] one = {{1}}> {{
        limit = Add(start, three)
        positions = Range(start, limit, step)
        pos = Unsqueeze(positions, uaxes)
        posf = Cast<to = 1>(pos)
        freqs = Mul(posf, inv_freq)
        emb = Concat<axis = -1>(freqs, freqs)
        c = Cos(emb)
        s = Sin(emb)
        cos = Unsqueeze(c, head)
        sin = Unsqueeze(s, head)
        low = Slice(x, zero, lo_end, last, one)
        high = Slice(x, hi_start, big, last, one)
        nh = Neg(high)
        rotated = Concat<axis = -1>(nh, low)
        a = Mul(x, cos)
        b = Mul(rotated, sin)
        y = Add(a, b)
    }}"""
    )


FEEDS = {"x": np.random.default_rng(0).standard_normal((1, 2, 3, 8)).astype(np.float32), "start": np.array(5, np.int64)}


def test_rope_becomes_rotary_embedding():
    out = assert_rewrites(parse(_rope()), rotary.rope, FEEDS)
    assert [n.op_type for n in out.graph if n.domain == "com.microsoft"] == ["RotaryEmbedding"]


@pytest.mark.parametrize(
    "text", [_rope(lo_end=3, hi_start=3), _rope(delta=2)], ids=["slices-not-halves", "positions-skip"]
)
def test_not_rope_is_left_alone(text):
    assert find_sites(parse(text), [rotary.rope]) == []


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "llama-decode"])
def test_llama_exports_fuse_every_q_and_k(tiny_export, arch):
    path, feeds = tiny_export(arch)
    original = onnx_files.load(path)
    rewritten = onnx_files.copy(original)
    applied = rewrite_to_fixpoint(rewritten, rotary.RULES)
    # Two layers, Q and K each: four RotaryEmbedding kernels sharing one cos/sin table.
    made = Counter(n.op_type for n in rewritten.graph)
    assert made["RotaryEmbedding"] == 4 and made["Cos"] == 1 and made["Sin"] == 1, Counter(s.rule for s in applied)
    assert_same_outputs(original, rewritten, feeds)
