"""IREE as a graphopt Target for StableHLO modules: compile with iree-compile's Python API, read
the dispatches it formed from its scheduling statistics, run with IREE's runtime.

CPU (``llvm-cpu`` for the host's CPU, run on the ``local-task`` driver) is what runs here; the
CUDA, ROCm and Vulkan device strings name IREE's backends and drivers for those devices and are
untested (no such device on the machines this was built on).

Weights: a module compiled as JAX exports it takes its weights as arguments. A target holding
parameters (``holding``) compiles the module with those arguments turned into parameters
(parameters.py) and binds their values from the feeds when it loads the module, so what depends
on weights alone runs once at load. Outputs are the same; the engine judges it against the
module as exported like any other target.

Modules with dynamic dimensions are refused with one line (bind them to sizes first), as for XLA.

ONNX models (onnx_ir graphs, ``graphopt optimize m.onnx --target iree-cpu``) go through IREE's
ONNX importer (onnx_import.py) at the shapes of the feeds the engine binds this target to
(ShapeBinding, as for OpenVINO); feeds of other shapes get a compilation of their own on first
use. Only standard ONNX ops are offered to it (OpVocabulary: ORT's contrib ops are ORT's).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from graphopt.core.errors import BadModelError, UsageError
from graphopt.core.protocols import FusionReport
from graphopt.formats.stablehlo import files, module
from graphopt.targets.iree import cache, flags, onnx_import, parameters
from graphopt.targets.iree.flags import IreeFlags
from graphopt.targets.iree.report import fusion_report

# device -> (IREE target backend, runtime driver, the backend's own flags); only cpu is measured
DEVICES = {
    "cpu": ("llvm-cpu", "local-task", ("--iree-llvmcpu-target-cpu=host",)),
    "cuda": ("cuda", "cuda", ()),
    "rocm": ("rocm", "hip", ()),
    "vulkan": ("vulkan-spirv", "vulkan", ()),
}
_CONFIGS: dict[str, object] = {}  # driver -> iree.runtime.Config: one device and task pool per process


def runtime_config(driver: str):
    import iree.runtime

    if driver not in _CONFIGS:
        _CONFIGS[driver] = iree.runtime.Config(driver)
    return _CONFIGS[driver]


@dataclasses.dataclass
class IreeCompiled:
    """One compiled module (graphopt.core.protocols.Compiled), loaded once per set of weights."""

    vmfb: bytes
    driver: str
    input_names: list[str]  # what a call passes, in order
    held: list[str]  # inputs held as parameters, bound at load
    output_names: list[str]
    report: FusionReport | None
    function: str = "main"  # the entry point: jax's main, or the ONNX graph's name
    shapes: dict | None = None  # input shapes it was compiled for, where it was bound to some (ONNX)
    reshaped: object = None  # feeds -> an IreeCompiled for their shapes (ONNX), made on first use
    loaded: dict = dataclasses.field(default_factory=dict)  # parameter arrays' ids -> (arrays, entry function)
    placed: tuple | None = None  # (feeds, their arrays on the device)
    by_shape: dict = dataclasses.field(default_factory=dict)  # other input shapes -> their compilation

    def run(self, feeds) -> list[np.ndarray]:
        """Outputs for ``feeds``: the module is loaded once per set of parameter values, and the
        other inputs are put on the device once per feeds object (a timing loop runs one many times)."""
        key = tuple((name, tuple(np.shape(feeds[name]))) for name in self.input_names)
        if self.shapes is not None and key != tuple((name, self.shapes[name]) for name in self.input_names):
            if key not in self.by_shape:
                self.by_shape[key] = self.reshaped(feeds)
            return self.by_shape[key].run(feeds)
        function = self.entry(feeds)
        if self.placed is None or self.placed[0] is not feeds:
            device = runtime_config(self.driver).device
            self.placed = (feeds, [_on_device(device, feeds[name]) for name in self.input_names])
        results = function(*self.placed[1])
        results = results if isinstance(results, (list, tuple)) else [results]
        return [np.asarray(value) for value in results]

    def entry(self, feeds):
        """The module's ``main``, loaded with the parameter values ``feeds`` holds."""
        import iree.runtime

        values = [np.ascontiguousarray(feeds[name]) for name in self.held]
        identity = tuple(id(feeds[name]) for name in self.held)
        if identity not in self.loaded:
            config = runtime_config(self.driver)
            modules = [_parameter_module(config, dict(zip(self.held, values)))] if self.held else []
            vm_module = iree.runtime.VmModule.copy_buffer(config.vm_instance, self.vmfb)
            context = iree.runtime.SystemContext(vm_modules=[*modules, vm_module], config=config)
            entry = context.modules[vm_module.name][self.function]
            self.loaded = {identity: ([feeds[name] for name in self.held], entry)}
        return self.loaded[identity][1]


