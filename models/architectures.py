"""Builders for each zoo architecture at two sizes: ``base`` (the real config) and ``tiny`` (tests).

Each builder returns ``(module, example_inputs, dynamic_axes)``: a torch module in eval mode, a
dict of example inputs by name, and per input the axes that are dynamic with their symbol names.
"""

from __future__ import annotations

import torch
import transformers as tf


def randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-zero biases, norm scales away from 1, BatchNorm statistics away from (0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif leaf == "running_mean":
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif leaf == "running_var" or (leaf == "weight" and tensor.dim() == 1):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return module.eval()


def text_inputs(config, batch: int, seq: int, token_types: bool):
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "input_ids": torch.randint(0, config.vocab_size, (batch, seq), generator=generator),
        "attention_mask": torch.ones(batch, seq, dtype=torch.int64),
    }
    if token_types:
        inputs["token_type_ids"] = torch.zeros(batch, seq, dtype=torch.int64)
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    return inputs, axes


_TINY_ENCODER = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000)


def _bert_encoder(dims: dict, size: str, batch: int, seq: int, seed: int):
    config = tf.BertConfig(**(_TINY_ENCODER if size == "tiny" else dims), attn_implementation="eager")
    inputs, axes = text_inputs(config, batch, seq, token_types=True)
    return randomized(tf.BertModel(config, add_pooling_layer=False), seed), inputs, axes


def bert(size: str, batch: int = 1, seq: int = 16):
    """BERT-base: 12 layers, hidden 768, 12 heads."""
    dims = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    return _bert_encoder(dims, size, batch, seq, seed=1)


def minilm(size: str, batch: int = 1, seq: int = 16):
    """MiniLM-L6-H384 (all-MiniLM-L6-v2's shape): a BERT encoder, 6 layers, hidden 384, 12 heads."""
    dims = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    return _bert_encoder(dims, size, batch, seq, seed=7)


def distilbert(size: str, batch: int = 1, seq: int = 16):
    """DistilBERT-base: 6 layers, hidden 768, 12 heads, no token types."""
    dims = dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072)
    if size == "tiny":
        dims = dict(dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=1000)
    config = tf.DistilBertConfig(**dims, attn_implementation="eager")
    inputs, axes = text_inputs(config, batch, seq, token_types=False)
    return randomized(tf.DistilBertModel(config), 8), inputs, axes


def gpt2(size: str, batch: int = 1, seq: int = 16):
    dims = dict(n_embd=768, n_layer=12, n_head=12)
    if size == "tiny":
        dims = dict(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, n_positions=256)
    config = tf.GPT2Config(**dims, attn_implementation="eager")
    inputs, axes = text_inputs(config, batch, seq, token_types=False)
    return randomized(tf.GPT2Model(config), 2), inputs, axes


def llama(size: str, batch: int = 1, seq: int = 16):
    dims = dict(
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        vocab_size=8000,
    )
    if size == "tiny":
        dims = dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=1000,
        )
    config = tf.LlamaConfig(**dims, max_position_embeddings=512, attn_implementation="eager")
    inputs, axes = text_inputs(config, batch, seq, token_types=False)
    return randomized(tf.LlamaModel(config), 3), inputs, axes


def vit(size: str, batch: int = 1, seq: int = 0):
    dims = dict(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        image_size=224,
        patch_size=16,
    )
    if size == "tiny":
        dims = dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            image_size=32,
            patch_size=8,
        )
    config = tf.ViTConfig(**dims, attn_implementation="eager")
    pixels = torch.randn(batch, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    return (
        randomized(tf.ViTModel(config, add_pooling_layer=False), 4),
        {"pixel_values": pixels},
        {"pixel_values": {0: "batch"}},
    )


def resnet(size: str, batch: int = 1, seq: int = 0):
    config = tf.ResNetConfig()  # the default config is ResNet-50
    resolution = 224
    if size == "tiny":
        config = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1])
        resolution = 64
    pixels = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    return randomized(tf.ResNetModel(config), 5), {"pixel_values": pixels}, {"pixel_values": {0: "batch"}}


