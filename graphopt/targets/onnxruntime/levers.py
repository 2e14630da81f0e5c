"""ORT's own rewrites that cost time: find them by measurement and recommend turning them off.

ORT's level-2 fusions are chosen by pattern, not by cost, and some lose on small shapes (its
MatMul+Add fusion wraps 3-D MatMuls in Reshape/Gemm/Reshape; a fusion can also block a better
kernel). No graph rewrite can stop ORT from firing them on the graph it is handed, so this is a
session setting: ``disabled_optimizers`` (by the name ORT registers the pass under) or a lower
optimization level.

The levers tried are the ones that can matter for this graph: each ORT fusion that fired on it
(read from the compiled graph's report) and ORT_ENABLE_BASIC (which skips them all). Each is
timed against the same graph at ORT's defaults, interleaved, and kept only if faster by the
loop's MIN_GAIN with confidence; the effects are then combined and the combination is judged
against the original once more, so the recommendation always comes with its own measurement.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from graphopt.core.atomic import atomic_path
from graphopt.core.measure import Comparison
from graphopt.core.protocols import FusionReport

# The ORT graph transformer that makes each fused op type (ORT 1.2x-1.3x names, CPU provider).
ORT_FUSION_PASSES = {
    "Gemm": "MatMulAddFusion",
    "FusedMatMul": "MatMulScaleFusion",
    "QuickGelu": "QuickGeluFusion",
    "Gelu": "GeluFusion",
    "BiasGelu": "BiasGeluFusion",
    "FastGelu": "FastGeluFusion",
    "LayerNormalization": "LayerNormFusion",
    "SimplifiedLayerNormalization": "SimplifiedLayerNormFusion",
    "SkipLayerNormalization": "SkipLayerNormFusion",
    "Attention": "AttentionFusion",
    "EmbedLayerNormalization": "EmbedLayerNormFusion",
    "FusedConv": "ConvActivationFusion",
    "FusedGemm": "GemmActivationFusion",
    "BiasSoftmax": "BiasSoftmaxFusion",
}


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """What to set on ``onnxruntime.SessionOptions`` / ``InferenceSession`` to run the output."""

    level: str = "all"
    disabled_optimizers: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.level == "all" and not self.disabled_optimizers

    def record(self) -> dict:
        """As stored in a cached decision (``lever_from_record`` reads it back)."""
        return {"level": self.level, "disabled_optimizers": list(self.disabled_optimizers)}

    def apply(self, target):
        """``target`` (an OrtTarget) under these settings."""
        return dataclasses.replace(target, level=self.level, disabled_optimizers=self.disabled_optimizers)

    def label(self) -> str:
        parts = [] if self.level == "all" else [f"level {self.level}"]
        parts += [f"without {name}" for name in self.disabled_optimizers]
        return "ORT " + (", ".join(parts) or "defaults")

    def to_json(self, measured: Comparison | None) -> dict:
        level = {
            "all": "ORT_ENABLE_ALL",
            "extended": "ORT_ENABLE_EXTENDED",
            "basic": "ORT_ENABLE_BASIC",
            "disable": "ORT_DISABLE_ALL",
        }
        data = {
            "graph_optimization_level": level[self.level],
            "disabled_optimizers": list(self.disabled_optimizers),
            "usage": "options.graph_optimization_level = "
            "onnxruntime.GraphOptimizationLevel.<graph_optimization_level>; "
            "onnxruntime.InferenceSession(model, options, disabled_optimizers=<disabled_optimizers>)",
        }
        if measured is not None:
            data["measured"] = {
                "ratio_vs_original_at_ort_defaults": measured.ratio,
                "ci95": [measured.ci_low, measured.ci_high],
            }
        return data


def levers(report: FusionReport) -> list[SessionSettings]:
    """Settings worth timing for a graph whose compiled form is ``report``."""
    fired = sorted({key.rsplit("::", 1)[-1] for key in report.fired})
    names = [ORT_FUSION_PASSES[op] for op in fired if op in ORT_FUSION_PASSES]
    return [SessionSettings(disabled_optimizers=(name,)) for name in names] + [SessionSettings(level="basic")]


def combine_settings(winners: list[SessionSettings]) -> SessionSettings:
    """Levers that each won, as one setting; ``winners`` best first. A lower level subsumes
    switching off its fusions, so when one won, the best single lever stands for all."""
    if any(lever.level != "all" for lever in winners):
        return winners[0]
    return SessionSettings(disabled_optimizers=tuple(name for lever in winners for name in lever.disabled_optimizers))


def write(path: Path, settings: SessionSettings, measured: Comparison | None) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(settings.to_json(measured), indent=1) + "\n")


def settings_path(model_path) -> Path:
    """Where the recommended session settings of an output model live: beside it."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".onnx") + ".ort-session.json")


def read(model_path) -> SessionSettings | None:
    path = settings_path(model_path)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    level = {
        "ORT_ENABLE_ALL": "all",
        "ORT_ENABLE_EXTENDED": "extended",
        "ORT_ENABLE_BASIC": "basic",
        "ORT_DISABLE_ALL": "disable",
    }
    return SessionSettings(level[data["graph_optimization_level"]], tuple(data["disabled_optimizers"]))
