"""The JAX corpus: the JAX zoo's architectures (models/jax_zoo.py: an encoder, a LLaMA-style
decoder over a prompt and as a decode step with a KV cache, a ViT, a ResNet-style CNN) sampled
over depth, width, heads, KV heads, batch and sequence, lowered by ``jax.export`` to StableHLO
text: the corpus for targets that compile StableHLO (xla-cpu, iree-cpu). Weights are arguments,
as in JAX programs, and the inputs a graph is judged on are the ones it was lowered with.

``HELD_OUT`` (the ViT) never enters training: the policy is judged on it.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from graphopt.policies.training.corpus import Spec

EXPORTER = "jax"
ARCHS = ("jax-encoder", "jax-prompt", "jax-decode", "jax-vit", "jax-resnet")
HELD_OUT = HELD_OUT_ARCHS = ("jax-vit",)
TRAIN = tuple(a for a in ARCHS if a not in HELD_OUT)


def files() -> list[Spec]:
    return []  # no files from other projects in StableHLO yet


def sample(count: int, seed: int, archs=TRAIN) -> list[Spec]:
    """``count`` specs drawn over ``archs`` in turn."""
    rng = random.Random(seed)
    return [_draw(archs[i % len(archs)], rng, seed * 100_000 + i) for i in range(count)]


def _draw(arch: str, rng: random.Random, seed: int) -> Spec:
    heads = rng.choice((2, 4, 8))
    grouped = arch in ("jax-prompt", "jax-decode")  # grouped-query attention
    kv_heads = rng.choice([k for k in (1, 2, 4, 8) if heads % k == 0]) if grouped else heads
    hidden = heads * rng.choice((16, 32, 48))
    batch, seq = rng.choice((1, 1, 2, 4)), rng.choice((8, 16, 32, 64))
    return Spec(arch, rng.randint(1, 4), hidden, heads, kv_heads, batch, seq, EXPORTER, "none", False, seed)


def build(spec: Spec, folder) -> tuple[Path, dict[str, np.ndarray]]:
    """``spec`` lowered to StableHLO text in ``folder``: (module path, its inputs by argument name)."""
    from graphopt.models import jax_zoo

    shape = jax_zoo.Shape(
        layers=spec.layers,
        hidden=spec.hidden,
        heads=spec.heads,
        kv_heads=spec.kv_heads,
        ffn=4 * spec.hidden,
        batch=spec.batch,
        seq=spec.seq,
        cache=4 * spec.seq,
        vocab=1000,
    )
    path = Path(folder) / f"{spec.graph_id}.mlir"
    return path, jax_zoo.lowered_to(path, spec.arch.removeprefix("jax-"), shape, spec.seed % 1000)
