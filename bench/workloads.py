"""The workloads bench/ runs: zoo variants (exported once and cached) and the user's own files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from graphopt.models.zoo import ZOO, build, variant_name

# What onnxruntime.transformers.optimizer calls each architecture, and its head count / width.
ORT_MODEL_TYPE = {
    "bert": "bert",
    "minilm": "bert",
    "distilbert": "bert",
    "gpt2": "gpt2",
    "vit": "vit",
    "llama": "gpt2",
    "llama-decode": "gpt2",
}
HEADS = {
    "base": {
        "bert": (12, 768),
        "minilm": (12, 384),
        "distilbert": (12, 768),
        "gpt2": (12, 768),
        "vit": (12, 768),
        "llama": (8, 512),
        "llama-decode": (8, 512),
    },
    "tiny": {
        "bert": (4, 64),
        "minilm": (4, 64),
        "distilbert": (4, 64),
        "gpt2": (4, 64),
        "vit": (4, 64),
        "llama": (4, 64),
        "llama-decode": (4, 64),
    },
}


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


LATENCY_SET = [  # issue 4's target: small encoders and a small decoder, default exporter, batch 1
    ("bert", "tiny", "dynamo", True, 1, 16),
    ("minilm", "base", "dynamo", True, 1, 16),
    ("distilbert", "base", "dynamo", True, 1, 16),
    ("llama", "base", "dynamo", True, 1, 16),
    ("llama-decode", "base", "dynamo", True, 1, 16),
]


def latency_set(work_dir: Path) -> list[Workload]:
    """The latency-bound workloads, where graph rewrites pay: a 2-layer BERT, MiniLM-L6,
    DistilBERT, the 4-layer LLaMA-style decoder at sequence 16 and its decode step; dynamo export
    with dynamic axes, batch 1."""
    return [zoo_workload(work_dir, *spec) for spec in LATENCY_SET]


FULL_SET = [  # (architecture, exporter, dynamic axes, batch, sequence)
    ("bert", "dynamo", False, 1, 16),
    ("bert", "dynamo", True, 1, 16),
    ("bert", "legacy", True, 1, 16),
    ("bert", "dynamo", True, 1, 128),
    ("bert", "dynamo", True, 4, 16),
    ("gpt2", "dynamo", True, 1, 16),
    ("gpt2", "legacy", True, 1, 16),
    ("llama", "dynamo", True, 1, 16),
    ("llama", "legacy", True, 1, 16),
    ("llama-decode", "dynamo", True, 1, 16),
    ("llama-decode", "legacy", True, 1, 16),
    ("vit", "dynamo", True, 1, 0),
    ("vit", "legacy", True, 1, 0),
    ("resnet50", "dynamo", False, 1, 0),
    ("resnet50-clamp", "dynamo", False, 1, 0),
    ("mobilenetv2", "dynamo", True, 1, 0),
]


def full_set(work_dir: Path) -> list[Workload]:
    """Every zoo model at its real size, chosen to cover in about an hour on 2 cores: both
    exporters, static and dynamic axes, batch 1 and 4, sequence 16 and 128, the decode step
    (one token over a 16-token cache). `zoo_sweep` covers the whole cross product for graphopt."""
    return [
        zoo_workload(work_dir, arch, "base", exporter, dynamic, batch, seq)
        for arch, exporter, dynamic, batch, seq in FULL_SET
    ]


def user_workload(model: str, inputs: str | None) -> Workload:
    return Workload(Path(model).stem, Path(model), Path(inputs) if inputs else None)


def corpus_set(work_dir: Path, names: list[str] | None = None) -> list[Workload]:
    """The third-party corpus (graphopt/models/corpus.py), built into ``work_dir/corpus`` once,
    each file with its inputs saved beside it as ``<file>.inputs.npz`` (each built in a process
    of its own: TensorFlow and Paddle cannot share one)."""
    from graphopt.models import corpus

    folder = work_dir / "corpus"
    workloads = []
    for name in names or list(corpus.ENTRIES):
        if corpus.ENTRIES[name].source == "paddle2onnx" and not corpus.paddle_available():
            print(f"skipping {name}: paddlepaddle and paddle2onnx are not installed (see graphopt/models/corpus.py)")
            continue
        marker = folder / f"{name}.built"
        if not marker.exists():
            marker.write_text(corpus.build_in_subprocess(name, folder).name)
        path = folder / marker.read_text()
        workloads.append(Workload(name, path, folder / f"{path.name}.inputs.npz"))
    return workloads
