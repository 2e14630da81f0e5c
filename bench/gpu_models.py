"""The torch models `python -m bench --gpu` runs: the zoo's BERT and LLaMA-style decoder (prefill
and decode step, models/architectures.py) and a nanoGPT-style model written the way research code
writes attention by hand (Karpathy's nanoGPT ``CausalSelfAttention`` without its flash branch):
``(q @ k.transpose(-2, -1)) * (1 / sqrt(d))``, ``masked_fill`` with a causal buffer, softmax,
``@ v``. That last form is what SDPA rules exist for: on a GPU it runs as several memory-bound
kernels where ``scaled_dot_product_attention`` runs one flash-attention kernel."""

from __future__ import annotations

import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, block: int):
        super().__init__()
        self.c_attn, self.c_proj, self.heads = nn.Linear(width, 3 * width), nn.Linear(width, width), heads
        self.register_buffer("bias", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

    def forward(self, x):
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
        y = torch.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, block: int):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(width), CausalSelfAttention(width, heads, block)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGpt(nn.Module):
    def __init__(self, vocab: int, width: int, heads: int, layers: int, block: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(block, width)
        self.blocks = nn.ModuleList(Block(width, heads, block) for _ in range(layers))
        self.ln_f, self.lm_head = nn.LayerNorm(width), nn.Linear(width, vocab, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def build(name: str, batch: int, seq: int, *, tiny: bool) -> tuple[nn.Module, dict, bool]:
    """(model in eval mode, its inputs by name, whether they are passed positionally)."""
    from graphopt.models.architectures import ARCHITECTURES

    torch.manual_seed(0)
    if name == "nanogpt":
        width, heads, layers = (64, 4, 2) if tiny else (768, 12, 12)
        model = NanoGpt(1024 if tiny else 50304, width, heads, layers, block=max(seq, 16))
        return model.eval(), {"idx": torch.randint(0, 1024, (batch, seq))}, False
    model, inputs, _ = ARCHITECTURES[name]("tiny" if tiny else "base", batch=batch, seq=seq)
    return model.eval(), inputs, name == "llama-decode"
