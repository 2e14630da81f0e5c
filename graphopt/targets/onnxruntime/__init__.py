"""ONNX Runtime as a graphopt Target: sessions, the fusion report read from ORT's optimized
model, session levers, the profiler."""

from graphopt.targets.onnxruntime.target import LEVELS, CompiledGraph, OrtTarget, target_from_name

__all__ = ["LEVELS", "CompiledGraph", "OrtTarget", "target_from_name"]
