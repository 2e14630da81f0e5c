"""The JAX zoo: the architectures graphopt's StableHLO path is measured on, in plain JAX, written
the way JAX model code writes them (HF's Flax models, the JAX examples): an encoder at BERT or
MiniLM shapes, a LLaMA-style decoder with grouped-query attention (K/V heads repeated with
``jnp.repeat``, as HF's Flax LLaMA does) over a prompt and as a decode step with a KV cache, a
ViT, and a ResNet-style CNN in NHWC.

Each entry builds ``(fn, args)``: ``fn`` takes the weights as its first argument (a pytree, as
``flax``/``equinox`` code passes them) and the inputs after; ``args`` are random weights from a
seeded key and inputs of the zoo's shapes (batch 1, sequence 16 for text). Weights are arguments,
not closed-over constants, as in real JAX programs, so the module XLA compiles is the same one a
``jax.jit`` of the model compiles.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Shape:
    layers: int = 2
    hidden: int = 256
    heads: int = 4
    kv_heads: int = 4
    ffn: int = 1024
    batch: int = 1
    seq: int = 16
    cache: int = 128  # decode: positions already in the KV cache
    vocab: int = 1000


def _dense(key, n_in, n_out, scale=None):
    return jax.random.normal(key, (n_in, n_out), jnp.float32) * (scale or 1 / math.sqrt(n_in))


def layer_norm(x, g, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * g + b


def rms_norm(x, g, eps=1e-6):
    return x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + eps) * g


def attention(q, k, v, mask=None):
    """q [B, Sq, H, D], k/v [B, Sk, H, D] -> [B, Sq, H, D], softmax in the written-out form."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)


def encoder_params(key, s: Shape) -> dict:
    keys = iter(jax.random.split(key, 4 + 6 * s.layers))
    layers = [
        {
            "qkv": [_dense(next(keys), s.hidden, s.hidden) for _ in range(3)],
            "o": _dense(next(keys), s.hidden, s.hidden),
            "up": _dense(next(keys), s.hidden, s.ffn),
            "down": _dense(next(keys), s.ffn, s.hidden),
            "ln1": (jnp.ones(s.hidden), jnp.zeros(s.hidden)),
            "ln2": (jnp.ones(s.hidden), jnp.zeros(s.hidden)),
        }
        for _ in range(s.layers)
    ]
    return {
        "embed": _dense(next(keys), s.vocab, s.hidden, 0.02),
        "pos": _dense(next(keys), 512, s.hidden, 0.02),
        "layers": layers,
    }


def encoder(params, ids, s: Shape):
    """A post-LN BERT encoder layer stack (erf GELU) over token ids [B, S]."""
    x = params["embed"][ids] + params["pos"][: ids.shape[1]]
    b, n = ids.shape
    for p in params["layers"]:
        q, k, v = (jnp.reshape(x @ w, (b, n, s.heads, -1)) for w in p["qkv"])
        x = layer_norm(x + jnp.reshape(attention(q, k, v), (b, n, -1)) @ p["o"], *p["ln1"])
        x = layer_norm(x + jax.nn.gelu(x @ p["up"], approximate=False) @ p["down"], *p["ln2"])
    return x


def decoder_params(key, s: Shape) -> dict:
    head = s.hidden // s.heads
    keys = iter(jax.random.split(key, 2 + 7 * s.layers))
    layers = [
        {
            "q": _dense(next(keys), s.hidden, s.hidden),
            "k": _dense(next(keys), s.hidden, s.kv_heads * head),
            "v": _dense(next(keys), s.hidden, s.kv_heads * head),
            "o": _dense(next(keys), s.hidden, s.hidden),
            "gate": _dense(next(keys), s.hidden, s.ffn),
            "up": _dense(next(keys), s.hidden, s.ffn),
            "down": _dense(next(keys), s.ffn, s.hidden),
            "n1": jnp.ones(s.hidden),
            "n2": jnp.ones(s.hidden),
        }
        for _ in range(s.layers)
    ]
    return {"embed": _dense(next(keys), s.vocab, s.hidden, 0.02), "norm": jnp.ones(s.hidden), "layers": layers}


