"""The contract between graphopt's engine and what it drives: graph formats, their rule sets,
compilers and policies. Every member a way in calls is declared here, with its type and a
one-line doc; a Format, RuleSet, Target or Policy that implements these runs through
``decide()``, ``graphopt optimize``, ``graphopt check``, the torch backend and the JAX API.

What implements them today:

- Formats: ONNX on onnx_ir and onnxscript's matcher (``formats/onnx``), torch FX graphs as
  Dynamo hands them to a backend (``formats/fx``), StableHLO on jaxlib's MLIR bindings
  (``formats/stablehlo``).
- RuleSets: one per format, over the rule families of ``passes/<format>``.
- Targets: ONNX Runtime (``targets/onnxruntime``: the fusion report is ORT's optimized model;
  session settings are its levers; a profiler), OpenVINO (``targets/openvino``: the report is read
  from its profiling and runtime model; compiled for the shapes of the feeds), IREE
  (``targets/iree``: the report is its scheduling statistics' dispatches; compile flags are its
  levers; weights can be held as parameters), TorchInductor
  (``targets/inductor``: the report is read from the code Inductor generated; frozen weights are
  its lever), XLA through PJRT
  (``targets/xla``: the report is the optimized HLO's fusions).
- Policies: greedy, the measured search and the learned ranker (``policies/``).

Optional capabilities are protocols of their own, checked with ``isinstance``, never discovered
by ``getattr``: a Target with levers (``Tunable``), one that writes its recommended settings
beside a model (``SettingsFile``), one that can split a run's time by op type (``Profiler``),
one that freezes weights for inference (``Freezing``), one whose runnables take torch tensors
(``TorchRunner``), one that compiles for the shapes of the feeds it runs (``ShapeBinding``), one
that reads only some of a format's ops (``OpVocabulary``: rewrites into others are not offered),
one that holds weights as parameters bound at load (``ParameterHolding``), one whose runnables a
JAX function's arguments call (``JaxRunner``), one that runs them under ``jax.jit`` with its options
(``JaxJit``), one that keeps what it compiled (``CompileCache``), one whose users pick among
standard levels (``StandardLevels``: the bar is the fastest of them).
A graph is opaque to the engine: only its Format and RuleSet look inside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Graph = Any  # a format's own graph object (onnx_ir.Model, torch.fx.GraphModule, a StableHloModule)
Feeds = Mapping[str, Any]  # input name -> value (numpy arrays; torch tensors for FX graphs)


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


@dataclasses.dataclass(frozen=True)
class NearMiss:
    """A place where a rule's pattern matched but its check refused, with the reason."""

    rule: str
    anchor: str
    matched_nodes: int  # how many nodes of the pattern matched before it failed
    reason: str


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
class RuleSet(Protocol):
    """A format's rewrite rules, as a policy sees them: families of named rules, sites, rewrites."""

    def families(self) -> dict[str, list[str]]:
        """Family -> rule names, in registry order."""

    def sites(self, graph: Graph) -> list[Site]:
        """Every place a rule matches, found by a dry run (``graph`` is unchanged)."""

    def near_misses(self, graph: Graph, sites: list[Site]) -> list[NearMiss]:
        """Places a rule's pattern matched but its check refused (what the report lists)."""

    def fixed_input(self, graph: Graph) -> tuple[Candidate | None, list[str]]:
        """The input with only the user's fixed shapes applied (a candidate of its own), and notes."""

    def rewrite(self, label: str, graph: Graph, rules: Sequence[str], excluded=frozenset()) -> Candidate:
        """A rewritten copy of ``graph``: ``rules`` applied to a fixpoint except at the ``excluded``
        site classes (``Site.site_class``) and single Sites."""


