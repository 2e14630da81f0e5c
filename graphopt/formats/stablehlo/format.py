"""The StableHLO Format (graphopt.core.protocols.Format): load, save, copy, inputs, ops, fingerprint,
and what ``graphopt optimize`` and ``check`` ask of a format (feeds, rules, writing the output).

An output is written in the form its suffix names (``.mlir`` text, ``.mlirbc`` bytecode,
``.jaxexport`` a serialized Exported when the input was one), atomically; when nothing was kept
the input module itself is written there.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from graphopt.core.atomic import check_destination
from graphopt.core.errors import GraphoptError
from graphopt.core.protocols import InputSpec
from graphopt.formats.stablehlo import feeds, files, module
from graphopt.formats.stablehlo.files import StableHloModule
from graphopt.formats.stablehlo.rules import StableHloRules


class StableHloFormat:
    name = "stablehlo"
    feed_attempts = 1  # static shapes: one set of sizes

    def accepts(self, model: object) -> bool:
        """StableHLO text (a module with a ``func.func``), MLIR bytecode, or a jax.export.Exported."""
        if isinstance(model, str):
            return "func.func" in model
        if isinstance(model, (bytes, bytearray)):
            return bytes(model[:4]) == b"ML\xefR"
        export = sys.modules.get("jax.export")  # an Exported exists only once jax is imported
        return export is not None and isinstance(model, export.Exported)

    def from_object(self, model) -> StableHloModule:
        if isinstance(model, (str, bytes, bytearray)):
            form = files.TEXT if isinstance(model, str) else files.BYTECODE
            return StableHloModule(files.parsed_text(model, "the module"), form)
        return files.from_exported(model)

    def load(self, path) -> StableHloModule:
        return files.load(path)

    def save(self, graph: StableHloModule, path, *, like=None) -> None:
        files.save(graph, path)

    def copy(self, graph: StableHloModule) -> StableHloModule:
        return dataclasses.replace(graph)  # text is immutable; the Exported is only read

    def input_specs(self, graph: StableHloModule) -> list[InputSpec]:
        symbols = [aval.shape for aval in graph.exported.in_avals] if graph.exported is not None else None
        return module.input_specs(graph.text, symbols)

    def op_types(self, graph: StableHloModule) -> Iterator[str]:
        return iter(module.op_types(graph.text))

    def portable_op_types(self, graph: StableHloModule) -> Iterator[str]:
        return iter(module.portable_op_types(graph.text))

    def fingerprint(self, graph: StableHloModule) -> str:
        return module.fingerprint(graph.text)

    def prepare(self, graph: StableHloModule) -> list[str]:
        return []  # names and shapes are in the module already

    def weight_bytes(self, graph: StableHloModule) -> int:
        """Bytes of the entry function's arguments (JAX passes weights as arguments)."""
        return sum(
            int(np.prod([d for d in s.dims if isinstance(d, int)], dtype=np.int64)) * s.dtype.itemsize
            for s in self.input_specs(graph)
        )

    def feeds(
        self, graph: StableHloModule, shapes=None, inputs_file=None, attempt: int = 0
    ) -> list[dict[str, np.ndarray]]:
        return feeds.feeds(self.input_specs(graph), shapes, inputs_file)

    def rules(
        self, rules: list, original: StableHloModule, fix_dims=None, fix_shapes=None, runs_op=None
    ) -> StableHloRules:
        if fix_dims or fix_shapes:
            raise GraphoptError(
                "--fix-dim/--fix-shape apply to ONNX models; export the StableHLO module at the sizes you need"
            )
        return StableHloRules(rules)

    def check_destination(self, source, output, *, in_place: bool, make_dirs: bool) -> None:
        check_destination(source, output, in_place=in_place, make_dirs=make_dirs, what="module")
        output_path = Path(output)
        if files.SUFFIXES.get(output_path.suffix.lower()) == files.EXPORTED and files.load(source).exported is None:
            raise GraphoptError(
                f"{output}: a .jaxexport output needs a serialized jax.export input; use .mlir or .mlirbc"
            )

    def write_output(self, graph: StableHloModule | None, source, output, *, like=None, original=None) -> None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        files.save(graph if graph is not None else original, output)