def rotary(x, position):
    """Rotary position embedding of x [B, S, H, D] at integer positions [S]."""
    half = x.shape[-1] // 2
    freqs = 1.0 / (10000 ** (jnp.arange(half, dtype=jnp.float32) / half))
    angles = position[:, None].astype(jnp.float32) * freqs[None, :]
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def decoder(params, ids, s: Shape):
    """A LLaMA-style decoder over a prompt, ids [B, S]: RMSNorm, rotary positions, causal
    grouped-query attention (K/V repeated with jnp.repeat), SwiGLU; returns the logits."""
    b, n = ids.shape
    head, rep = s.hidden // s.heads, s.heads // s.kv_heads
    x, position = params["embed"][ids], jnp.arange(n)
    causal = jnp.tril(jnp.ones((n, n), bool))[None, None]
    for p in params["layers"]:
        h = rms_norm(x, p["n1"])
        q = rotary(jnp.reshape(h @ p["q"], (b, n, s.heads, head)), position)
        k = rotary(jnp.reshape(h @ p["k"], (b, n, s.kv_heads, head)), position)
        v = jnp.reshape(h @ p["v"], (b, n, s.kv_heads, head))
        out = attention(q, jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2), causal)
        x = x + jnp.reshape(out, (b, n, -1)) @ p["o"]
        h = rms_norm(x, p["n2"])
        x = x + (jax.nn.silu(h @ p["gate"]) * (h @ p["up"])) @ p["down"]
    return rms_norm(x, params["norm"]) @ params["embed"].T


def decode_step(params, ids, cache_k, cache_v, s: Shape):
    """One token through a LLaMA-style decoder with a KV cache: ids [B, 1], caches
    [layers, B, cache, kv_heads, D]; returns logits and the updated caches."""
    b, head, rep = ids.shape[0], s.hidden // s.heads, s.heads // s.kv_heads
    x, position = params["embed"][ids], jnp.array([s.cache - 1])
    new_k, new_v = [], []
    for i, p in enumerate(params["layers"]):
        h = rms_norm(x, p["n1"])
        q = rotary(jnp.reshape(h @ p["q"], (b, 1, s.heads, head)), position)
        k = rotary(jnp.reshape(h @ p["k"], (b, 1, s.kv_heads, head)), position)
        v = jnp.reshape(h @ p["v"], (b, 1, s.kv_heads, head))
        keys = jax.lax.dynamic_update_slice_in_dim(cache_k[i], k, s.cache - 1, axis=1)
        values = jax.lax.dynamic_update_slice_in_dim(cache_v[i], v, s.cache - 1, axis=1)
        new_k.append(keys)
        new_v.append(values)
        out = attention(
            q, jnp.repeat(keys, rep, axis=2), jnp.repeat(values, rep, axis=2)
        )  # GQA as HF's Flax LLaMA writes it
        x = x + jnp.reshape(out, (b, 1, -1)) @ p["o"]
        h = rms_norm(x, p["n2"])
        x = x + (jax.nn.silu(h @ p["gate"]) * (h @ p["up"])) @ p["down"]
    return rms_norm(x, params["norm"]) @ params["embed"].T, jnp.stack(new_k), jnp.stack(new_v)


def vit_params(key, s: Shape, patch=8, channels=3) -> dict:
    params = encoder_params(key, s)
    params["patch"] = _dense(jax.random.fold_in(key, 1), patch * patch * channels, s.hidden)
    return params


