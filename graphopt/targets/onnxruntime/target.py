"""The ONNX Runtime target: compile, report what ORT fused, run.

"Fusion fired" is read from ORT's own optimized graph: the session is created with
``optimized_model_filepath`` and the file ORT writes is read back, so the report says what ORT
really runs, not what a pattern count predicts. ``fused`` counts the kernels of fused op types in
that graph, whoever fused them (ORT, or graphopt before it); ``fired`` counts those ORT's own
optimizers created, i.e. beyond what the input already held (an export that already contains
LayerNormalization is not credited to ORT).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort

from graphopt.core.errors import BadModelError, UsageError
from graphopt.core.protocols import FusionReport
from graphopt.formats.onnx import files as onnx_files
from graphopt.targets.onnxruntime import levers, memory_weights
from graphopt.targets.onnxruntime.compat import clamp_ir_version, max_ir_version
from graphopt.targets.onnxruntime.levers import SessionSettings, combine_settings
from graphopt.targets.onnxruntime.levers import levers as session_levers

# ORT's default logger writes warnings and allocator failures straight to stderr, outside any
# session's options; graphopt reports errors itself, in one line.
ort.set_default_logger_severity(3)

IN_MEMORY_FROM_BYTES = 32 << 20  # models with more weights than this hand them to ORT from memory

LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# Op types that ORT's graph transformers produce by fusing several nodes (CPU provider).
FUSED_OP_TYPES = frozenset(
    {
        "Attention",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "RotaryEmbedding",
        "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "LayerNormalization",
        "SimplifiedLayerNormalization",
        "EmbedLayerNormalization",
        "Gelu",
        "BiasGelu",
        "FastGelu",
        "QuickGelu",
        "FusedMatMul",
        "FusedGemm",
        "FusedConv",
        "Gemm",
        "BiasSoftmax",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "NhwcFusedConv",
        "MatMulNBits",
    }
)


@dataclasses.dataclass
class CompiledGraph:
    """One ORT session (graphopt.core.protocols.Compiled)."""

    session: ort.InferenceSession
    report: FusionReport | None
    kept_alive: list = dataclasses.field(default_factory=list)  # arrays ORT reads weights from (memory_weights.py)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)


@dataclasses.dataclass(frozen=True)
class OrtTarget:
    """ONNX Runtime on one execution provider at one graph optimization level."""

    provider: str = "CPUExecutionProvider"
    level: str = "all"
    intra_op_threads: int = 0
    disabled_optimizers: tuple[str, ...] = ()
    # ORT's worker threads spin after each run by default. When two sessions are timed
    # alternately on a small machine, the idle one's spinning threads steal the cores of the
    # one being timed, which biases A/B ratios by several percent; graphopt turns it off.
    allow_spinning: bool = False
    compiler = "ORT"
    kernel_noun = "kernels"

    @property
    def device(self) -> str:
        return "cpu" if self.provider == "CPUExecutionProvider" else self.provider

    @property
    def name(self) -> str:
        return f"ort-{self.device}" + ("" if self.level == "all" else f"-{self.level}")

    def levers(self, report: FusionReport) -> list[SessionSettings]:
        """Each ORT fusion that fired on the graph switched off, and ORT_ENABLE_BASIC (levers.py)."""
        return session_levers(report)

    def combine(self, levers) -> SessionSettings:
        return combine_settings(levers)

    def with_lever(self, lever: SessionSettings) -> OrtTarget:
        return lever.apply(self)

    def write_lever(self, model_path, lever: SessionSettings | None, measured) -> str | None:
        """The recommended settings beside the model (``<model>.ort-session.json``), or an earlier
        run's file removed when there are none; returns the path written."""
        path = levers.settings_path(model_path)
        if lever is None or lever.is_default:
            path.unlink(missing_ok=True)  # an earlier run's advice does not apply to this output
            return None
        levers.write(path, lever, measured)
        return str(path)

    def lever_from_record(self, record: dict | None) -> SessionSettings | None:
        """The settings a cached decision stored (``SessionSettings.record``), or None."""
        if not record or not record.get("level"):
            return None
        return SessionSettings(record["level"], tuple(record.get("disabled_optimizers", ())))

    def bind_torch(self, compiled: CompiledGraph, input_names: list[str], runtime: list[int]):
        """``compiled`` as a callable taking a GraphModule's inputs (torch tensors, I/O binding)."""
        from graphopt.targets.onnxruntime.torch_binding import bind

        return bind(compiled, input_names, runtime, "cuda" if self.provider == "CUDAExecutionProvider" else "cpu")

    def op_times(self, sides, feeds) -> list[dict[str, float]]:
        """Milliseconds per run by op type for each (target, graph), runs interleaved (profile.py)."""
        from graphopt.targets.onnxruntime.profile import op_times

        return op_times(sides, feeds)

    def read_lever(self, model_path) -> SessionSettings | None:
        """Settings recommended beside a model by an earlier run, if any."""
        return levers.read(model_path)

    def admit(self, graph: ir.Model) -> list[str]:
        """Make ``graph`` loadable by this ORT (an IR version it reads), in place; notes for the report."""
        if graph.ir_version <= max_ir_version():
            return []
        note = f"IR version {graph.ir_version} lowered to {max_ir_version()} so onnxruntime can load it"
        graph.ir_version = max_ir_version()
        return [note]

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = LEVELS[self.level]
        options.intra_op_num_threads = self.intra_op_threads
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        return options

    def compiled_bytes(self, model: ir.Model) -> int:
        """Its weights: a CPU session loads (and pre-packs) its own copy of every weight it reads."""
        return onnx_files.weight_bytes(model)

    def compile(self, model: ir.Model, *, report: bool = True) -> CompiledGraph:
        """Create a session for ``model``; with ``report``, read back ORT's optimized graph."""
        with tempfile.TemporaryDirectory(prefix="graphopt-ort-") as workdir:
            options = self.session_options()
            optimized_path = Path(workdir) / "optimized.onnx"
            if report:
                options.optimized_model_filepath = str(optimized_path)
                # Weights of the optimized model go to a side file we never read.
                options.add_session_config_entry(
                    "session.optimized_model_external_initializers_file_name", "weights.bin"
                )
                options.add_session_config_entry(
                    "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
                )
            source, kept_alive = _session_source(model, Path(workdir), options)
            session = self._create_session(source, options)
            fusion = _read_report(optimized_path, onnx_files.op_histogram(model)) if report else None
        return CompiledGraph(session, fusion, kept_alive)

    def profiled_session(self, model: ir.Model, prefix: Path) -> ort.InferenceSession:
        """A session that records ORT's profile under ``prefix`` (read it with end_profiling)."""
        options = self.session_options()
        options.enable_profiling = True
        options.profile_file_prefix = str(prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="graphopt-ort-") as workdir:
            source, kept_alive = _session_source(model, Path(workdir), options)
            session = self._create_session(source, options)
            session._graphopt_weights = kept_alive  # ORT reads the weights from these arrays
            return session

    def _create_session(self, source: bytes | str, options) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(
                source,
                options,
                providers=[self.provider],
                disabled_optimizers=list(self.disabled_optimizers) or None,
            )
        except Exception as error:  # ORT raises Fail/InvalidGraph/NotImplemented, all RuntimeError-like
            raise BadModelError(f"onnxruntime cannot load the model: {_ort_message(error)}") from None


