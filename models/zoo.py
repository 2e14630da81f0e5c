"""The zoo's registry and ``build``: export one variant and write matching inputs beside it.

A variant is (architecture, size, exporter, static or dynamic axes, batch, sequence). Dynamic
axes get the same symbol names from both exporters (``batch``, ``sequence``, ``past_sequence``),
so inputs can be generated for them consistently; torch's dynamo exporter would otherwise name
them ``s21``, ``s50``...
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import onnx

from graphopt.core.errors import GraphoptError
from graphopt.models.architectures import ARCHITECTURES
from graphopt.models.export import export


@dataclasses.dataclass(frozen=True)
class ZooModel:
    name: str
    description: str
    text: bool  # has a sequence axis


ZOO = {
    "bert": ZooModel("bert", "BERT-base encoder (12 layers, hidden 768); tiny: 2 layers, hidden 64", True),
    "minilm": ZooModel("minilm", "MiniLM-L6-H384 encoder (6 layers, hidden 384, 12 heads)", True),
    "distilbert": ZooModel("distilbert", "DistilBERT-base encoder (6 layers, hidden 768, 12 heads)", True),
    "gpt2": ZooModel("gpt2", "GPT-2 small (12 layers, hidden 768); tiny: 2 layers, hidden 64", True),
    "llama": ZooModel("llama", "LLaMA-style decoder, GQA 8/2 heads, 4 layers, hidden 512", True),
    "llama-decode": ZooModel("llama-decode", "the LLaMA-style decoder's KV-cache decode step (1 token)", True),
    "vit": ZooModel("vit", "ViT-base/16 at 224x224; tiny: 2 layers, 32x32", False),
    "resnet50": ZooModel("resnet50", "ResNet-50 at 224x224; tiny: 4 stages of 1 block at 64x64", False),
    "resnet50-clamp": ZooModel(
        "resnet50-clamp", "ResNet-50 with its ReLUs written as x.clamp(min=0) (exported as Max)", False
    ),
    "mobilenetv2": ZooModel("mobilenetv2", "MobileNetV2 1.0 at 224x224; tiny: 0.35 at 64x64", False),
}


def variant_name(name: str, size: str, exporter: str, dynamic: bool, batch: int, seq: int) -> str:
    parts = [name, size, exporter, "dynamic" if dynamic else "static", f"b{batch}"]
    if ZOO[name].text:
        parts.append(f"s{seq}")
    return "-".join(parts)


def build(name: str, out_dir, *, size="base", exporter="dynamo", dynamic=False, batch=1, seq=16) -> tuple[Path, Path]:
    """Export one variant to ``out_dir``; returns (model path, inputs .npz path)."""
    if name not in ZOO:
        raise GraphoptError(f"unknown zoo model {name!r}; choose from {', '.join(ZOO)}")
    if size not in ("base", "tiny") or exporter not in ("dynamo", "legacy"):
        raise GraphoptError("size is base or tiny; exporter is dynamo or legacy")
    module, inputs, axes = ARCHITECTURES[name](size, batch=batch, seq=seq)
    out_dir = Path(out_dir)
    stem = variant_name(name, size, exporter, dynamic, batch, seq)
    path = out_dir / f"{stem}.onnx"
    export(module, inputs, axes, path, exporter=exporter, dynamic=dynamic)
    if dynamic:
        name_dynamic_axes(path, axes)
    inputs_path = out_dir / f"{stem}.inputs.npz"
    np.savez(inputs_path, **{k: v.numpy() for k, v in inputs.items()})
    return path, inputs_path


def name_dynamic_axes(path: Path, axes: dict[str, dict[int, str]]) -> None:
    """Give the dynamic axes of the file at ``path`` the symbol names in ``axes`` (in place)."""
    model = onnx.load(str(path), load_external_data=False)  # the weights stay in <name>.onnx.data
    for value in model.graph.input:
        for axis, symbol in axes.get(value.name, {}).items():
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = symbol
    onnx.save(model, str(path))


def build_all_variants(out_dir, *, size="tiny", seqs=(16,), batches=(1,), names=None):
    """Every (model, exporter, static/dynamic, batch, seq) variant; yields (stem, model, inputs)."""
    for name in names or ZOO:
        for exporter, dynamic, batch in itertools.product(("dynamo", "legacy"), (False, True), batches):
            for seq in seqs if ZOO[name].text else (0,):
                path, inputs = build(name, out_dir, size=size, exporter=exporter, dynamic=dynamic, batch=batch, seq=seq)
                yield path.stem, path, inputs
