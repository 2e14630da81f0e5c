"""XLA per-compile options that change how its CPU backend runs a module: the levers.

XLA reads most of its flags once per process (``XLA_FLAGS``), but a compile can override them
(``env_option_overrides``, what ``jax.jit(fn, compiler_options=...)`` passes), so each option is
tried on one executable without touching the process. What is offered, each compiled, checked at
fp32 tolerances and timed against the defaults like every lever (core/judge.py):

- ``xla_cpu_use_onednn``: dots and convolutions through oneDNN (its AMX and AVX-512 kernels);
- ``xla_cpu_use_xnnpack``: dots and convolutions through XNNPACK;
- ``xla_cpu_prefer_vector_width=512``: XLA's own fusions vectorized at 512 bits on AVX-512 CPUs.

Each changes the kernels, and so the summation order of reductions: outputs are close, not
bitwise equal, which the check measures. ``xla_cpu_enable_fast_math`` is never offered (it
changes results beyond tolerance by design). What won is written beside an output as
``<model>.xla.json``: the options to pass as ``jax.jit(fn, compiler_options=...)``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from graphopt.core.atomic import atomic_path
from graphopt.core.measure import Comparison

LEVERS = (("xla_cpu_use_onednn", True), ("xla_cpu_use_xnnpack", True), ("xla_cpu_prefer_vector_width", 512))


@dataclasses.dataclass(frozen=True)
class XlaOptions:
    """Compile options beyond XLA's defaults, as (name, value) pairs."""

    options: tuple[tuple[str, object], ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.options

    def label(self) -> str:
        return "XLA " + (", ".join(f"{k}={v}" for k, v in self.options) or "defaults")

    def record(self) -> dict:
        return {"xla_options": dict(self.options)}

    def overrides(self) -> dict:
        """What ``get_compile_options(env_options_overrides=...)`` and ``jax.jit(compiler_options=...)`` take."""
        return dict(self.options)

    def to_json(self, measured: Comparison | None) -> dict:
        data = {"compiler": "xla", "compiler_options": dict(self.options)}
        if measured is not None:
            interval = [measured.ci_low, measured.ci_high]
            data["measured"] = {"ratio_vs_original_at_defaults": measured.ratio, "ci95": interval}
        return data


def levers(device: str) -> list[XlaOptions]:
    """The CPU backend's options (a GPU client has others: none offered there yet)."""
    return [XlaOptions((option,)) for option in LEVERS] if device == "cpu" else []


def combine(winners) -> XlaOptions:
    """The union of the winners' options, in LEVERS order."""
    chosen = {name for lever in winners for name, _ in lever.options}
    return XlaOptions(tuple(option for option in LEVERS if option[0] in chosen))


def from_record(record: dict | None) -> XlaOptions | None:
    if not record or "xla_options" not in record:
        return None
    known = dict(LEVERS)
    return XlaOptions(tuple((name, known[name]) for name in record["xla_options"] if name in known))


def settings_path(model_path) -> Path:
    path = Path(model_path)
    return path.with_name(path.stem + ".xla.json")


def write(model_path, lever: XlaOptions | None, measured) -> str | None:
    """The options beside ``model_path``, or an old file removed when no lever won."""
    path = settings_path(model_path)
    if lever is None:
        path.unlink(missing_ok=True)
        return None
    data = lever.to_json(measured) | {"usage": "jax.jit(fn, compiler_options=<compiler_options>)"}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
    return str(path)


def read(model_path) -> XlaOptions | None:
    path = settings_path(model_path)
    if not path.exists():
        return None
    return from_record({"xla_options": json.loads(path.read_text()).get("compiler_options", {})})
