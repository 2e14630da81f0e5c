"""Decoders at the sizes LLM users export: LLaMA-style at 28 M, 123 M and 1 B parameters (TinyLlama's
shape) and Qwen2-1.5B's shape (1.54 B parameters, 6.2 GB of weights: past ONNX's 2 GB protobuf
limit, with Qwen2's biased Q/K/V projections and 151936-token vocabulary), built from
transformers' config with random weights (nothing is downloaded).

``export_prefill`` writes one the way torch does by default (``torch.onnx.export(...,
dynamo=True)``, dynamic batch and sequence, weights beside the graph in ``<name>.onnx.data``):
the form `graphopt optimize` is handed. Building and exporting the 1 B model holds about three
times its 4.1 GB of weights for a few minutes, so callers run it in a process of its own
(bench/llm.py does).
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf

from graphopt.models.architectures import randomized, text_inputs
from graphopt.models.export import export

# architecture, hidden, intermediate, layers, query heads, key/value heads, vocabulary
LLM_SHAPES = {
    "28m": ("llama", 512, 1376, 4, 8, 2, 32000),
    "123m": ("llama", 1024, 2816, 8, 16, 4, 32000),
    "1b": ("llama", 2048, 5632, 22, 32, 4, 32000),  # TinyLlama-1.1B without its head: 1.03 B parameters
    "1.5b": ("qwen2", 1536, 8960, 28, 12, 2, 151936),  # Qwen2-1.5B without its head: 1.54 B parameters
}
_ARCHITECTURES = {"llama": (tf.LlamaConfig, tf.LlamaModel), "qwen2": (tf.Qwen2Config, tf.Qwen2Model)}


def llm_config(size: str) -> tf.PretrainedConfig:
    if size not in LLM_SHAPES:
        raise ValueError(f"unknown LLM size {size!r}; use {', '.join(LLM_SHAPES)}")
    architecture, hidden, intermediate, layers, heads, kv_heads, vocabulary = LLM_SHAPES[size]
    config_class = _ARCHITECTURES[architecture][0]
    return config_class(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=vocabulary,
        max_position_embeddings=2048,
    )


def _model_class(size: str):
    return _ARCHITECTURES[LLM_SHAPES[size][0]][1]


def llm_prefill(size: str, batch: int = 1, seq: int = 16):
    """(the decoder body with random weights, example inputs, dynamic axes): the prefill, no cache."""
    config = llm_config(size)
    inputs, axes = text_inputs(config, batch, seq, token_types=False)
    with torch.device("cpu"):
        model = randomized(_model_class(size)(config), 3)
    return model, inputs, axes


def export_prefill(size: str, path: Path) -> Path:
    """The prefill exported by torch's default exporter (dynamic batch and sequence, external
    weights); returns ``path``."""
    model, inputs, axes = llm_prefill(size)
    with torch.no_grad():
        export(model, inputs, axes, path, exporter="dynamo", dynamic=True)
    return path


def parameters(size: str) -> int:
    """The parameter count, from the config alone (nothing is allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in _model_class(size)(llm_config(size)).parameters())
