"""A Dynamo graph as an ONNX model: the conversion behind the ORT route of
``torch.compile(model, backend="graphopt")``.

Dynamo hands the backend a GraphModule whose placeholders include the module's parameters. ORT
fuses and prepacks only what it sees as constant weights, so the weights (the positions in
``baked``: parameters and the buffers the graph only reads, formats/fx/weights.py) become
initializers, as Inductor's ``freezing`` would for inference, and only the real tensor inputs
stay inputs. A graph compiled with dynamic shapes takes ``SymInt`` placeholders: they are read
from the tensors' sizes inside the exported module, and the tensors' symbolic dims are exported
as symbolic axes, so one session serves every size. torch's ONNX exporter (dynamo) does the work.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import onnx_ir as ir
import torch

from graphopt.formats.fx.graphs import symbol_sources, symbolic_dims


class _Frozen(torch.nn.Module):
    """``gm`` with its weight inputs held as buffers (exported, they become initializers) and
    its SymInt inputs read from the sizes of the tensors it is given."""

    def __init__(self, gm: torch.fx.GraphModule, inputs: list, baked: list[int], symbols: dict[int, tuple[int, int]]):
        super().__init__()
        self.gm, self.count, self.baked, self.symbols = gm, len(inputs), baked, symbols
        for i in baked:
            self.register_buffer(f"baked_{i}", inputs[i].detach(), persistent=True)

    def forward(self, *runtime):
        given = dict(zip(runtime_positions(self.count, self.baked, self.symbols), runtime))
        args = []
        for i in range(self.count):
            if i in self.baked:
                args.append(getattr(self, f"baked_{i}"))
            elif i in self.symbols:
                position, dim = self.symbols[i]
                args.append(given[position].shape[dim])
            else:
                args.append(given[i])
        return tuple(self.gm(*args))


def runtime_positions(count: int, baked, symbols) -> list[int]:
    """Positions of the GraphModule's inputs that the session takes: tensors that are not weights."""
    return [i for i in range(count) if i not in baked and i not in symbols]


def export(gm: torch.fx.GraphModule, inputs: list, baked: list[int]) -> tuple[ir.Model, list[int]]:
    """The graph as an onnx_ir model (weights at ``baked`` as initializers, the real inputs named
    input_<i>, symbolic dims as symbolic axes), and the positions of the inputs it takes."""
    symbols = symbol_sources(gm)
    positions = runtime_positions(len(inputs), baked, symbols)
    dynamic = symbolic_dims(gm)
    shapes = tuple({d: torch.export.Dim.DYNAMIC for d in dynamic.get(i, ())} or None for i in positions)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    module = _Frozen(gm, inputs, baked, symbols).eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            tuple(inputs[i] for i in positions),
            dynamo=True,
            input_names=[f"input_{i}" for i in positions],
            optimize=True,
            dynamic_shapes=(shapes,) if dynamic else None,  # one entry: forward(*runtime)
        )
    return program.model, positions