@runtime_checkable
class Format(Protocol):
    """One IR on its own library: reading, writing and asking questions of a graph."""

    name: str
    feed_attempts: int  # how many sets of generated input sizes ``feeds`` can offer (growing)

    def accepts(self, model: object) -> bool:
        """Whether ``model`` (an object in memory, not a path) is a graph of this format."""

    def from_object(self, model: object) -> Graph:
        """The graph for an in-memory ``model`` that ``accepts`` took (a proto, an Exported...)."""

    def load(self, path) -> Graph:
        """The graph in a file (weights beside it included); one-line GraphoptError if it is not one."""

    def save(self, graph: Graph, path, *, like=None) -> None:
        """``graph`` to ``path``, atomically; ``like``: the input it came from (its weight layout)."""

    def copy(self, graph: Graph) -> Graph:
        """A copy a rewrite may change without touching ``graph`` (weights shared, not copied)."""

    def prepare(self, graph: Graph) -> list[str]:
        """Make ``graph`` ready for the rules, in place (unique names, inferred shapes); notes."""

    def input_specs(self, graph: Graph) -> list[InputSpec]:
        """The graph's inputs with their dtypes and (symbolic) dims."""

    def op_types(self, graph: Graph) -> Iterator[str]:
        """Every node's op type, subgraphs included."""

    def portable_op_types(self, graph: Graph) -> Iterator[str]:
        """``op_types`` in the one vocabulary every format shares (ONNX operator names: ``aten.mm``
        and ``stablehlo.dot_general`` are both "MatMul"); an op with no counterpart keeps its name.
        What the learned policy's graph features count (policies/features.GRAPH_OPS)."""

    def fingerprint(self, graph: Graph) -> str:
        """Equal for graphs that compute the same way (what caches are keyed on)."""

    def weight_bytes(self, graph: Graph) -> int:
        """Bytes of the weights the graph holds (what saving costs; what memory checks weigh)."""

    def feeds(self, graph: Graph, shapes=None, inputs_file=None, attempt: int = 0) -> list[Feeds]:
        """Inputs to verify and time on: from ``inputs_file``, or generated (``attempt`` grows them)."""

    def rules(self, rules: list, original: Graph, fix_dims=None, fix_shapes=None, runs_op=None) -> RuleSet:
        """The RuleSet of ``rules`` for candidates of ``original``, with the user's fixed shapes;
        ``runs_op(domain, op_type)``: the target's vocabulary (OpVocabulary), None for any op."""

    def check_destination(self, source, output, *, in_place: bool, make_dirs: bool) -> None:
        """Refuse (GraphoptError) an output path that would overwrite the input or cannot be written."""

    def write_output(self, graph: Graph | None, source, output, *, like: Graph, original: Graph) -> None:
        """``graph`` to ``output`` with its weights, or (None) ``original``, the input handed back."""


@runtime_checkable
class Compiled(Protocol):
    """A graph compiled by a Target: run it on feeds, read what the compiler made of it."""

    report: FusionReport | None  # None when compiled with ``report=False`` (timing copies)
    output_names: list[str]

    def run(self, feeds: Feeds) -> list[np.ndarray]:
        """The outputs for ``feeds``, as numpy arrays, in ``output_names`` order."""


@runtime_checkable
class Lever(Protocol):
    """A compiler setting that changes what it fuses and keeps outputs equal (an ORT optimizer
    switched off, Inductor's frozen weights)."""

    @property
    def is_default(self) -> bool: ...

    def label(self) -> str:
        """What a report calls this setting."""

    def record(self) -> dict:
        """The setting as JSON, to replay a decision (``Tunable.lever_from_record`` reads it)."""

    def to_json(self, measured) -> dict:
        """The setting and its measurement (a Comparison or None), as the report shows it."""


@runtime_checkable
class Target(Protocol):
    """A compiler on a device: compiles a graph into a runnable with a FusionReport."""

    name: str  # as the registry knows it: "ort-cpu", "inductor-cpu", "xla-cpu"
    device: str
    compiler: str  # what reports call it: "ORT", "Inductor", "XLA"
    kernel_noun: str  # what it runs, in its own terms: "kernels", "fusions"

    def compile(self, graph: Graph, *, report: bool = True) -> Compiled:
        """A fresh runnable of ``graph`` (with its FusionReport unless ``report`` is False)."""

    def compiled_bytes(self, graph: Graph) -> int:
        """Memory one compilation of ``graph`` will hold, estimated before compiling (what the
        engine's memory plan counts, core/memory.py)."""

    def admit(self, graph: Graph) -> list[str]:
        """Make ``graph`` loadable by this compiler (an IR version it reads), in place; notes."""


@runtime_checkable
class Tunable(Protocol):
    """A Target with levers: settings worth timing for a graph, kept when faster with confidence."""

    def levers(self, report: FusionReport) -> list[Lever]:
        """Settings worth timing for a graph the compiler reported this way."""

    def combine(self, levers: Sequence[Lever]) -> Lever:
        """Several winning levers as one setting."""

    def with_lever(self, lever: Lever) -> Target:
        """This target compiling with ``lever``."""

    def lever_from_record(self, record: dict | None) -> Lever | None:
        """A lever stored as ``lever.record()`` in a cached decision, or None."""


@runtime_checkable
class SettingsFile(Protocol):
    """A Tunable Target whose recommended setting is written beside the model it was measured on."""

    def write_lever(self, model_path, lever: Lever | None, measured) -> str | None:
        """The setting beside ``model_path`` (or an old one removed when None); the path written."""

    def read_lever(self, model_path) -> Lever | None:
        """The setting an earlier run wrote beside ``model_path``, if any."""


