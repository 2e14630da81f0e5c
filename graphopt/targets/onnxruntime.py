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

from graphopt.errors import BadModelError
from graphopt.formats import onnx_format
from graphopt.targets.ort_compat import clamp_ir_version

# ORT's default logger writes warnings and allocator failures straight to stderr, outside any
# session's options; graphopt reports errors itself, in one line.
ort.set_default_logger_severity(3)

LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# Op types that ORT's graph transformers produce by fusing several nodes (CPU provider).
FUSED_OP_TYPES = frozenset(
    {
        "Attention", "MultiHeadAttention", "GroupQueryAttention", "RotaryEmbedding",
        "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "LayerNormalization",
        "SimplifiedLayerNormalization", "EmbedLayerNormalization", "Gelu", "BiasGelu", "FastGelu",
        "QuickGelu", "FusedMatMul", "FusedGemm", "FusedConv", "Gemm", "BiasSoftmax",
        "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "NhwcFusedConv", "MatMulNBits",
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FusionReport:
    """What ORT ran for one graph: its kernels and the fusions its optimizers fired."""

    kernels: int
    ops: dict[str, int]
    fused: dict[str, int]  # fused-op kernels in the graph ORT runs
    fired: dict[str, int]  # of those, the ones ORT's optimizers created

    def gained_over(self, other: FusionReport) -> dict[str, int]:
        """Fused op types (and counts) this graph gets that ``other`` does not."""
        return {k: n - other.fused.get(k, 0) for k, n in self.fused.items() if n > other.fused.get(k, 0)}


@dataclasses.dataclass
class CompiledGraph:
    session: ort.InferenceSession
    report: FusionReport

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

    @property
    def name(self) -> str:
        device = "cpu" if self.provider == "CPUExecutionProvider" else self.provider
        return f"ort-{device}" + ("" if self.level == "all" else f"-{self.level}")

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = LEVELS[self.level]
        options.intra_op_num_threads = self.intra_op_threads
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        return options

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
            session = self._create_session(_session_source(model, Path(workdir)), options)
            fusion = _read_report(optimized_path, onnx_format.op_histogram(model)) if report else None
        return CompiledGraph(session, fusion)

    def profiled_session(self, model: ir.Model, prefix: Path) -> ort.InferenceSession:
        """A session that records ORT's profile under ``prefix`` (read it with end_profiling)."""
        options = self.session_options()
        options.enable_profiling = True
        options.profile_file_prefix = str(prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="graphopt-ort-") as workdir:
            return self._create_session(_session_source(model, Path(workdir)), options)

    def _create_session(self, source: bytes | str, options) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(
                source, options, providers=[self.provider],
                disabled_optimizers=list(self.disabled_optimizers) or None,
            )  # fmt: skip
        except Exception as error:  # ORT raises Fail/InvalidGraph/NotImplemented, all RuntimeError-like
            raise BadModelError(f"onnxruntime cannot load the model: {_ort_message(error)}") from None


def _session_source(model: ir.Model, workdir: Path) -> bytes | str:
    """Bytes when the model fits in memory as one protobuf, else a file with its weights beside it."""
    if not onnx_format.has_external_data(model) and onnx_format.weight_bytes(model) < onnx_format.EXTERNAL_DATA_THRESHOLD_BYTES:
        return clamp_ir_version(ir.serde.serialize_model(model)).SerializeToString()
    path = workdir / "input.onnx"
    ir.save(model, path, external_data="input.data")
    graph_only = clamp_ir_version(onnx.load(str(path), load_external_data=False))
    onnx.save(graph_only, str(path))
    return str(path)


def ab_sessions(target: OrtTarget, a: ir.Model, b: ir.Model, pairs: int = 2) -> tuple[list[CompiledGraph], list[CompiledGraph]]:
    """Fresh sessions of ``a`` and ``b`` for timing, created A1 B1 B2 A2 ... (see measure.py)."""
    return paired_sessions((target, a), (target, b), pairs)


def paired_sessions(a: tuple[OrtTarget, ir.Model], b: tuple[OrtTarget, ir.Model], pairs: int = 2) -> tuple[list[CompiledGraph], list[CompiledGraph]]:
    """Fresh sessions of two (target, model) pairs, created A1 B1 B2 A2 ...: the same model under
    two settings, or two models under one (two sessions of one model differ by 1-2% here; the
    alternating order keeps creation order from favouring either side)."""
    a_sessions: list[CompiledGraph] = []
    b_sessions: list[CompiledGraph] = []
    for i in range(pairs):
        order = [(a, a_sessions), (b, b_sessions)]
        for (target, model), out in order if i % 2 == 0 else reversed(order):
            out.append(target.compile(model, report=False))
    return a_sessions, b_sessions


def _read_report(optimized_path: Path, input_ops: dict[str, int]) -> FusionReport:
    optimized = onnx.load(str(optimized_path), load_external_data=False)
    ops: dict[str, int] = {}
    for node in optimized.graph.node:
        key = onnx_format.qualified_op(node.domain, node.op_type)
        ops[key] = ops.get(key, 0) + 1
    fused = {key: n for key, n in ops.items() if key.rsplit("::", 1)[-1] in FUSED_OP_TYPES}
    fired = {key: n - input_ops.get(key, 0) for key, n in fused.items() if n > input_ops.get(key, 0)}
    return FusionReport(kernels=len(optimized.graph.node), ops=ops, fused=fused, fired=fired)


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
        raise BadModelError(f"unknown target {name!r}; use ort-cpu or ort-cpu-<{'|'.join(LEVELS)}>")
    return OrtTarget(level=parts[2] if len(parts) == 3 else "all")
