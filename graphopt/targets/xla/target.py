"""XLA through PJRT as a graphopt Target: compile a StableHLO module on a device's client, read
the fusions from the optimized HLO, run.

The module is compiled as given (``client.compile_and_load`` on its bytecode) with the client's
default options, the same executable ``jax.jit`` would build from that module. Shape-polymorphic
modules (dynamic dims) must be bound to sizes first; they are refused with a one-line error.
Per-compile options (options.py: oneDNN or XNNPACK for dots, 512-bit vectors) are its levers,
each judged like any lever; what won is written beside an output as ``<model>.xla.json``.

CPU is what runs here; on a machine with a GPU, ``device="gpu"`` picks JAX's GPU client and the
same code compiles through XLA's GPU pipeline (untested: no GPU on this machine).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from graphopt.core.errors import BadModelError, UsageError
from graphopt.core.protocols import FusionReport
from graphopt.formats.stablehlo import files, module
from graphopt.targets.xla import options as xla_options
from graphopt.targets.xla.options import XlaOptions
from graphopt.targets.xla.report import fusion_report


@dataclasses.dataclass
class XlaCompiled:
    executable: object  # jaxlib LoadedExecutable
    device: object
    input_names: list[str]
    output_names: list[str]
    report: FusionReport | None
    optimized_hlo: str

    placed: tuple | None = None  # (feeds, their arrays on the device): a timing loop runs one feeds dict many times

    def run(self, feeds) -> list[np.ndarray]:
        """Outputs for ``feeds``; the inputs are put on the device once per feeds object, as a
        JAX program holds its weights there (not copied per call)."""
        import jax

        if self.placed is None or self.placed[0] is not feeds:
            self.placed = (feeds, [jax.device_put(np.asarray(feeds[name]), self.device) for name in self.input_names])
        return [np.asarray(value) for value in self.executable.execute(self.placed[1])]


@dataclasses.dataclass(frozen=True)
class XlaTarget:
    """XLA on one PJRT device, with the client's default options or some overridden (a lever)."""

    device: str = "cpu"
    options: XlaOptions = XlaOptions()
    compiler = "XLA"
    kernel_noun = "fusions"

    @property
    def name(self) -> str:
        return f"xla-{self.device}"

    def compiled_bytes(self, graph: files.StableHloModule) -> int:
        """The module's text (its constants are in it); JAX passes weights as arguments, which the
        feeds hold once for every compilation."""
        return len(graph.text)

    def compile(self, graph: files.StableHloModule, *, report: bool = True) -> XlaCompiled:
        import jax

        specs = module.input_specs(graph.text)
        if any(not isinstance(d, int) for spec in specs for d in spec.dims):
            raise BadModelError("the module has dynamic dimensions; bind them to sizes before compiling for XLA")
        device = jax.devices(self.device)[0]
        executable = self._compiled(graph.text, device)
        hlo = executable.hlo_modules()[0].to_string()
        outputs = [f"out{i}" for i in range(len(executable.get_output_layouts()))]
        return XlaCompiled(
            executable, device, [s.name for s in specs], outputs, fusion_report(hlo) if report else None, hlo
        )

    def _compiled(self, text: str, device):
        import jax.extend as jex

        client = device.client
        overrides = self.options.overrides() or None
        options = jex.backend.get_compile_options(num_replicas=1, num_partitions=1, env_options_overrides=overrides)
        try:
            return client.compile_and_load(files.to_bytecode(text), [device], options)
        except Exception as error:  # XlaRuntimeError: what XLA could not compile
            raise BadModelError(f"XLA cannot compile the module: {str(error).splitlines()[0][:200]}") from None

    def admit(self, graph: files.StableHloModule) -> list[str]:
        return []  # XLA compiles any module jaxlib parses; dynamic ones are refused at compile

    def jit(self, fn):
        """``jax.jit(fn)`` with this target's compile options (protocols.JaxJit)."""
        import jax

        return jax.jit(fn, compiler_options=self.options.overrides() or None)

    # Tunable and SettingsFile (graphopt.core.protocols)
    def levers(self, report: FusionReport) -> list[XlaOptions]:
        return xla_options.levers(self.device)

    def combine(self, winners) -> XlaOptions:
        return xla_options.combine(list(winners))

    def with_lever(self, lever: XlaOptions) -> XlaTarget:
        return dataclasses.replace(self, options=lever)

    def lever_from_record(self, record: dict | None) -> XlaOptions | None:
        return xla_options.from_record(record)

    def write_lever(self, model_path, lever: XlaOptions | None, measured) -> str | None:
        return xla_options.write(model_path, lever, measured)

    def read_lever(self, model_path) -> XlaOptions | None:
        return xla_options.read(model_path)


def target_from_name(name: str) -> XlaTarget:
    """``xla-cpu`` or ``xla-gpu``."""
    device = name.removeprefix("xla-") if name.startswith("xla-") else ""
    if device not in ("cpu", "gpu"):
        raise UsageError(f"unknown target {name!r}; use xla-cpu or xla-gpu")
    return XlaTarget(device)