class ClampMin(torch.nn.Module):
    """``x.clamp(min=0)``: ReLU as model code often writes it (torch exports it as Max(x, 0))."""

    def forward(self, x):
        return x.clamp(min=0)


def resnet_clamp(size: str, batch: int = 1, seq: int = 0):
    """ResNet-50 with every ReLU written as ``x.clamp(min=0)``: same function, another graph."""
    model, inputs, axes = resnet(size, batch, seq)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(parent, name, ClampMin())
    return model, inputs, axes


def mobilenet_v2(size: str, batch: int = 1, seq: int = 0):
    config = tf.MobileNetV2Config()
    resolution = 224
    if size == "tiny":
        config = tf.MobileNetV2Config(depth_multiplier=0.35, image_size=64)
        resolution = 64
    pixels = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    return randomized(tf.MobileNetV2Model(config), 6), {"pixel_values": pixels}, {"pixel_values": {0: "batch"}}


def convnext(size: str, batch: int = 1, seq: int = 0):
    """ConvNeXt-T at 224x224 (depthwise 7x7, LayerNorm over channels, GELU); tiny: 1-1-2-1 blocks at 64x64."""
    config = tf.ConvNextConfig(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768])
    resolution = 224
    if size == "tiny":
        config = tf.ConvNextConfig(depths=[1, 1, 2, 1], hidden_sizes=[24, 48, 96, 192])
        resolution = 64
    pixels = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    return randomized(tf.ConvNextModel(config), 9), {"pixel_values": pixels}, {"pixel_values": {0: "batch"}}


ARCHITECTURES = {
    "bert": bert,
    "minilm": minilm,
    "distilbert": distilbert,
    "gpt2": gpt2,
    "llama": llama,
    "vit": vit,
    "resnet50": resnet,
    "resnet50-clamp": resnet_clamp,
    "mobilenetv2": mobilenet_v2,
    "convnext": convnext,
}


class LlamaDecodeStep(torch.nn.Module):
    """One decoder step with a KV cache: the new token, the mask over past+1, and the cache.

    The cache is passed as flat tensors (past_key_i, past_value_i) so the ONNX graph has plain
    inputs and outputs, as ORT GenAI-style decoders do; inside, it is a transformers DynamicCache.
    """

    flat_outputs = True

    def __init__(self, model: torch.nn.Module, layers: int):
        super().__init__()
        self.model = model
        self.layers = layers
        self.output_names = ["logits"] + [f"present_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]

    def forward(self, *args):  # (input_ids, attention_mask, *past): one flat tuple, as export sees it
        input_ids, attention_mask, past = args[0], args[1], args[2:]
        cache = tf.DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, use_cache=True)
        presents = output.past_key_values
        flat = []
        for i in range(self.layers):
            flat += [presents.layers[i].keys, presents.layers[i].values]
        return (output.logits, *flat)


def llama_decode(size: str, batch: int = 1, seq: int = 16):
    """LLaMA-style decode step: one new token over a cache of ``seq`` past tokens."""
    dims = dict(
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        vocab_size=8000,
    )
    if size == "tiny":
        dims = dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=1000,
        )
    config = tf.LlamaConfig(**dims, max_position_embeddings=512, attn_implementation="eager")
    model = randomized(tf.LlamaForCausalLM(config), 3)
    head_dim = config.hidden_size // config.num_attention_heads
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "input_ids": torch.randint(0, config.vocab_size, (batch, 1), generator=generator),
        "attention_mask": torch.ones(batch, seq + 1, dtype=torch.int64),
    }
    axes = {"input_ids": {0: "batch"}, "attention_mask": {0: "batch", 1: "total_sequence"}}
    for i in range(config.num_hidden_layers):
        for kind in ("key", "value"):
            name = f"past_{kind}_{i}"
            inputs[name] = torch.randn(batch, config.num_key_value_heads, seq, head_dim, generator=generator)
            axes[name] = {0: "batch", 2: "past_sequence"}
    return LlamaDecodeStep(model, config.num_hidden_layers).eval(), inputs, axes


ARCHITECTURES["llama-decode"] = llama_decode
