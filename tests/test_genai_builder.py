"""onnxruntime-genai's model builder output (tests/data/genai/llama-tiny-fp32: a 2-layer LLaMA
config built with ``python -m onnxruntime_genai.models.builder -p fp32 -e cpu``, already fused:
GroupQueryAttention, SkipSimplifiedLayerNormalization). Its KV cache's head size is a symbol,
``kv_cache_dim``, whose size only genai_config.json beside it gives, and its mask is
``total_sequence_length`` (the cache and the new tokens): inputs are generated from both, and
`optimize` hands it back unchanged rather than make the fused reference slower or wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

from graphopt.api.files import optimize
from graphopt.formats.onnx import files
from graphopt.formats.onnx.feeds import verification_feeds

BUILT = Path(__file__).parent / "data" / "genai" / "llama-tiny-fp32"


def test_the_head_size_comes_from_genai_config_and_the_mask_spans_cache_and_tokens():
    model = files.load(BUILT / "model.onnx")
    step, *_ = verification_feeds(files.copy(model), None, None)  # a copy, as the engine makes
    assert step["past_key_values.0.key"].shape == (1, 2, 127, 16)  # head size 64 / 4 heads
    assert step["input_ids"].shape == (1, 1) and step["attention_mask"].shape == (1, 128)


def test_without_genai_config_the_head_size_is_unknown(tmp_path):
    for name in ("model.onnx", "model.onnx.data"):
        shutil.copy(BUILT / name, tmp_path / name)
    model = files.load(tmp_path / "model.onnx")
    assert files.DIMENSION_HINTS not in model.meta or not model.meta[files.DIMENSION_HINTS]


def test_the_builders_fused_model_is_handed_back_never_worse(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(BUILT, folder)
    out = tmp_path / "out" / "model.onnx"
    result = optimize(folder / "model.onnx", out, budget_s=20, make_dirs=True)
    assert result.kept_original
    assert files.op_histogram(files.load(out)) == files.op_histogram(files.load(folder / "model.onnx"))
