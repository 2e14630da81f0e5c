"""ONNX rule families. RULES is the registry, in the order the greedy policy tries them:
cleanup first (it exposes patterns), then fusions; within attention, the stages in sequence."""

from graphopt.passes import named
from graphopt.passes.onnx import activation, attention, channels, cleanup, conv, embedding, gelu, gqa, hard, layer_norm, masks, matmul, ml, noops, normalization, rotary, shapes

FAMILIES = {
    "cleanup": cleanup,
    "shapes": shapes,
    "layer-norm": layer_norm,  # before noops: a LayerNorm's gamma of ones (an untrained Keras model) is its pattern, not a no-op
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
RULES = [r for module in FAMILIES.values() for r in module.RULES]


def all_rules() -> list:
    """Every registered rule, in the order the greedy policy applies them."""
    return list(RULES)


def rules_by_name(names: list[str] | None = None) -> list:
    """The named rules (all of them when ``names`` is empty); an unknown name is a usage error."""
    return named(RULES, names)
