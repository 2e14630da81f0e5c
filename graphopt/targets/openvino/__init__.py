"""OpenVINO as a graphopt Target for ONNX graphs: compile with shapes bound to the feeds, the
fusion report read from OpenVINO's own profiling and runtime model, CPU settings as levers.

``import openvino`` happens here, so the extra's absence is one line: ``--target openvino-cpu``
without ``pip install 'graphopt[openvino]'`` says how to install it (exit 2)."""

from graphopt.core.errors import UsageError

try:
    import openvino  # noqa: F401
except ImportError:  # pragma: no cover - exercised by tests/test_openvino_target.py in a subprocess
    openvino = None


def target_from_name(name: str):
    """``openvino-cpu`` (measured here); ``openvino-gpu`` and ``openvino-npu`` are written for
    OpenVINO's other device plugins and untested: no such device on the machines this was built on."""
    if openvino is None:
        raise UsageError(f"target {name!r} needs OpenVINO: pip install 'graphopt[openvino]'")
    from graphopt.targets.openvino.target import target_from_name as parse

    return parse(name)


__all__ = ["target_from_name"]
