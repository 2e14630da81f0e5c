"""The StableHLO Format (graphopt.protocols.Format): load, save, copy, inputs, ops, fingerprint.

Rules (passes/stablehlo/) and the ways in (``graphopt optimize model.mlir``, graphopt.jax) build on
this; until they exist, the format is not registered for ``graphopt optimize``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from graphopt.formats.stablehlo import files, module
from graphopt.formats.stablehlo.files import StableHloModule
from graphopt.protocols import InputSpec


class StableHloFormat:
    name = "stablehlo"

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

    def fingerprint(self, graph: StableHloModule) -> str:
        return module.fingerprint(graph.text)
