"""The ONNX format on onnx_ir and onnxscript: files, shapes, inputs, rules, matching, rewriting."""

from graphopt.formats.onnx.adapter import OnnxFormat, OnnxRules

__all__ = ["OnnxFormat", "OnnxRules"]
