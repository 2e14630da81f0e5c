"""Compiled IREE modules, kept by what they were compiled from: compiles dominate a search on
IREE (1-5 s for a small model on 2 cores), and the engine compiles the same module more than
once (the baseline for its report and again for timing, each lever's check and timing).

The key is a SHA-256 of the module (StableHLO text, or the bytecode of an imported ONNX model),
its input type and every flag; the value is the VM flatbuffer and the scheduling statistics
written with it. The cache lives in the process and holds at most
MAX_BYTES of flatbuffers, oldest dropped first.
"""

from __future__ import annotations

import collections
import hashlib
import os
import tempfile

from graphopt.core.errors import BadModelError

MAX_BYTES = 512 << 20
_ENTRIES: collections.OrderedDict[str, tuple[bytes, str]] = collections.OrderedDict()
STATISTICS = "--iree-scheduling-dump-statistics-format=csv"


def key(source: str | bytes, input_type: str, backend: str, flags: tuple[str, ...]) -> str:
    digest = hashlib.sha256(source.encode() if isinstance(source, str) else source)
    digest.update("\0".join((input_type, backend, *flags)).encode())
    return digest.hexdigest()


def compiled(source: str | bytes, backend: str, flags: tuple[str, ...], input_type: str = "stablehlo"):
    """(VM flatbuffer, scheduling statistics as CSV) of ``source`` (MLIR text, or bytecode)
    compiled for ``backend``."""
    entry_key = key(source, input_type, backend, flags)
    if entry_key in _ENTRIES:
        _ENTRIES.move_to_end(entry_key)
        return _ENTRIES[entry_key]
    entry = _compile(source, input_type, backend, flags)
    _ENTRIES[entry_key] = entry
    while sum(len(vmfb) for vmfb, _ in _ENTRIES.values()) > MAX_BYTES and len(_ENTRIES) > 1:
        _ENTRIES.popitem(last=False)
    return entry


def _compile(source: str | bytes, input_type: str, backend: str, flags: tuple[str, ...]) -> tuple[bytes, str]:
    import iree.compiler

    with tempfile.TemporaryDirectory(prefix="graphopt-iree-") as folder:
        statistics = os.path.join(folder, "statistics.csv")
        extra = [*flags, STATISTICS, f"--iree-scheduling-dump-statistics-file={statistics}"]
        options = {"input_type": input_type, "target_backends": [backend], "extra_args": extra}
        try:
            if isinstance(source, str):
                vmfb = iree.compiler.compile_str(source, **options)
            else:  # bytecode: written once, read by the compiler from the file
                path = os.path.join(folder, "module.mlirbc")
                with open(path, "wb") as file:
                    file.write(source)
                vmfb = iree.compiler.compile_file(path, **options)
        except iree.compiler.CompilerToolError as error:
            raise BadModelError(f"IREE cannot compile the module: {_first_error(error)}") from None
        with open(statistics) as file:
            return vmfb, file.read()


def _first_error(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if "error:" in line]
    return (lines[0] if lines else str(error).splitlines()[0])[:200]
