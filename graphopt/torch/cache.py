"""Decisions of the torch backend on disk: a graph decided before, at the same input shapes and
dtypes, options and library versions, is compiled the same way in a new process without timing
anything.

The key is the Dynamo graph's fingerprint (its code and its placeholders' types and sizes), the
real inputs' shapes and dtypes, the options that change a decision (target, budget, policy) and
the versions of torch, onnxruntime and graphopt. Only the decision is stored (the target, the
FX rules or the ONNX rewrite and session settings), never weights. Written atomically, so two
processes deciding the same graph cannot leave half a file.

Decisions are kept by default in the user's cache folder (``$XDG_CACHE_HOME/graphopt/torch``,
else ``~/.cache/graphopt/torch``), so a second process pays for no timing; ``GRAPHOPT_CACHE_DIR``
moves it, or turns it off when empty, ``0`` or ``off``; the backend's ``cache_dir`` option names a
folder for one model (``None``: none).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch

from graphopt.core.atomic import atomic_path
from graphopt.formats.fx import fingerprint

ENVIRONMENT = "GRAPHOPT_CACHE_DIR"
OFF = ("", "0", "off", "none", "false")
DEFAULT = "default"  # the backend's cache_dir default: the user's cache folder (default_folder)


def default_folder() -> Path | None:
    """Where decisions are kept unless the backend is told otherwise (None: nowhere)."""
    value = os.environ.get(ENVIRONMENT)
    if value is not None:
        return None if value.strip().lower() in OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "graphopt" / "torch"


def folder_for(setting) -> Path | None:
    """The folder the ``cache_dir`` option means: DEFAULT -> default_folder(), None -> none, else the path."""
    if setting == DEFAULT:
        return default_folder()
    return Path(setting).expanduser() if setting else None


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
