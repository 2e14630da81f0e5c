"""The OpenVINO target: compile an ONNX graph with OpenVINO, report what it fused, run.

OpenVINO fuses more when input shapes are static (its CPU attention and MatMul fusions check
shapes at compile time: tiny BERT runs 63 kernels with dynamic shapes, 40 with bound ones), and
users deploying a model at one shape bind them with ``model.reshape``. So this target is bound to
the feeds it will run on (``bound_to``, the engine's ShapeBinding call) and compiles for their
shapes; feeds of other shapes get a compilation of their own, made on first use. The fusion
report comes from one profiled inference on the bound feeds (report.py).

The model reaches OpenVINO as ONNX bytes when its weights are inline and small, else as a file
written to a temporary folder with its weights beside it (OpenVINO's ONNX reader resolves
external data relative to the file).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import onnx_ir as ir
import openvino as ov

from graphopt.core.errors import BadModelError, UsageError
from graphopt.core.protocols import FusionReport
from graphopt.formats.onnx import files as onnx_files
from graphopt.targets.openvino import levers
from graphopt.targets.openvino.levers import OpenVinoSettings
from graphopt.targets.openvino.report import onnx_names, read_report

DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}  # GPU and NPU: written, untested here
_CORE = ov.Core()
IN_MEMORY_BYTES = 1 << 30  # weights inline and below this: handed over as bytes


@dataclasses.dataclass
class OpenVinoCompiled:
    """One OpenVINO compilation per input shape (graphopt.core.protocols.Compiled)."""

    target: OpenVinoTarget
    model: ov.Model  # as read, shapes not yet bound: what other shapes are compiled from
    report: FusionReport | None
    output_names: list[str]
    by_shape: dict = dataclasses.field(default_factory=dict)  # shape key -> infer request

    def run(self, feeds) -> list[np.ndarray]:
        request = self.by_shape.get(_shape_key(feeds))
        if request is None:
            compiled = self.target.compile_for(self.model, _shapes_of(feeds), profiling=False)
            request = self.by_shape[_shape_key(feeds)] = compiled.create_infer_request()
        request.infer({name: np.ascontiguousarray(value) for name, value in feeds.items()})
        return [request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]


@dataclasses.dataclass(frozen=True)
class OpenVinoTarget:
    """OpenVINO on one device, with one set of properties, bound (or not) to input shapes."""

    device: str = "cpu"
    settings: OpenVinoSettings = OpenVinoSettings()
    feeds: dict | None = dataclasses.field(default=None, compare=False, hash=False)  # what it is bound to
    compiler = "OpenVINO"
    kernel_noun = "kernels"

    @property
    def name(self) -> str:
        return f"openvino-{self.device}"

    @property
    def bound_shapes(self) -> dict[str, list[int]] | None:
        return None if self.feeds is None else _shapes_of(self.feeds)

    def bound_to(self, feeds) -> OpenVinoTarget:
        """This target compiling for the shapes of ``feeds`` (and profiling on them)."""
        return dataclasses.replace(self, feeds=dict(feeds))

    def compiled_bytes(self, model: ir.Model) -> int:
        """Twice its weights: the model as read holds them, and the CPU plugin repacks its own copy."""
        return 2 * onnx_files.weight_bytes(model)

    def admit(self, model: ir.Model) -> list[str]:
        return []

    def runs_op(self, domain: str, op_type: str) -> bool:
        """Whether OpenVINO's ONNX frontend reads this op: standard ONNX ops only (ORT's contrib
        ops are ORT's)."""
        import onnx.defs

        return domain in ("", "ai.onnx") and onnx.defs.has(op_type, "")

    def compile(self, model: ir.Model, *, report: bool = True) -> OpenVinoCompiled:
        read = self.read(model)
        shapes = self.bound_shapes
        compiled = self.compile_for(read, shapes, profiling=report)
        names = [output.get_any_name() for output in compiled.outputs]
        result = OpenVinoCompiled(self, read, None, names)
        request = compiled.create_infer_request()
        if shapes is not None:
            result.by_shape[_shape_key(self.feeds)] = request
        if report:
            result.report = self._report(compiled, request, model)
        return result

    def read(self, model: ir.Model) -> ov.Model:
        """``model`` as OpenVINO reads it, shapes not yet bound."""
        return _read(model)

    def compile_for(self, read: ov.Model, shapes: dict | None, *, profiling: bool):
        """``read`` compiled for ``shapes`` (None: as it is)."""
        model = read.clone()
        if shapes:
            model.reshape({name: ov.PartialShape(dims) for name, dims in shapes.items() if _has_input(model, name)})
        try:
            return _CORE.compile_model(model, DEVICES[self.device], self.settings.compile_properties(profiling))
        except RuntimeError as error:
            raise BadModelError(f"OpenVINO cannot compile the model: {_message(error)}") from None

    def _report(self, compiled, request, model: ir.Model) -> FusionReport:
        if self.feeds is not None:
            request.infer({name: np.ascontiguousarray(value) for name, value in self.feeds.items()})
        return read_report(compiled, request, onnx_names(onnx_files.iter_nodes(model)))

    # Tunable and SettingsFile (graphopt.core.protocols)
    def levers(self, report: FusionReport) -> list[OpenVinoSettings]:
        return levers.levers()

    def combine(self, winners) -> OpenVinoSettings:
        return levers.combine(list(winners))

    def with_lever(self, lever: OpenVinoSettings) -> OpenVinoTarget:
        return dataclasses.replace(self, settings=lever)

    def lever_from_record(self, record: dict | None) -> OpenVinoSettings | None:
        if not record or "openvino_properties" not in record:
            return None
        return OpenVinoSettings(tuple(sorted(record["openvino_properties"].items())))

    def write_lever(self, model_path, lever: OpenVinoSettings | None, measured) -> str | None:
        """The properties and input shapes the output was measured with, beside it (always: the
        precision hint and the bound shapes matter even when no lever won)."""
        path = levers.settings_path(model_path)
        settings = lever or OpenVinoSettings()
        levers.write(path, settings.settings_file(DEVICES[self.device], self.bound_shapes, measured))
        return str(path)

    def read_lever(self, model_path) -> OpenVinoSettings | None:
        return levers.read(model_path)

    # TorchRunner (graphopt.core.protocols): the torch backend's OpenVINO route
    def bind_torch(self, compiled: OpenVinoCompiled, input_names: list[str], runtime: list[int]):
        """``compiled`` as a callable taking the GraphModule's (CPU) inputs."""
        from graphopt.targets.openvino.torch_binding import bind

        return bind(compiled, input_names, runtime)

    def op_times(self, sides, feeds) -> list[dict[str, float]]:
        """Milliseconds per run by kernel kind for each (target, graph), runs interleaved (profile.py)."""
        from graphopt.targets.openvino.profile import op_times

        return op_times(sides, feeds)


