"""Export a zoo module to ONNX with torch's default (dynamo) exporter or the legacy one.

Both exporters are what users run today and they write the same model differently (the order
of GELU's multiplications, how SDPA masks are built, how shapes are computed), which is exactly
what makes downstream fusions fire on one and not the other: the zoo keeps both, each in the
file form torch writes by default: the dynamo exporter puts the weights beside the model as
``<name>.onnx.data``, the legacy one writes them inline (below 2 GB it ignores
``external_data``). Those are the forms users hand to graphopt, so the tests run on them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

OPSET = 18


class _ReturnTensors(torch.nn.Module):
    """Return the model's tensors as a flat tuple (ONNX outputs), not a ModelOutput."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *args):
        output = self.model(**dict(zip(self.names, args)))
        if isinstance(output, torch.Tensor):
            return output
        return output[0] if not isinstance(output, tuple) or len(output) == 1 else output[0]


def export(module, inputs: dict, dynamic_axes: dict, path: Path, *, exporter: str, dynamic: bool) -> None:
    names = list(inputs)
    wrapped = _ReturnTensors(module, names) if not getattr(module, "flat_outputs", False) else module
    args = tuple(inputs.values())
    output_names = getattr(module, "output_names", ["output"])
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(
        logging.ERROR
    )  # "torchvision is not installed"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            shapes = None
            if dynamic:
                # forward(*args): the one positional structure is the tuple of all inputs.
                shapes = (
                    tuple({axis: torch.export.Dim.DYNAMIC for axis in dynamic_axes.get(n, {})} or None for n in names),
                )
            program = torch.onnx.export(
                wrapped,
                args,
                dynamo=True,
                input_names=names,
                output_names=output_names,
                dynamic_shapes=shapes,
                opset_version=OPSET,
                optimize=True,
            )
            program.save(str(path), external_data=True)  # what torch.onnx.export(f=...) writes
        elif exporter == "legacy":
            axes = {n: a for n, a in dynamic_axes.items() if n in names} if dynamic else None
            torch.onnx.export(
                wrapped,
                args,
                str(path),
                dynamo=False,
                input_names=names,
                output_names=output_names,
                dynamic_axes=axes,
                opset_version=OPSET,
                external_data=True,
            )
        else:
            raise ValueError(f"unknown exporter {exporter!r}; use dynamo or legacy")
