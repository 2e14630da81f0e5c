"""A corpus Spec (graphopt/policies/training/corpus.py) as a transformers model with random weights and
the inputs it is judged on: the same model classes the zoo uses, at sampled configurations."""

from __future__ import annotations

import torch
import transformers as tf

from graphopt.models.architectures import randomized, text_inputs


def module_and_inputs(spec):
    """(module in eval mode, inputs by name, dynamic axes by input) for ``spec``."""
    if spec.arch in ("vit", "resnet", "mobilenetv2"):
        return _vision(spec)
    config = _text_config(spec)
    model = {
        "bert": tf.BertModel,
        "roberta": tf.RobertaModel,
        "distilbert": tf.DistilBertModel,
        "gpt2": tf.GPT2Model,
        "llama": tf.LlamaModel,
        "qwen2": tf.Qwen2Model,
        "opt": tf.OPTModel,
    }[spec.arch](config)
    inputs, axes = text_inputs(config, spec.batch, spec.seq, token_types=spec.arch in ("bert", "roberta"))
    if spec.arch == "roberta":  # RoBERTa's positions start after the padding index: ids must avoid it
        inputs["input_ids"] = inputs["input_ids"].clamp(min=config.pad_token_id + 1)
    return randomized(model, spec.seed % 1000), inputs, axes


def _text_config(spec):
    common = dict(vocab_size=2000, attn_implementation=spec.attention)
    ffn = 4 * spec.hidden
    if spec.arch in ("bert", "roberta"):
        config = (tf.BertConfig if spec.arch == "bert" else tf.RobertaConfig)(
            hidden_size=spec.hidden,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            intermediate_size=ffn,
            max_position_embeddings=256,
            **common,
        )
        return config
    if spec.arch == "distilbert":
        return tf.DistilBertConfig(
            dim=spec.hidden,
            n_layers=spec.layers,
            n_heads=spec.heads,
            hidden_dim=ffn,
            max_position_embeddings=256,
            **common,
        )
    if spec.arch == "gpt2":
        return tf.GPT2Config(n_embd=spec.hidden, n_layer=spec.layers, n_head=spec.heads, n_positions=256, **common)
    if spec.arch == "opt":
        return tf.OPTConfig(
            hidden_size=spec.hidden,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            ffn_dim=ffn,
            word_embed_proj_dim=spec.hidden,
            max_position_embeddings=256,
            **common,
        )
    kind = tf.LlamaConfig if spec.arch == "llama" else tf.Qwen2Config
    return kind(
        hidden_size=spec.hidden,
        intermediate_size=ffn * 2 // 3,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=256,
        **common,
    )


def _vision(spec):
    side = spec.seq
    if spec.arch == "vit":
        config = tf.ViTConfig(
            hidden_size=spec.hidden,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            intermediate_size=4 * spec.hidden,
            image_size=side,
            patch_size=8,
            attn_implementation=spec.attention,
        )
        model = tf.ViTModel(config, add_pooling_layer=False)
    elif spec.arch == "resnet":
        width = spec.hidden // 4
        config = tf.ResNetConfig(
            embedding_size=width, hidden_sizes=[width * 2**i for i in range(4)], depths=[spec.layers] * 4
        )
        model = tf.ResNetModel(config)
    else:
        config = tf.MobileNetV2Config(depth_multiplier=min(1.0, spec.hidden / 128), image_size=side)
        model = tf.MobileNetV2Model(config)
    pixels = torch.randn(spec.batch, 3, side, side, generator=torch.Generator().manual_seed(spec.seed))
    return randomized(model, spec.seed % 1000), {"pixel_values": pixels}, {"pixel_values": {0: "batch"}}
