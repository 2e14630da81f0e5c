"""ONNX adapter on onnx_ir: load, save, copy, and a few questions the framework asks of a graph.

Loading checks what would otherwise fail deep inside a runtime with an unreadable message:
the bytes are an ONNX model, every external-data file exists and lies inside the model's folder
(a location like ``../../etc/passwd`` is refused), and the graph has at least one output.
Saving is atomic: the model is written to a temporary file beside the destination and renamed,
so an interrupted or failed save never leaves a half-written model behind. Models whose weights
exceed protobuf's 2 GB limit are saved with their weights in one external-data file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from graphopt.errors import BadModelError

# Protobuf refuses messages over 2 GiB; stay clear of it with some room for the graph itself.
EXTERNAL_DATA_THRESHOLD_BYTES = 1_800_000_000


def load(path: str | os.PathLike) -> ir.Model:
    """Load an ONNX model, refusing anything that is not one with a one-line BadModelError."""
    path = Path(path)
    if not path.is_file():
        raise BadModelError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as error:
        raise BadModelError(f"{path}: not an ONNX model ({_first_line(error)})") from None
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise BadModelError(f"{path}: not an ONNX model (no graph in the file)")
    if not proto.graph.output:
        raise BadModelError(f"{path}: the graph has no outputs")
    _check_external_data(proto, path.parent)
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as error:  # onnx_ir raises several types on malformed graphs
        raise BadModelError(f"{path}: malformed ONNX graph ({_first_line(error)})") from None
    ir.external_data.set_base_dir(model.graph, path.parent)
    return model


def _check_external_data(proto: onnx.ModelProto, base_dir: Path) -> None:
    root = base_dir.resolve()
    for tensor in _all_tensors(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if not location:
            raise BadModelError(f"initializer {tensor.name!r} is external but names no file")
        target = (root / location).resolve()
        if not target.is_relative_to(root):
            raise BadModelError(
                f"initializer {tensor.name!r}: external data {location!r} lies outside the "
                "model's folder; refusing to read it"
            )
        if not target.is_file():
            raise BadModelError(f"initializer {tensor.name!r}: external data file {location!r} is missing")


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a model file is as readable as any other
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(model: ir.Model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically; weights go to ``<name>.data`` above 2 GB."""
    with atomic_path(path) as tmp:
        if weight_bytes(model) > EXTERNAL_DATA_THRESHOLD_BYTES:
            # The model file records the data file's name, so the data is written under its
            # final name; onnx_ir itself writes it through a temporary file and renames it.
            ir.save(model, tmp, external_data=Path(path).name + ".data")
        else:
            ir.save(model, tmp)


def copy(model: ir.Model) -> ir.Model:
    """A copy whose graph can be rewritten without touching ``model`` (tensor data is shared)."""
    return model.clone()


def weight_bytes(model: ir.Model) -> int:
    return sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None)


def has_external_data(model: ir.Model) -> bool:
    return any(isinstance(v.const_value, ir.ExternalTensor) for v in model.graph.initializers.values())


def iter_nodes(model: ir.Model) -> Iterator[ir.Node]:
    """Every node of the model, including those inside If/Loop/Scan subgraphs."""
    return ir.traversal.RecursiveGraphIterator(model.graph)


def op_histogram(model: ir.Model) -> dict[str, int]:
    """Count of nodes per ``domain::op_type`` (plain op_type for the default domain)."""
    counts: dict[str, int] = {}
    for node in iter_nodes(model):
        key = qualified_op(node.domain, node.op_type)
        counts[key] = counts.get(key, 0) + 1
    return counts


def qualified_op(domain: str, op_type: str) -> str:
    return op_type if domain in ("", "ai.onnx") else f"{domain}::{op_type}"


def annotated_values(model: ir.Model) -> frozenset[str]:
    """Names of the intermediate values whose type or shape the file records (its value_info)."""
    return frozenset(v.name for v in _intermediate_values(model) if v.shape is not None or v.type is not None)


def keep_only_annotations(model: ir.Model, names: frozenset[str]) -> None:
    """Forget inferred types and shapes of intermediates, except those the input file recorded.

    Shape inference helps rules match, but the value_info it adds is not neutral for ORT: with it,
    ORT fires fusions it otherwise would not (measured: a legacy-exported BERT runs 5% slower with
    inferred value_info), so a candidate is written with the annotations the input had and no more.
    """
    for value in _intermediate_values(model):
        if value.name not in names:
            value.shape = None
            value.type = None


def _intermediate_values(model: ir.Model) -> Iterator[ir.Value]:
    graph_io = {id(v) for v in (*model.graph.inputs, *model.graph.outputs)}
    for node in iter_nodes(model):
        for value in node.outputs:
            if id(value) not in graph_io:
                yield value


def has_subgraphs(model: ir.Model) -> bool:
    return any(
        attr.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
        for node in model.graph.all_nodes()
        for attr in node.attributes.values()
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
