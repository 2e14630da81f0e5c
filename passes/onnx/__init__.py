"""ONNX rule families. RULES is the registry, in the order the greedy policy tries them:
cleanup first (it exposes patterns), then fusions; within attention, the stages in sequence."""

from graphopt.passes import Registry
from graphopt.passes.onnx import (
    activation,
    attention,
    channels,
    cleanup,
    conv,
    embedding,
    gelu,
    gqa,
    hard,
    layer_norm,
    masks,
    matmul,
    ml,
    noops,
    normalization,
    rotary,
    shapes,
)

FAMILIES = {
    "cleanup": cleanup,
    "shapes": shapes,
    # before noops: a LayerNorm's gamma of ones (an untrained Keras model) is its pattern, not a no-op
    "layer-norm": layer_norm,
    "noops": noops,
    "masks": masks,
    "embedding": embedding,
    "normalization": normalization,
    "rotary": rotary,
    "attention": attention,
    "gqa": gqa,
    "gelu": gelu,
    "activation": activation,
    "hard": hard,
    "matmul": matmul,
    "conv": conv,
    "channels": channels,
    "ml": ml,
}
REGISTRY = Registry("onnx", FAMILIES)
RULES = REGISTRY.all_rules()
families, all_rules, rules_by_name = REGISTRY.families, REGISTRY.all_rules, REGISTRY.rules_by_name
