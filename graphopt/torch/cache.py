"""Decisions of the torch backend on disk: a graph decided before, at the same input shapes and
dtypes, options and library versions, is compiled the same way in a new process without timing
anything.

The key is the Dynamo graph's fingerprint (its code and its placeholders' types and sizes), the
real inputs' shapes and dtypes, the options that change a decision (target, budget, policy) and
the versions of torch, onnxruntime and graphopt. Only the decision is stored (the target, the
FX rules or the ONNX rewrite and session settings), never weights. Written atomically, so two
processes deciding the same graph cannot leave half a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from graphopt.core.atomic import atomic_path
from graphopt.formats.fx import fingerprint


def _versions() -> tuple[str, ...]:
    from importlib.metadata import version

    return tuple(version(name) for name in ("torch", "onnxruntime", "graphopt"))


@dataclasses.dataclass(frozen=True)
class DecisionCache:
    folder: Path
    key: str

    @classmethod
    def for_graph(cls, folder, gm: torch.fx.GraphModule, args, settings: dict) -> DecisionCache:
        shapes = [(tuple(a.shape), str(a.dtype)) if isinstance(a, torch.Tensor) else ("int",) for a in args]
        options = (settings["target"], settings["budget"], settings["policy"])
        key = repr((fingerprint(gm), shapes, options, _versions()))
        return cls(Path(folder), hashlib.sha256(key.encode()).hexdigest()[:24])

    @property
    def path(self) -> Path:
        return self.folder / f"{self.key}.json"

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def store(self, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
