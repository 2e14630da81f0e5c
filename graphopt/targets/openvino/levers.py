"""OpenVINO CPU settings that change what it fuses and keep outputs equal: the levers.

``PERFORMANCE_HINT``, ``NUM_STREAMS`` and ``INFERENCE_NUM_THREADS`` change scheduling only; the
CPU plugin's ``SNIPPETS_MODE`` changes fusion (its "snippets" JIT-compile chains of element-wise
ops, and attention, into one Subgraph kernel): tiny BERT runs 40 kernels by default, 52 with
``DISABLE``, 34 with ``IGNORE_CALLBACK`` (which fuses past the plugin's own cost heuristics),
outputs unchanged. Each is timed against the defaults like every lever (core/judge.py).

``INFERENCE_PRECISION_HINT`` is always ``f32`` (bf16-capable CPUs otherwise run float32 models in
bf16): it is part of every setting, not a lever. What is recommended for an output is written
beside it as ``<model>.openvino.json``: the properties a user passes to ``compile_model``, with
the input shapes it was measured at (OpenVINO fuses more when shapes are bound with
``model.reshape``) and the measurement.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from graphopt.core.atomic import atomic_path
from graphopt.core.measure import Comparison

ALWAYS = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
SNIPPETS_MODES = ("DISABLE", "IGNORE_CALLBACK")


@dataclasses.dataclass(frozen=True)
class OpenVinoSettings:
    """Properties for ``openvino.Core().compile_model`` beyond ALWAYS."""

    properties: tuple[tuple[str, str], ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.properties

    def compile_properties(self, profiling: bool) -> dict[str, object]:
        return ALWAYS | dict(self.properties) | ({"PERF_COUNT": True} if profiling else {})

    def label(self) -> str:
        return "OpenVINO " + (", ".join(f"{k}={v}" for k, v in self.properties) or "defaults")

    def record(self) -> dict:
        return {"openvino_properties": dict(self.properties)}

    def to_json(self, measured: Comparison | None) -> dict:
        """The properties and their measurement, as the report shows a recommended setting."""
        data = {"runtime": "openvino", "properties": ALWAYS | dict(self.properties)}
        if measured is not None:
            interval = [measured.ci_low, measured.ci_high]
            data["measured"] = {"ratio_vs_original_at_defaults": measured.ratio, "ci95": interval}
        return data

    def settings_file(self, device: str, shapes: dict | None, measured: Comparison | None) -> dict:
        """What ``<model>.openvino.json`` holds: the properties, the device, the input shapes
        measured at, how to use them."""
        return self.to_json(measured) | {
            "device": device,
            "input_shapes": shapes,
            "usage": "model = openvino.Core().read_model(path); model.reshape(<input_shapes>); "
            "openvino.Core().compile_model(model, <device>, <properties>)",
        }


def levers() -> list[OpenVinoSettings]:
    return [OpenVinoSettings((("SNIPPETS_MODE", mode),)) for mode in SNIPPETS_MODES]


def combine(winners) -> OpenVinoSettings:
    """One SNIPPETS_MODE at a time: the best single lever stands for all."""
    return winners[0]


def settings_path(model_path) -> Path:
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".onnx") + ".openvino.json")


def write(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")


def read(model_path) -> OpenVinoSettings | None:
    path = settings_path(model_path)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    extra = {k: str(v) for k, v in data.get("properties", {}).items() if k not in ALWAYS}
    return OpenVinoSettings(tuple(sorted(extra.items())))
