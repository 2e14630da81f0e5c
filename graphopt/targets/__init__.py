"""One module per downstream compiler: compile a graph, read back what it fused, run it, time it."""

from graphopt.targets.onnxruntime import OrtTarget, target_from_name

__all__ = ["OrtTarget", "target_from_name"]
