"""Where `graphopt optimize` writes, checked before any work, and the writing itself.

The output stands alone: a kept candidate or a handed-back original carries its own weights
(external data in, external data out as ``<output>.data``; inline stays inline), so the input's
folder can be deleted afterwards. The input is never overwritten unless asked (``in_place``),
and then it is replaced atomically, weights included. A missing output folder is an error unless
the caller asks for it to be made: a typo in ``-o`` should not silently create a tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import onnx_ir as ir

from graphopt.core import atomic
from graphopt.core.atomic import atomic_path
from graphopt.core.errors import GraphoptError
from graphopt.formats.onnx import files as onnx_files


def check_destination(model_path, output_path, *, in_place: bool = False, make_dirs: bool = False) -> None:
    """Refuse, with one line, an output that would overwrite the input or its weights, or land nowhere."""
    atomic.check_destination(model_path, output_path, in_place=in_place, make_dirs=make_dirs)
    source, output = Path(model_path).resolve(), Path(output_path).resolve()
    weights = output.parent / onnx_files.external_data_name(output)
    if output != source and weights.exists() and weights.resolve() in _external_files(source):
        raise GraphoptError(f"writing {output_path} would overwrite {weights.name}, which holds the input's weights")


def _external_files(model_path: Path) -> set[Path]:
    try:
        return onnx_files.external_data_files(onnx_files.load(model_path))
    except GraphoptError:
        return set()  # loading reports the problem itself, with its own message


def write_candidate(model: ir.Model, output_path, *, external_data: bool) -> None:
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    onnx_files.save(model, output_path, external_data=external_data)


def write_original(original: ir.Model, model_path, output_path, *, ir_version: int) -> None:
    """The input handed back (``original``, loaded from ``model_path`` and unchanged): its own
    bytes where it is one self-contained file, else rewritten with its weights beside the output;
    at the IR version ORT can load."""
    source, output = Path(model_path), Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    if onnx_files.has_external_data(original):
        handed_back = onnx_files.copy(original)  # the caller's model stays as it was
        handed_back.ir_version = ir_version
        onnx_files.save(handed_back, output, external_data=True)
    elif original.ir_version != ir_version:
        proto = onnx.load(str(source), load_external_data=False)
        proto.ir_version = ir_version
        with atomic_path(output) as tmp:
            onnx.save(proto, str(tmp))
    elif source.resolve() != output.resolve():
        with atomic_path(output) as tmp:
            shutil.copyfile(source, tmp)
