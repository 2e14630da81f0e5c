"""ONNX rule families. RULES is the registry, in the order the greedy policy tries them:
cleanup first (it exposes patterns), then fusions."""

from graphopt.passes.onnx import cleanup, conv, gelu, matmul, shapes

FAMILIES = {"cleanup": cleanup, "shapes": shapes, "gelu": gelu, "matmul": matmul, "conv": conv}
RULES = [r for module in FAMILIES.values() for r in module.RULES]
