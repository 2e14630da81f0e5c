"""Masks family: the index grid transformers builds for a padding mask becomes a Slice of the
mask, with equal outputs for any batch, length and 0/1 mask;
a grid that does not start at 0, steps by 2, or puts the key axis first is left alone."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import masks
from tests.passes.onnx.harness import assert_rewrites, assert_same_outputs, parse


def _grid(start: int = 0, step: int = 1, b_axes=(1, 2, 3), k_axes=(0, 1, 2)) -> str:
    return f"""<ir_version: 8, opset_import: ["" : 18]>
    g (bool[B, S] mask) => (bool[B, 1, 1, S] out)
      <int64 start = {{{start}}}, int64 step = {{{step}}}, int64[3] b_axes = {{{", ".join(map(str, b_axes))}}},
       int64[3] k_axes = {{{", ".join(map(str, k_axes))}}}, int64[1] last = {{-1}}> {{
        b_shape = Shape<start = 0, end = 1>(mask)
        k_shape = Shape<start = 1, end = 2>(mask)
        b_n = Squeeze(b_shape)
        k_n = Squeeze(k_shape)
        b_range = Range(start, b_n, step)
        k_range = Range(start, k_n, step)
        b_idx = Unsqueeze(b_range, b_axes)
        k_idx = Unsqueeze(k_range, k_axes)
        both = Max(b_idx, k_idx)
        grid = Shape(both)
        b_full = Expand(b_idx, grid)
        k_full = Expand(k_idx, grid)
        b_last = Unsqueeze(b_full, last)
        k_last = Unsqueeze(k_full, last)
        pairs = Concat<axis = -1>(b_last, k_last)
        out = GatherND<batch_dims = 0>(mask, pairs)
    }}"""


@pytest.mark.parametrize("shape", [(1, 16), (3, 7), (2, 1)])
def test_grid_gather_becomes_a_slice(shape):
    mask = np.random.default_rng(sum(shape)).integers(0, 2, shape).astype(bool)
    out = assert_rewrites(parse(_grid()), masks.grid_gather, {"mask": mask})
    assert "GatherND" not in [n.op_type for n in out.graph]


@pytest.mark.parametrize(
    "text",
    [_grid(start=1), _grid(step=2), _grid(b_axes=(0, 1, 2), k_axes=(1, 2, 3))],
    ids=["starts-at-1", "steps-by-2", "key-axis-first"],
)
def test_other_grids_are_left_alone(text):
    assert find_sites(parse(text), [masks.grid_gather]) == []


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_padding_masks_of_real_exports(tiny_export, arch):
    path, feeds = tiny_export(arch)
    original = onnx_files.load(path)
    rewritten = onnx_files.copy(original)
    assert [s.rule for s in rewrite_to_fixpoint(rewritten, masks.RULES)] == ["mask-grid-gather"]
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 16), (3, 5)]:
        mask = rng.integers(0, 2, (batch, seq)).astype(np.int64)
        mask[:, 0] = 1  # a row of all padding makes the model's softmax rows uniform: not this rule's concern
        case = {"input_ids": rng.integers(0, 1000, (batch, seq)), "attention_mask": mask}
        if "token_type_ids" in feeds:
            case["token_type_ids"] = np.zeros((batch, seq), np.int64)
        assert_same_outputs(original, rewritten, case)
