"""Inputs to verify and time an ONNX graph on: the user's .npz, or generated ones (inputs.py) at
two bindings of the dynamic dimensions, after checking that those sizes fit in memory (sizes.py)."""

from __future__ import annotations

import os

import numpy as np
import onnx_ir as ir

from graphopt.core.errors import InputGenerationError
from graphopt.formats.onnx import inputs as input_gen
from graphopt.formats.onnx import sizes
from graphopt.formats.onnx.files import DIMENSION_HINTS


def load_feeds(path: str | os.PathLike, model: ir.Model) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            feeds = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise InputGenerationError(f"{path}: not a readable .npz file ({error})") from None
    missing = [s.name for s in input_gen.input_specs(model) if s.name not in feeds]
    if missing:
        raise InputGenerationError(f"{path}: no array for input(s) {', '.join(missing)}")
    return feeds


def verification_feeds(model: ir.Model, shapes, inputs_file, attempt: int = 0) -> list[dict[str, np.ndarray]]:
    """The user's inputs, or generated ones at two bindings of the dynamic dimensions; the
    ``attempt``-th pair of sizes on inputs.size_ladder (larger ones when the model did not run)."""
    if inputs_file:
        return [load_feeds(inputs_file, model)]
    specs = input_gen.input_specs(model)
    ladder = input_gen.size_ladder(specs)
    primary, second = ladder[min(attempt, len(ladder) - 1)]
    hints = model.meta.get(DIMENSION_HINTS) or {}  # sizes a file beside the model gave (genai_config.json)
    bindings = [input_gen.bind_dims(specs, shapes, primary, hints)]
    alternate = input_gen.bind_dims(specs, shapes, second, hints)
    if alternate != bindings[0]:
        bindings.append(alternate)
    for binding in bindings:
        sizes.refuse_unfit(model, specs, binding)
    return [input_gen.generate(model, b, seed=i) for i, b in enumerate(bindings)]
