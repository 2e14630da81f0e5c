"""The FX Format and RuleSet (graphopt.core.protocols): a Dynamo graph as the engine sees it.

A graph is the ``torch.fx.GraphModule`` Dynamo hands a backend; feeds map its placeholders'
names to the call's values (tensors, and ints for SymInt sizes), so a Target runs it on the real
inputs. FX graphs live in memory, in a torch.compile call: there is no file to load or write,
and the file members refuse with a one-line error. The RuleSet is the FX driver (rewrite.py)
over the rules of ``passes/fx``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.fx

from graphopt.core.errors import GraphoptError
from graphopt.core.protocols import Candidate, Feeds, InputSpec, NearMiss, Site
from graphopt.core.rules import by_family
from graphopt.formats.fx import rewrite
from graphopt.formats.fx.graphs import copy_module, fingerprint
from graphopt.formats.fx.ops import PORTABLE_OPS, kind, meta

NOT_A_FILE = "FX graphs come from torch.compile(model, backend='graphopt'), not from files"


def placeholders(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [node for node in gm.graph.nodes if node.op == "placeholder"]


def feeds_of(gm: torch.fx.GraphModule, args: Sequence) -> dict[str, object]:
    """The call's arguments by placeholder name: the feeds every FX Target runs on."""
    return {node.name: value for node, value in zip(placeholders(gm), args)}


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy element type of a torch dtype (bfloat16, which numpy lacks, as float32)."""
    return np.dtype("float32") if dtype == torch.bfloat16 else torch.empty((), dtype=dtype).numpy().dtype


def _dim(size) -> int | str:
    return size if isinstance(size, int) else str(size)


class FxFormat:
    name = "fx"
    feed_attempts = 1  # the real inputs of the call: nothing to grow

    def accepts(self, model: object) -> bool:
        return isinstance(model, torch.fx.GraphModule)

    def from_object(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        return model

    def load(self, path):
        raise GraphoptError(NOT_A_FILE)

    def save(self, graph, path, *, like=None) -> None:
        raise GraphoptError(NOT_A_FILE)

    def check_destination(self, source, output, *, in_place: bool, make_dirs: bool) -> None:
        raise GraphoptError(NOT_A_FILE)

    def write_output(self, graph, source, output, *, like, original) -> None:
        raise GraphoptError(NOT_A_FILE)

    def copy(self, graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
        return copy_module(graph)

    def prepare(self, graph: torch.fx.GraphModule) -> list[str]:
        return []  # Dynamo's graph has unique names and example values already

    def input_specs(self, graph: torch.fx.GraphModule) -> list[InputSpec]:
        specs = []
        for node in placeholders(graph):
            example = meta(node)
            if isinstance(example, torch.Tensor):
                specs.append(InputSpec(node.name, numpy_dtype(example.dtype), tuple(_dim(d) for d in example.shape)))
            else:
                specs.append(InputSpec(node.name, np.dtype("int64"), ()))
        return specs

    def op_types(self, graph: torch.fx.GraphModule) -> Iterator[str]:
        return (
            kind(node) or node.op
            for node in graph.graph.nodes
            if node.op in ("call_function", "call_method", "call_module")
        )

    def portable_op_types(self, graph: torch.fx.GraphModule) -> Iterator[str]:
        return (PORTABLE_OPS.get(op, op) for op in self.op_types(graph))

    def fingerprint(self, graph: torch.fx.GraphModule) -> str:
        return fingerprint(graph)

    def weight_bytes(self, graph: torch.fx.GraphModule) -> int:
        """Bytes of the static-size tensor inputs (Dynamo lifts a module's weights into inputs)."""
        total = 0
        for node in placeholders(graph):
            example = meta(node)
            if isinstance(example, torch.Tensor) and all(isinstance(d, int) for d in example.shape):
                total += example.numel() * example.element_size()
        return total

    def feeds(self, graph: torch.fx.GraphModule, shapes=None, inputs_file=None, attempt: int = 0) -> list[Feeds]:
        raise GraphoptError("FX graphs are verified on the call's own inputs (graphopt.formats.fx.format.feeds_of)")

    def rules(
        self, rules: list, original: torch.fx.GraphModule, fix_dims=None, fix_shapes=None, runs_op=None
    ) -> FxRules:
        if fix_dims or fix_shapes:
            raise GraphoptError("fixed shapes apply to ONNX models; torch.compile decides sizes through Dynamo")
        return FxRules(list(rules))


@dataclasses.dataclass
class FxRules:
    """The FX rules a graph may get, as sites a policy takes or leaves."""

    rules: list

    def families(self) -> dict[str, list[str]]:
        return by_family(self.rules)

    def sites(self, graph: torch.fx.GraphModule) -> list[Site]:
        return [site for _, _, site in rewrite.find(graph, self.rules)]

    def near_misses(self, graph: torch.fx.GraphModule, sites: list[Site]) -> list[NearMiss]:
        return rewrite.near_misses(graph, self.rules)

    def fixed_input(self, graph: torch.fx.GraphModule) -> tuple[Candidate | None, list[str]]:
        return None, []

    def rewrite(self, label: str, graph: torch.fx.GraphModule, rules: Sequence[str], excluded=frozenset()) -> Candidate:
        chosen = [r for r in self.rules if r.name in set(rules)]
        candidate = copy_module(graph)
        applied = rewrite.rewrite_to_fixpoint(
            candidate, chosen, lambda site: site.site_class not in excluded and site not in excluded
        )
        return Candidate(label, candidate, applied, tuple(r.name for r in chosen), frozenset(excluded))