@runtime_checkable
class Freezing(Protocol):
    """A Target that can hold a graph's weights as constants, folded and prepacked, for inference
    (Inductor's ``freezing``): judged against the same compiler with weights as inputs."""

    def freezing(self, args: Sequence) -> Target:
        """This target with the weights among the call's ``args`` frozen into what it compiles."""


@runtime_checkable
class TorchRunner(Protocol):
    """A Target whose compiled graph can be called with a Dynamo graph's torch tensors (the ORT
    route: inputs bound where the tensors lie, outputs handed back without a copy)."""

    def bind_torch(self, compiled: Compiled, input_names: list[str], runtime: list[int]):
        """``compiled`` as a callable taking the GraphModule's inputs (``runtime``: which feed the session)."""


@runtime_checkable
class ParameterHolding(Protocol):
    """A Target that can hold some inputs as parameters, bound once when the module is loaded
    (IREE: what depends on weights alone then runs once, not per call): judged against the same
    compiler with every input passed per call."""

    def holding(self, names) -> Target:
        """This target with the inputs ``names`` (the weights) held as parameters."""


@runtime_checkable
class StandardLevels(Protocol):
    """A Tunable Target whose users pick among a few standard settings on their own (IREE's O3
    beside its default O0): the original is timed at each, the fastest with confidence is the bar
    every candidate and lever is judged against, and levers apply on top of it."""

    def standard_levels(self) -> list[Lever]:
        """The settings besides the defaults a user of this compiler would try without graphopt."""


@runtime_checkable
class JaxJit(Protocol):
    """A Target that runs a JAX function under ``jax.jit`` itself (XLA): the JAX API hands back
    ``jit(fn)`` with the target's compile options."""

    def jit(self, fn):
        """``jax.jit(fn)`` compiled with this target's options."""


@runtime_checkable
class CompileCache(Protocol):
    """A Target that keeps what it compiled, by graph and settings (IREE, whose compiles dominate
    a search): compiling a graph again only loads it, so the engine measures what a timing's
    fresh compilations cost from a second compilation of the original instead of the first."""

    keeps_compiled: bool  # always True: the marker the engine checks with isinstance


@runtime_checkable
class JaxRunner(Protocol):
    """A Target whose compiled module the JAX API calls with a function's flattened arguments
    (targets other than XLA, which runs under ``jax.jit`` itself)."""

    def bind_jax(self, compiled: Compiled, exported, fallback):
        """``compiled`` as a callable with the exported function's signature; arguments of other
        shapes go to ``fallback``."""

    def as_is(self, fn):
        """``fn`` run by this target with no decision: compiled per signature of its arguments."""


@runtime_checkable
class ShapeBinding(Protocol):
    """A Target that compiles for the shapes of the inputs it will run on (OpenVINO fuses more with
    static shapes, as its users deploy): the engine binds it to the first feeds before compiling."""

    def bound_to(self, feeds: Feeds) -> Target:
        """This target compiling for the shapes of ``feeds`` (others get a compilation of their own)."""


@runtime_checkable
class OpVocabulary(Protocol):
    """A Target that reads only some ops of a format: a site whose replacement holds another is not
    offered to it (ORT's contrib ops are not offered to OpenVINO)."""

    def runs_op(self, domain: str, op_type: str) -> bool:
        """Whether the compiler reads ``op_type`` of ``domain``."""


@runtime_checkable
class Profiler(Protocol):
    """A Target that can split a run's time by op type (``optimize --plot``)."""

    def op_times(self, sides: Sequence[tuple[Target, Graph]], feeds: Feeds) -> list[dict[str, float]]:
        """Milliseconds per run by op type for each (target, graph), runs interleaved."""


@dataclasses.dataclass(frozen=True)
class SearchContext:
    """What a policy may read besides the graph: the inputs a run verifies and times on, the
    target's fusion report of the original, and the target's name."""

    feeds: Sequence[Feeds]
    report: FusionReport | None
    target: str


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A policy's expectation for one candidate, and why: what a report shows of a learned order."""

    label: str
    score: float
    drivers: tuple[tuple[str, float], ...] = ()  # (feature, contribution), strongest first


@runtime_checkable
class Policy(Protocol):
    """Proposes candidates from sites and what has been measured so far (the evaluation log).

    Built with configuration (and, for a learned policy, weights); never compiles or times
    anything itself."""

    name: str
    explanation: list[Prediction]  # its predictions for the last graph proposed on, best first (empty: none)

    def propose(self, graph: Graph, rules: RuleSet, log, context: SearchContext | None = None) -> Iterator[Candidate]:
        """Candidates, lazily, best guess first; it may read ``log`` between them."""
