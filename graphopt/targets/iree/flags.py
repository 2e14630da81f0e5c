"""IREE compile flags that change how it forms and compiles dispatches: the levers.

IREE compiles at ``--iree-opt-level=O0`` unless told otherwise. What is offered, each timed
against the defaults like every lever (core/judge.py) and kept only with its outputs checked:

- ``--iree-opt-level=O3``: more fusion in dispatch formation; float reductions may be
  reassociated (outputs close, not bitwise equal);
- ``--iree-dispatch-creation-data-tiling``: matmuls on packed (tiled) operands, the layout IREE's
  CPU microkernels want; packing a weight held as a parameter runs once at load, an operand passed
  per call is packed per call (so it pays on weights as parameters, see parameters.py);
- ``--iree-dispatch-creation-enable-aggressive-fusion``: fusion IREE keeps behind a flag.

Winners combine by union (each is a separate pipeline switch). What is recommended for an output
is written beside it as ``<model>.iree.json``: the flags to pass to ``iree-compile`` (or
``iree.compiler.compile_file(..., extra_args=flags)``), the backend, and the measurement.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from graphopt.core.atomic import atomic_path
from graphopt.core.measure import Comparison

OPT_LEVEL = "--iree-opt-level="
O3 = OPT_LEVEL + "O3"
O0 = OPT_LEVEL + "O0"  # the default, named: a target with it set has its level chosen
DATA_TILING = "--iree-dispatch-creation-data-tiling"
AGGRESSIVE_FUSION = "--iree-dispatch-creation-enable-aggressive-fusion"
LEVERS = (DATA_TILING, O3, AGGRESSIVE_FUSION)


@dataclasses.dataclass(frozen=True)
class IreeFlags:
    """Compile flags beyond the target's own (backend, host CPU)."""

    flags: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.flags

    def label(self) -> str:
        return "IREE " + (" ".join(self.flags) or "defaults")

    def record(self) -> dict:
        return {"iree_flags": list(self.flags)}

    def to_json(self, measured: Comparison | None) -> dict:
        """The flags and their measurement, as the report shows a recommended setting."""
        data = {"compiler": "iree", "flags": list(self.flags)}
        if measured is not None:
            interval = [measured.ci_low, measured.ci_high]
            data["measured"] = {"ratio_vs_original_at_defaults": measured.ratio, "ci95": interval}
        return data

    def settings_file(self, backend: str, target_flags: list[str], measured: Comparison | None) -> dict:
        """What ``<model>.iree.json`` holds: every flag to compile with, the backend, the measurement."""
        data = self.to_json(measured) | {"target_backends": [backend], "flags": [*target_flags, *self.flags]}
        data["usage"] = (
            "iree.compiler.compile_file(path, input_type='stablehlo', target_backends=<target_backends>, "
            "extra_args=<flags>)"
        )
        return data


def levers() -> list[IreeFlags]:
    return [IreeFlags((flag,)) for flag in LEVERS]


def combine(winners) -> IreeFlags:
    """The union of the winners' flags, in LEVERS order."""
    chosen = {flag for lever in winners for flag in lever.flags}
    return IreeFlags(tuple(flag for flag in LEVERS if flag in chosen))


def settings_path(model_path) -> Path:
    path = Path(model_path)
    return path.with_name(path.stem + ".iree.json")


def write(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")


def read(model_path) -> IreeFlags | None:
    path = settings_path(model_path)
    if not path.exists():
        return None
    flags = json.loads(path.read_text()).get("flags", [])
    return IreeFlags(tuple(flag for flag in LEVERS if flag in flags))
