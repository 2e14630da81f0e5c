"""The workloads bench/ runs: zoo variants (exported once and cached) and the user's own files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from graphopt.models.zoo import ZOO, build, variant_name

# What onnxruntime.transformers.optimizer calls each architecture, and its head count / width.
ORT_MODEL_TYPE = {"bert": "bert", "gpt2": "gpt2", "vit": "vit", "llama": "gpt2", "llama-decode": "gpt2"}
HEADS = {"base": {"bert": (12, 768), "gpt2": (12, 768), "vit": (12, 768), "llama": (8, 512), "llama-decode": (8, 512)},
         "tiny": {"bert": (4, 64), "gpt2": (4, 64), "vit": (4, 64), "llama": (4, 64), "llama-decode": (4, 64)}}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    model: Path
    inputs: Path | None
    ort_model_type: str | None = None  # None: not a transformer, the ORT transformers optimizer does not apply
    num_heads: int = 0
    hidden_size: int = 0


def zoo_workload(work_dir: Path, arch: str, size: str, exporter: str, dynamic: bool, batch: int, seq: int) -> Workload:
    stem = variant_name(arch, size, exporter, dynamic, batch, seq)
    model, inputs = work_dir / f"{stem}.onnx", work_dir / f"{stem}.inputs.npz"
    if not (model.exists() and inputs.exists()):
        model, inputs = build(arch, work_dir, size=size, exporter=exporter, dynamic=dynamic, batch=batch, seq=seq)
    heads, hidden = HEADS[size].get(arch, (0, 0))
    return Workload(stem, model, inputs, ORT_MODEL_TYPE.get(arch), heads, hidden)


def quick_set(work_dir: Path) -> list[Workload]:
    """Every zoo model at its tiny size, dynamo export with dynamic axes, batch 1, sequence 16,
    plus the legacy export of BERT: the cases that show the exporter gap, in minutes."""
    specs = [(arch, "tiny", "dynamo", True, 1, 16) for arch in ZOO] + [("bert", "tiny", "legacy", True, 1, 16)]
    return [zoo_workload(work_dir, *spec) for spec in specs]


def full_set(work_dir: Path) -> list[Workload]:
    """Every zoo model at its real size. Per model: both exporters with static and with dynamic
    axes at batch 1 (sequence 16 for text models); the long sequence (128) and the batched case
    (batch 4) with dynamic axes; the decode step over a 128-token cache."""
    specs = []
    for arch, info in ZOO.items():
        seq = 128 if arch == "llama-decode" else 16
        specs += [(arch, exporter, dynamic, 1, seq) for exporter in ("dynamo", "legacy") for dynamic in (False, True)]
        if info.text and arch != "llama-decode":
            specs += [(arch, exporter, True, 1, 128) for exporter in ("dynamo", "legacy")]
        specs.append((arch, "dynamo", True, 4, seq))
    return [zoo_workload(work_dir, arch, "base", exporter, dynamic, batch, s) for arch, exporter, dynamic, batch, s in specs]


def user_workload(model: str, inputs: str | None) -> Workload:
    return Workload(Path(model).stem, Path(model), Path(inputs) if inputs else None)
