"""ONNX adapter on onnx_ir: load, save, copy, and a few questions the framework asks of a graph.

Loading checks what would otherwise fail deep inside a runtime with an unreadable message:
the bytes are an ONNX model, every external-data file exists and lies inside the model's folder
(a location like ``../../etc/passwd`` is refused), and the graph has at least one output.
Saving is atomic (see atomic.py) and the saved model stands alone: external data in means
external data out, written beside the output under the output's own name; inline stays inline
unless protobuf's 2 GB limit forces the weights into a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from graphopt.core.atomic import atomic_folder, atomic_path
from graphopt.core.errors import BadModelError

# Protobuf refuses messages over 2 GiB; stay clear of it with some room for the graph itself.
EXTERNAL_DATA_THRESHOLD_BYTES = 1_800_000_000


def load(path: str | os.PathLike) -> ir.Model:
    """Load an ONNX model, refusing anything that is not one with a one-line BadModelError."""
    path = Path(path)
    if path.is_dir():
        raise BadModelError(f"{path}: is a directory, not an ONNX model file")
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
    ir.external_data.set_base_dir(model.graph, path.parent.resolve())  # absolute: safe under chdir
    model.meta[DIMENSION_HINTS] = genai_dimensions(model, path.parent)
    return model


DIMENSION_HINTS = "graphopt.dimension_hints"  # model.meta key: symbol -> size, for generated inputs


def genai_dimensions(model: ir.Model, folder: Path) -> dict[str, int]:
    """Sizes of symbolic dimensions that only a file beside the model knows: onnxruntime-genai's
    model builder names the KV cache's head size ``kv_cache_dim`` and writes it, as ``head_size``,
    in ``genai_config.json``. Empty when there is no such file or it says nothing usable."""
    try:
        decoder = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
        head_size = int(decoder["head_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    symbols = {
        v.shape[3].value
        for v in model.graph.inputs
        if v.shape is not None and v.shape.rank() == 4 and isinstance(v.shape[3], ir.SymbolicDim) and v.shape[3].value
    }
    return dict.fromkeys(symbols, head_size)


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
        if (links := target.stat().st_nlink) > 1:
            # onnx_ir (rightly) reads a file with several hard links as a possible hard-link attack
            raise BadModelError(
                f"external data file {location!r} has {links} hard links (a `cp -l` copy, a dedup tool); "
                "onnx_ir refuses to read it: make a real copy of the model folder (`cp -r`) and run on that"
            )


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


def save(model: ir.Model, path: str | os.PathLike, *, external_data: bool = False) -> None:
    """Write ``model`` to ``path`` atomically, weights included.

    With ``external_data`` (or above protobuf's 2 GB limit) the weights go to ``<name>.data``
    beside it, the way torch's exporter writes them (``m.onnx`` + ``m.onnx.data``): a model whose
    weights came from another file never points back at that file, so the output stands alone
    once the input's folder is gone. Both files are moved into place together (atomic_folder).
    """
    path = Path(path)
    if not (external_data or weight_bytes(model) > EXTERNAL_DATA_THRESHOLD_BYTES):
        with atomic_path(path) as tmp:
            ir.save(_with_weights_inline(model), tmp)
        return
    with atomic_folder(path) as scratch:
        # onnx_ir reads each weight from wherever it lies now (the input's data file, memory)
        # and leaves ``model`` itself unchanged.
        ir.save(model, scratch / path.name, external_data=external_data_name(path))


def external_data_name(path: str | os.PathLike) -> str:
    """The weights file graphopt writes beside a model: ``<model file name>.data``."""
    return Path(path).name + ".data"


def _with_weights_inline(model: ir.Model) -> ir.Model:
    """``model`` itself when no weight is external, else a copy holding every weight in memory."""
    return ir.external_data.load_to_model(copy(model)) if has_external_data(model) else model


def external_data_files(model: ir.Model) -> set[Path]:
    """The files the model's external weights are read from."""
    return {
        Path(v.const_value.path).resolve()
        for v in model.graph.initializers.values()
        if isinstance(v.const_value, ir.ExternalTensor)
    }


def copy(model: ir.Model) -> ir.Model:
    """A copy whose graph can be rewritten without touching ``model`` (tensor data is shared; the
    in-memory metadata, such as DIMENSION_HINTS, travels with it)."""
    copied = model.clone()
    copied.meta.update(model.meta)
    return copied


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
