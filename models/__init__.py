"""The reference model zoo: real architectures built from transformers configs, exported to ONNX.

Weights are random (nothing can be downloaded here) but not degenerate: biases and norm weights
are non-zero, so a rewrite that drops a bias or a norm scale changes the outputs and is caught.
"""

from graphopt.models.zoo import ZOO, build, build_all_variants

__all__ = ["ZOO", "build", "build_all_variants"]