def _serialized(model: ir.Model) -> bytes:
    return clamp_ir_version(ir.serde.serialize_model(model)).SerializeToString()


def _session_source(model: ir.Model, workdir: Path, options) -> tuple[bytes | str, list]:
    """(what to create the session from, what must outlive it): the graph alone, ORT reading the
    weights from the files the model was loaded from, when its large weights are all still there
    (ORT loads them as it loads the user's own file: measured on a 123 M-parameter decoder, 0.35
    GB per session against 0.5-1.0 GB when handed over from memory, and nothing serialized); else
    the weights handed over from memory (memory_weights.py) when they can be; else bytes when
    the model fits in one protobuf, else a file with its weights beside it."""
    in_place = _graph_reading_weights_in_place(model, options)
    if in_place is not None:
        return in_place, []
    if onnx_files.weight_bytes(model) >= IN_MEMORY_FROM_BYTES:
        handed = memory_weights.graph_and_weights(model, options, _serialized)
        if handed is not None:
            return handed
    if (
        not onnx_files.has_external_data(model)
        and onnx_files.weight_bytes(model) < onnx_files.EXTERNAL_DATA_THRESHOLD_BYTES
    ):
        return _serialized(model), []
    return _written(model, workdir), []


def _graph_reading_weights_in_place(model: ir.Model, options) -> bytes | None:
    """The graph alone, its external initializers still naming their file, which ORT is told to
    read from the folder the model was loaded from (``session.model_external_initializers_file_
    folder_path``); None when the weights are not all in one folder or an initializer of
    IN_MEMORY_FROM_BYTES or more is held in memory (a rewrite made it)."""
    folders = set()
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if isinstance(tensor, ir.ExternalTensor):
            folders.add(str(tensor.base_dir))
        elif tensor is not None and tensor.nbytes >= IN_MEMORY_FROM_BYTES:
            return None
    if len(folders) != 1 or "" in folders:  # "": a tensor built in code, its file relative to who knows
        return None
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", folders.pop())
    return _serialized(model)