def _parameter_module(config, values: dict[str, np.ndarray]):
    import iree.runtime

    index = iree.runtime.ParameterIndex()
    for name, value in values.items():
        index.add_buffer(name, value)
    provider = index.create_provider(scope=parameters.SCOPE)
    return iree.runtime.create_io_parameters_module(config.vm_instance, provider)


def _on_device(device, value):
    import iree.runtime

    return iree.runtime.asdevicearray(device, np.ascontiguousarray(value))


@dataclasses.dataclass(frozen=True)
class IreeTarget:
    """IREE on one device, with one set of flags, holding some inputs as parameters."""

    device: str = "cpu"
    flags: IreeFlags = IreeFlags()
    parameters: frozenset[str] = frozenset()  # input names held as parameters (the weights)
    feeds: dict | None = dataclasses.field(default=None, compare=False, hash=False)  # bound to (ONNX: their shapes)
    compiler = "IREE"
    kernel_noun = "dispatches"
    keeps_compiled = True  # protocols.CompileCache: compiles are kept by module text and flags (cache.py)

    @property
    def name(self) -> str:
        return f"iree-{self.device}"

    @property
    def backend(self) -> str:
        return DEVICES[self.device][0]

    def compile_flags(self) -> tuple[str, ...]:
        return (*DEVICES[self.device][2], *self.flags.flags)

    def holding(self, names) -> IreeTarget:
        """This target with the inputs ``names`` held as parameters (bound once at load)."""
        return dataclasses.replace(self, parameters=frozenset(names))

    def bound_to(self, feeds) -> IreeTarget:
        """This target compiling ONNX models for the shapes of ``feeds`` (protocols.ShapeBinding)."""
        return dataclasses.replace(self, feeds=dict(feeds))

    def runs_op(self, domain: str, op_type: str) -> bool:
        """Whether IREE's ONNX importer reads this op: standard ONNX ops (protocols.OpVocabulary)."""
        import onnx.defs

        return domain in ("", "ai.onnx") and onnx.defs.has(op_type, "")

    def compiled_bytes(self, graph) -> int:
        """A StableHLO module's text (its constants are in it; weights passed as inputs are in the
        feeds); an ONNX model's weights three times: the bound copy, its import, the compiled module."""
        if isinstance(graph, files.StableHloModule):
            return len(graph.text)
        return 3 * sum(value.const_value.nbytes for value in graph.graph.initializers.values() if value.const_value)

    def admit(self, graph) -> list[str]:
        return []

    def compile(self, graph, *, report: bool = True) -> IreeCompiled:
        if not isinstance(graph, files.StableHloModule):
            return self._compile_onnx(graph, report)
        specs = module.input_specs(graph.text)
        if any(not isinstance(d, int) for spec in specs for d in spec.dims):
            raise BadModelError("the module has dynamic dimensions; bind them to sizes before compiling for IREE")
        held = {spec.name: index for index, spec in enumerate(specs) if spec.name in self.parameters}
        text = parameters.held_as_parameters(graph.text, held)
        vmfb, statistics = cache.compiled(text, self.backend, self.compile_flags())
        outputs = [f"out{i}" for i in range(module.result_count(graph.text))]
        inputs = [spec.name for spec in specs if spec.name not in held]
        return IreeCompiled(
            vmfb, DEVICES[self.device][1], inputs, list(held), outputs, fusion_report(statistics) if report else None
        )

    def _compile_onnx(self, model, report: bool) -> IreeCompiled:
        if self.feeds is None:
            raise BadModelError("IREE compiles an ONNX model for the shapes of its inputs; none were given")
        shapes = onnx_import.shapes_of(self.feeds)
        proto = onnx_import.static_proto(model, shapes)
        bytecode, function = onnx_import.imported(proto)
        vmfb, statistics = cache.compiled(bytecode, self.backend, self.compile_flags(), input_type="onnx")
        weights = {value.name for value in proto.graph.initializer}
        inputs = [value.name for value in proto.graph.input if value.name not in weights]
        return IreeCompiled(
            vmfb,
            DEVICES[self.device][1],
            inputs,
            [],
            [value.name for value in proto.graph.output],
            fusion_report(statistics) if report else None,
            function=function,
            shapes={name: shapes[name] for name in inputs},
            reshaped=lambda feeds: self.bound_to(feeds).compile(model, report=False),
        )

    # Tunable, StandardLevels and SettingsFile (graphopt.core.protocols)
    def standard_levels(self) -> list[IreeFlags]:
        """O3: what an IREE user tries beside the default O0 (flags.py); none when this target's
        flags name a level already (the user chose it: that is the bar)."""
        if any(flag.startswith(flags.OPT_LEVEL) for flag in self.flags.flags):
            return []
        return [IreeFlags((flags.O3,))]

    def levers(self, report: FusionReport) -> list[IreeFlags]:
        """Each lever not already set (a standard level the bar was set at is set)."""
        return [lever for lever in flags.levers() if not set(lever.flags) <= set(self.flags.flags)]

    def combine(self, winners) -> IreeFlags:
        return flags.combine(list(winners))

    def with_lever(self, lever: IreeFlags) -> IreeTarget:
        """This target with ``lever``'s flags added to its own (flags compose: a lever applies on
        top of the standard level the bar was set at)."""
        return dataclasses.replace(self, flags=flags.combine([self.flags, lever]))

    def lever_from_record(self, record: dict | None) -> IreeFlags | None:
        if not record or "iree_flags" not in record:
            return None
        return IreeFlags(tuple(record["iree_flags"]))

    def write_lever(self, model_path, lever: IreeFlags | None, measured) -> str | None:
        """The flags the output was measured with, beside it (always: the backend's own flags matter)."""
        path = flags.settings_path(model_path)
        chosen = flags.combine([self.flags, lever or IreeFlags()])
        flags.write(path, chosen.settings_file(self.backend, list(DEVICES[self.device][2]), measured))
        return str(path)

    def read_lever(self, model_path) -> IreeFlags | None:
        return flags.read(model_path)

    # JaxRunner (graphopt.core.protocols): the JAX API's IREE callable
    def bind_jax(self, compiled: IreeCompiled, exported, fallback):
        from graphopt.targets.iree.jax_binding import IreeFunction

        names = [module.input_name(index) for index in range(len(exported.in_avals))]
        return IreeFunction(compiled, exported, names, fallback)

    def as_is(self, fn):
        """``fn`` run by this target as is, exported and compiled per signature (jax_binding.py)."""
        from graphopt.targets.iree.jax_binding import as_is

        return as_is(dataclasses.replace(self, parameters=frozenset()), fn)


def target_from_name(name: str) -> IreeTarget:
    """``iree-cpu`` (measured here); ``iree-cuda``, ``iree-rocm``, ``iree-vulkan`` written, untested."""
    device = name.removeprefix("iree-")
    if device not in DEVICES:
        raise UsageError(f"unknown target {name!r}; use {', '.join(f'iree-{d}' for d in DEVICES)}")
    return IreeTarget(device)
