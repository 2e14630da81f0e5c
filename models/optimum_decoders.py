"""KV-cache decoders exported the way most LLM users export them: ``optimum-cli export onnx --task
text-generation-with-past`` on a transformers folder (LLaMA-, Qwen2- and Phi-style, built from
their configs with random weights and written with ``save_pretrained``; nothing is downloaded).

optimum-onnx 0.1 needs transformers < 4.58 while graphopt's own extras follow transformers 5, so
this module runs in an environment of its own and imports nothing from graphopt:

    python3 -m venv optenv && optenv/bin/pip install "torch==2.13.0" "transformers<4.58" optimum-onnx
    optenv/bin/python models/optimum_decoders.py OUT_DIR [--size tiny|44m] [--arch llama qwen2 phi]

Each export is one ``model.onnx`` (+ ``model.onnx_data`` past 2 GB) with inputs ``input_ids``,
``attention_mask``, ``position_ids``, ``past_key_values.N.key/value`` and outputs ``logits``,
``present.N.key/value``: the merged decoder that serves both the prefill (a past of length 0) and
the decode step. The ``tiny`` exports are the fixtures under tests/data/optimum/ (regenerate them
with this script); ``44m`` is the size issue 24 timed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers as tf

# hidden, intermediate, layers, query heads, key/value heads, vocabulary
SIZES = {
    "tiny": (64, 160, 2, 4, 2, 512),
    "44m": (512, 1376, 6, 8, 2, 32000),
}
CONFIGS = {"llama": tf.LlamaConfig, "qwen2": tf.Qwen2Config, "phi": tf.PhiConfig}


def config_for(arch: str, size: str):
    hidden, intermediate, layers, heads, kv_heads, vocab = SIZES[size]
    common = dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=vocab,
        max_position_embeddings=2048,
    )
    if arch == "phi":  # Phi-2's form: partial rotary, parallel attention/MLP, GELU, LayerNorm, no GQA
        common["partial_rotary_factor"] = 0.5
        common["num_key_value_heads"] = heads
    return CONFIGS[arch](**common)


def save_random(arch: str, size: str, folder: Path, seed: int = 0) -> Path:
    """A causal LM with random weights (small, so that activations stay well scaled)."""
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config_for(arch, size))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.05)
    model.save_pretrained(folder)
    return folder


def export(arch: str, size: str, out_dir: Path) -> Path:
    """``optimum-cli export onnx --task text-generation-with-past``; returns the model.onnx path."""
    target = out_dir / f"{arch}-{size}"
    with tempfile.TemporaryDirectory() as work:
        folder = save_random(arch, size, Path(work) / "hf")
        cli = str(Path(sys.executable).with_name("optimum-cli"))  # the environment's own, PATH or not
        command = [cli, "export", "onnx", "--model", str(folder), "--task", "text-generation-with-past"]
        subprocess.run([*command, str(target)], check=True, stdout=subprocess.DEVNULL)
    return target / "model.onnx"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--arch", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS))
    args = parser.parse_args(argv)
    for arch in args.arch:
        print(export(arch, args.size, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
