"""The contracts between graphopt's engine and what it drives: graph formats, their rule sets,
compilers and policies.

The engine (graphopt/decide.py, graphopt/search/) imports only this module, the harness and the
statistics; a format (ONNX on onnx_ir, later torch FX and StableHLO), a compiler (ONNX Runtime,
later Inductor and XLA) or a policy (greedy, the measured search, later a learned one) plugs in by
implementing these small protocols. A graph is opaque to the engine: only its Format and RuleSet
look inside it.

How the next two fit (what the torch.compile and StableHLO issues build on):
- torch FX: Format over ``torch.fx.GraphModule`` (copy = ``copy.deepcopy``; inputs = placeholder
  metadata, ``SymInt`` dims as symbols); RuleSet over ``torch.fx.subgraph_rewriter`` or Inductor's
  pattern matcher; Targets ``inductor`` (compile = ``torch.compile`` / ``compile_fx``, report =
  the generated kernels and Inductor's counters, levers = Inductor config entries) and
  ``onnxruntime`` (compile = export to ONNX then the ONNX path).
- StableHLO: Format over jaxlib's MLIR bindings (text, bytecode, ``jax.export.Exported``);
  RuleSet over MLIR rewrites; Target ``xla`` (compile through PJRT, report = the fusions in
  ``compiled.as_text()``, levers = per-compile XLA options that keep outputs equivalent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Graph = Any  # a format's own graph object (onnx_ir.Model, torch.fx.GraphModule, an MLIR module)
Feeds = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class FusionReport:
    """What a compiler ran for one graph, read from the compiler's own output."""

    kernels: int  # kernels (ORT nodes, Inductor kernels, XLA fusions + unfused ops) in what runs
    ops: dict[str, int]  # op type -> count in what runs
    fused: dict[str, int]  # fused op types -> count, whoever fused them
    fired: dict[str, int]  # of those, the ones the compiler's own passes made
    survivors: frozenset[str] = frozenset()  # names of the input graph's nodes still present after compiling

    def gained_over(self, other: FusionReport) -> dict[str, int]:
        """Fused op types (and counts) this graph gets that ``other`` does not."""
        return {k: n - other.fused.get(k, 0) for k, n in self.fused.items() if n > other.fused.get(k, 0)}


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One graph input: its name, element type, and dims (ints, symbol names, or None)."""

    name: str
    dtype: np.dtype
    dims: tuple[int | str | None, ...]


@dataclasses.dataclass(frozen=True)
class Site:
    """One rule matched at one place in one graph: an action the policy can take or leave.

    The fields after ``nodes`` are features for policies: what the match reads and touches. They
    are facts about the graph found by a dry run; finding a site changes nothing.
    """

    rule: str
    graph: str  # "" for the main graph, else a path to the subgraph ("If_3/then_branch")
    anchor: str  # the node the pattern is rooted at
    nodes: tuple[str, ...]  # every node the match covers
    signature: str = ""  # dtypes and shapes the match reads from outside it
    op_types: tuple[str, ...] = ()  # op types of the covered nodes, in order
    reads: tuple[str, ...] = ()  # names of the non-constant values it reads from outside

    @property
    def site_class(self) -> tuple[str, str]:
        """Sites of one rule reading values of the same types and shapes cost the same after
        compilation (the layers of a transformer): a search decides them together."""
        return self.rule, self.signature

    def fused_now(self, report: FusionReport) -> bool:
        """Whether the compiler already fuses these nodes away (none survives into what it runs)."""
        return not (set(self.nodes) & report.survivors)


@dataclasses.dataclass
class Candidate:
    """A proposal: ``graph`` is the input rewritten at the sites in ``applied``."""

    label: str
    graph: Graph
    applied: list[Site]
    rules: tuple[str, ...] = ()  # the rule names it was rewritten with, to refine it further
    excluded: frozenset = frozenset()  # site classes (rule, signature) and single Sites left out
    planned: int | None = None  # the policy's estimate, when proposing this one, of how many it will propose


@runtime_checkable
class Format(Protocol):
    """One IR on its own library: reading, writing and asking questions of a graph."""

    name: str

    def load(self, path) -> Graph: ...
    def save(self, graph: Graph, path, *, like=None) -> None: ...  # ``like``: the input it came from
    def copy(self, graph: Graph) -> Graph: ...
    def input_specs(self, graph: Graph) -> list[InputSpec]: ...
    def op_types(self, graph: Graph) -> Iterator[str]: ...  # every node's op type, subgraphs included
    def fingerprint(self, graph: Graph) -> str: ...  # equal for graphs that compute the same way


@runtime_checkable
class RuleSet(Protocol):
    """A format's rewrite rules, as a policy sees them: families of named rules, sites, rewrites."""

    def families(self) -> dict[str, list[str]]: ...  # family -> rule names, in registry order
    def sites(self, graph: Graph) -> list[Site]: ...
    def rewrite(self, label: str, graph: Graph, rules: Sequence[str], excluded=frozenset()) -> Candidate:
        """A rewritten copy of ``graph``: ``rules`` applied to a fixpoint except at the ``excluded``
        site classes (``Site.site_class``) and single Sites."""


@runtime_checkable
class Compiled(Protocol):
    report: FusionReport | None
    output_names: list[str]

    def run(self, feeds: Feeds) -> list[np.ndarray]: ...


@runtime_checkable
class Lever(Protocol):
    """A compiler setting that changes what it fuses (an ORT optimizer switched off, an XLA option)."""

    @property
    def is_default(self) -> bool: ...
    def label(self) -> str: ...


@runtime_checkable
class Target(Protocol):
    """A compiler on a device: compiles a graph into a runnable with a FusionReport."""

    name: str
    device: str

    def compile(self, graph: Graph, *, report: bool = True) -> Compiled: ...
    def levers(self, report: FusionReport) -> list[Lever]: ...  # settings worth timing for this graph
    def combine(self, levers: Sequence[Lever]) -> Lever: ...  # several winning levers as one setting
    def with_lever(self, lever: Lever) -> Target: ...


@dataclasses.dataclass(frozen=True)
class SearchContext:
    """What a policy may read besides the graph: the inputs a run verifies and times on, the
    target's fusion report of the original, and the target's name."""

    feeds: Sequence[Feeds]
    report: FusionReport | None
    target: str


@runtime_checkable
class Policy(Protocol):
    """Proposes candidates from sites and what has been measured so far (the evaluation log).

    Built with configuration (and, for a learned policy, weights); never compiles or times
    anything itself."""

    name: str

    def propose(self, graph: Graph, rules: RuleSet, log, context: SearchContext | None = None) -> Iterator[Candidate]: ...