def _read(model: ir.Model) -> ov.Model:
    """``model`` as OpenVINO reads it: from bytes when its weights are inline and small, else from
    a file written to a temporary folder with its weights beside it. (Linking the input's own
    weight file there is refused by OpenVINO 2026.4: "resolves to ... outside the base
    directory"; so a large model's weights are written once per compilation.)"""
    try:
        if not onnx_files.has_external_data(model) and onnx_files.weight_bytes(model) < IN_MEMORY_BYTES:
            return _CORE.read_model(ir.serde.serialize_model(model).SerializeToString())
        with tempfile.TemporaryDirectory(prefix="graphopt-openvino-") as folder:
            path = Path(folder) / "model.onnx"
            ir.save(model, path, external_data="model.onnx.data")
            # OpenVINO memory-maps the weights file: the mapping outlives the folder's removal
            return _CORE.read_model(str(path))
    except RuntimeError as error:
        raise BadModelError(f"OpenVINO cannot read the model: {_message(error)}") from None


def _has_input(model: ov.Model, name: str) -> bool:
    return any(name in port.get_names() for port in model.inputs)


def _shapes_of(feeds) -> dict[str, list[int]]:
    return {name: list(np.shape(value)) for name, value in feeds.items()}


def _shape_key(feeds) -> tuple:
    return tuple(sorted((name, tuple(np.shape(value))) for name, value in feeds.items()))


def _message(error: BaseException) -> str:
    """OpenVINO's reason, on one line, without its source-file preamble."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '"))] or lines
    text = " ".join(useful)
    return text if len(text) <= 300 else text[:300].rsplit(" ", 1)[0] + " ..."


def target_from_name(name: str) -> OpenVinoTarget:
    """Parse ``openvino-<device>`` (cpu; gpu and npu written, untested)."""
    parts = name.split("-")
    if len(parts) != 2 or parts[0] != "openvino" or parts[1] not in DEVICES:
        raise UsageError(f"unknown target {name!r}; use openvino-cpu (or openvino-gpu, openvino-npu: untested)")
    return OpenVinoTarget(device=parts[1])
