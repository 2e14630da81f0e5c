"""The training corpus: real architectures (transformers' model classes, random weights) sampled
over depth, width, heads, KV heads, sequence, batch, exporter, attention implementation and
static or dynamic axes, exported to ONNX the way users export them.

``HELD_OUT`` architectures never enter training: the policy is judged on them (DistilBERT: an
encoder with its own attention code; GPT-2: a decoder with Conv1D projections and tanh GELU;
MobileNetV2: a CNN with depthwise convolutions and ReLU6). Sizes are kept small (hidden up to
384, up to 4 layers) so one collection run covers many graphs; the features that carry size
(input elements, weight bytes, site elements) let the ranking extend to base sizes.

``FILES`` are files from other projects (graphopt/models/corpus.py: transformers' vision classes
exported by torch's legacy exporter, a YOLOv8-style detector, a CRNN text recognizer, Keras
models through tf2onnx, int8 files from onnxruntime.quantization, scikit-learn through
skl2onnx), each one graph as its exporter wrote it, and all held out: they are what a user
brings, so the policy is judged on them and never trained on them.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np

TEXT = ("bert", "roberta", "distilbert", "gpt2", "llama", "qwen2", "opt")
VISION = ("vit", "resnet", "mobilenetv2")
HELD_OUT_ARCHS = ("distilbert", "gpt2", "mobilenetv2")  # sampled like the training ones
TRAIN = tuple(a for a in TEXT + VISION if a not in HELD_OUT_ARCHS)
FILES = (
    "convnext",
    "swin",
    "efficientnet",
    "levit",
    "segformer",
    "mobilevit",
    "mobilenetv3-written",
    "detector",
    "ocr-crnn",
    "keras-mobilenetv3",
    "keras-encoder",
    "convnext-int8-static",
    "regnet-int8-static",
    "swin-int8-dynamic",
    "sklearn-mlp",
)
HELD_OUT = HELD_OUT_ARCHS + FILES
FILE_EXPORTER = "file"  # a Spec of one of FILES: built as its project builds it, no sampled configuration


@dataclasses.dataclass(frozen=True)
class Spec:
    """One corpus graph: an architecture at one configuration, exported one way."""

    arch: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    batch: int
    seq: int  # tokens (text) or image side (vision)
    exporter: str  # "dynamo" or "legacy"
    attention: str  # "eager" or "sdpa"
    dynamic: bool
    seed: int

    @property
    def graph_id(self) -> str:
        if self.exporter == FILE_EXPORTER:
            return f"file-{self.arch}"
        parts = [
            self.arch,
            f"l{self.layers}",
            f"h{self.hidden}",
            f"a{self.heads}",
            f"kv{self.kv_heads}",
            f"b{self.batch}",
            f"s{self.seq}",
            self.exporter,
            self.attention,
            "dyn" if self.dynamic else "static",
            f"r{self.seed}",
        ]
        return "-".join(parts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        return cls(**json.loads(text))


def sample(count: int, seed: int, archs=TRAIN) -> list[Spec]:
    """``count`` specs drawn over ``archs`` in turn (so every architecture is covered)."""
    rng = random.Random(seed)
    return [_draw(archs[i % len(archs)], rng, seed * 100_000 + i) for i in range(count)]


def _draw(arch: str, rng: random.Random, seed: int) -> Spec:
    heads = rng.choice((2, 4, 8))
    head_dim = rng.choice((16, 32, 48)) if arch in TEXT or arch == "vit" else 16
    kv_heads = rng.choice([k for k in (1, 2, 4, 8) if heads % k == 0]) if arch in ("llama", "qwen2") else heads
    if arch in TEXT:
        batch, seq = rng.choice((1, 1, 2, 4)), rng.choice((8, 16, 32, 64, 128))
    else:
        batch, seq = rng.choice((1, 1, 2)), rng.choice((32, 64, 96)) if arch != "vit" else rng.choice((32, 64))
    return Spec(
        arch,
        rng.randint(1, 4),
        heads * head_dim,
        heads,
        kv_heads,
        batch,
        seq,
        rng.choice(("dynamo", "dynamo", "legacy")),
        rng.choice(("eager", "sdpa")),
        rng.random() < 0.4,
        seed,
    )


def files() -> list[Spec]:
    """One spec per file of ``FILES`` (graph id: the entry's name)."""
    return [Spec(name, 0, 0, 0, 0, 1, 0, FILE_EXPORTER, "-", False, 0) for name in FILES]


def build(spec: Spec, folder) -> tuple[Path, dict[str, np.ndarray]]:
    """Export ``spec`` into ``folder``: (model path, the inputs it is judged on)."""
    if spec.exporter == FILE_EXPORTER:
        return _file(spec.arch, folder)
    if spec.exporter == "jax":
        from graphopt.policies.training import corpus_jax

        return corpus_jax.build(spec, folder)
    import torch

    from graphopt.models.export import export
    from graphopt.policies.training.corpus_models import module_and_inputs

    torch.manual_seed(spec.seed)
    module, inputs, axes = module_and_inputs(spec)
    path = Path(folder) / f"{spec.graph_id}.onnx"
    export(module, inputs, axes, path, exporter=spec.exporter, dynamic=spec.dynamic)
    if spec.dynamic:
        from graphopt.models.zoo import name_dynamic_axes

        name_dynamic_axes(path, axes)
    return path, {name: value.numpy() for name, value in inputs.items()}


def _file(name: str, folder) -> tuple[Path, dict[str, np.ndarray]]:
    """Corpus file ``name`` built in a fresh process (TensorFlow and torch state stay out of the
    collector's), with the inputs it was built with."""
    from graphopt.models.corpus import build_in_subprocess

    path = build_in_subprocess(name, folder)
    with np.load(path.parent / f"{path.name}.inputs.npz") as saved:
        return path, dict(saved)


KINDS = ("onnx", "jax")


def of_kind(kind: str):
    """The corpus named ``kind``: a module with ``sample``, ``files``, ``TRAIN`` and
    ``HELD_OUT_ARCHS`` (this one, or corpus_jax, imported only when asked for: it needs jax)."""
    import importlib
    import sys

    if kind not in KINDS:
        raise ValueError(f"unknown corpus {kind!r}; choose from {', '.join(KINDS)}")
    return sys.modules[__name__] if kind == "onnx" else importlib.import_module(f"{__package__}.corpus_jax")