def vit(params, images, s: Shape, patch=8):
    """ViT over NHWC images: patches by reshape, a pre-LN encoder (tanh GELU), mean pooling."""
    b, height, width, c = images.shape
    patches = images.reshape(b, height // patch, patch, width // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    x = (
        patches.reshape(b, -1, patch * patch * c) @ params["patch"]
        + params["pos"][: (height // patch) * (width // patch)]
    )
    n = x.shape[1]
    for p in params["layers"]:
        h = layer_norm(x, *p["ln1"], eps=1e-6)
        q, k, v = (jnp.reshape(h @ w, (b, n, s.heads, -1)) for w in p["qkv"])
        x = x + jnp.reshape(attention(q, k, v), (b, n, -1)) @ p["o"]
        x = x + jax.nn.gelu(layer_norm(x, *p["ln2"], eps=1e-6) @ p["up"]) @ p["down"]
    return x.mean(axis=1)


def resnet_params(key, widths=(32, 64, 128), channels=3) -> dict:
    keys = iter(jax.random.split(key, 2 + 4 * len(widths)))
    stem = jax.random.normal(next(keys), (3, 3, channels, widths[0])) * 0.2
    blocks = []
    for c_in, c_out in zip((widths[0],) + widths[:-1], widths):
        blocks.append(
            {
                "conv1": jax.random.normal(next(keys), (3, 3, c_in, c_out)) * math.sqrt(2 / (9 * c_in)),
                "conv2": jax.random.normal(next(keys), (3, 3, c_out, c_out)) * math.sqrt(2 / (9 * c_out)),
                "skip": jax.random.normal(next(keys), (1, 1, c_in, c_out)) * math.sqrt(1 / c_in),
                "scale": jnp.ones(c_out),
                "shift": jnp.zeros(c_out),
            }
        )
    return {"stem": stem, "blocks": blocks}


def _conv(x, w, stride=1):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def resnet(params, images):
    """A ResNet-style CNN in NHWC: stem, residual blocks (inference BatchNorm as scale/shift), pooling."""
    x = jax.nn.relu(_conv(images, params["stem"]))
    for p in params["blocks"]:
        h = jax.nn.relu(_conv(x, p["conv1"], 2) * p["scale"] + p["shift"])
        x = jax.nn.relu(_conv(h, p["conv2"]) * p["scale"] + p["shift"] + _conv(x, p["skip"], 2))
    return x.mean(axis=(1, 2))


def build(name: str, seed: int = 0):
    """``(fn, args)`` for a zoo entry (see ZOO)."""
    make, shape = ZOO[name]
    return make(jax.random.PRNGKey(seed), shape)


def lowered_to(path, kind: str, s: Shape, seed: int = 0) -> dict:
    """One of the zoo's builders (``kind``: encoder, prompt, decode, vit, resnet) at shape ``s``,
    lowered by ``jax.export`` to StableHLO text at ``path``; returns its inputs by argument name."""
    from jax import export

    from graphopt.formats.stablehlo import files, module

    make = {"encoder": _encoder, "prompt": _prompt, "decode": _decoder, "vit": _vit, "resnet": _resnet}[kind]
    fn, args = make(jax.random.PRNGKey(seed), s)
    lowered = files.from_exported(export.export(jax.jit(fn, keep_unused=True))(*args))
    files.save(lowered, path, files.TEXT)
    names = [spec.name for spec in module.input_specs(lowered.text, None)]
    return {name: np.asarray(jax.device_get(leaf)) for name, leaf in zip(names, jax.tree_util.tree_leaves(args))}


def _encoder(key, s):
    ids = jnp.asarray(np.random.default_rng(0).integers(0, s.vocab, (s.batch, s.seq)), jnp.int32)
    return (lambda params, ids: encoder(params, ids, s)), (encoder_params(key, s), ids)


def _prompt(key, s):
    ids = jnp.asarray(np.random.default_rng(0).integers(0, s.vocab, (s.batch, s.seq)), jnp.int32)
    return (lambda params, ids: decoder(params, ids, s)), (decoder_params(key, s), ids)


def _decoder(key, s):
    head = s.hidden // s.heads
    cache = jax.random.normal(
        jax.random.fold_in(key, 7), (2, s.layers, s.batch, s.cache, s.kv_heads, head), jnp.float32
    )
    ids = jnp.zeros((s.batch, 1), jnp.int32)
    return (lambda params, ids, k, v: decode_step(params, ids, k, v, s)), (
        decoder_params(key, s),
        ids,
        cache[0],
        cache[1],
    )


def _vit(key, s):
    images = jax.random.normal(jax.random.fold_in(key, 3), (s.batch, 32, 32, 3), jnp.float32)
    return (lambda params, images: vit(params, images, s)), (vit_params(key, s), images)


def _resnet(key, s):
    images = jax.random.normal(jax.random.fold_in(key, 5), (s.batch, 64, 64, 3), jnp.float32)
    return resnet, (resnet_params(key), images)


ZOO = {
    "minilm": (_encoder, Shape(layers=6, hidden=384, heads=12, kv_heads=12, ffn=1536)),
    "bert": (_encoder, Shape(layers=12, hidden=768, heads=12, kv_heads=12, ffn=3072)),
    "llama": (_prompt, Shape(layers=4, hidden=512, heads=8, kv_heads=2, ffn=1376)),
    "llama-decode": (_decoder, Shape(layers=4, hidden=256, heads=8, kv_heads=2, ffn=688)),
    "vit": (_vit, Shape(layers=4, hidden=192, heads=3, kv_heads=3, ffn=768)),
    "resnet": (_resnet, Shape()),
}