def _written(model: ir.Model, workdir: Path) -> str:
    path = workdir / "input.onnx"
    ir.save(model, path, external_data="input.data")
    graph_only = clamp_ir_version(onnx.load(str(path), load_external_data=False))
    onnx.save(graph_only, str(path))
    return str(path)


def _read_report(optimized_path: Path, input_ops: dict[str, int]) -> FusionReport:
    optimized = onnx.load(str(optimized_path), load_external_data=False)
    nodes = list(_all_nodes(optimized.graph))
    ops: dict[str, int] = {}
    for node in nodes:
        key = onnx_files.qualified_op(node.domain, node.op_type)
        ops[key] = ops.get(key, 0) + 1
    fused = {key: n for key, n in ops.items() if key.rsplit("::", 1)[-1] in FUSED_OP_TYPES}
    fired = {key: n - input_ops.get(key, 0) for key, n in fused.items() if n > input_ops.get(key, 0)}
    survivors = frozenset(node.name for node in nodes)
    return FusionReport(kernels=len(nodes), ops=ops, fused=fused, fired=fired, survivors=survivors)


def _all_nodes(graph: onnx.GraphProto):
    """The graph's nodes and those of every If/Loop/Scan body inside it (ORT optimizes and runs
    those as kernels too; a model whose work sits in an If is not two kernels)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for body in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs):
                yield from _all_nodes(body)


def _ort_message(error: BaseException) -> str:
    """ORT's message without its "[ONNXRuntimeError] : 1 : FAIL : file.cc:123 func" prefix, cut
    at a word boundary (never mid-path) when it is long."""
    text = " ".join(str(error).split())
    if "] : " in text:
        text = text.split(" : ")[-1]
    text = re.sub(r"^\S+\.(cc|h|cpp):\d+ \S+ ", "", text)
    if len(text) > 300:
        text = text[:300].rsplit(" ", 1)[0] + " ..."
    return text


def target_from_name(name: str) -> OrtTarget:
    """Parse ``ort-cpu`` or ``ort-cpu-<level>`` (levels: disable, basic, extended, all)."""
    parts = name.split("-")
    if parts[:2] != ["ort", "cpu"] or len(parts) > 3 or (len(parts) == 3 and parts[2] not in LEVELS):
        raise UsageError(f"unknown target {name!r}; use ort-cpu or ort-cpu-<{'|'.join(LEVELS)}>")
    return OrtTarget(level=parts[2] if len(parts) == 3 else "all")
