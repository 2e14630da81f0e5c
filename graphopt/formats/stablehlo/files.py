"""Reading and writing StableHLO modules in the three forms JAX users have.

A module is held as StableHLO text: MLIR objects belong to the context that parsed them, and text
is what every form converts to and from (``module.context`` parses it again on use). A module
read from a serialized ``jax.export.Exported`` keeps the Exported, so that it is written back as
one (its calling convention, shardings and symbolic shapes are preserved; only the module
changes). Anything that is not one of the three forms, or uses a dialect jaxlib does not
register, is refused with a one-line BadModelError.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from graphopt.core.atomic import atomic_path
from graphopt.core.errors import BadModelError

TEXT, BYTECODE, EXPORTED = "text", "bytecode", "exported"
SUFFIXES = {".mlir": TEXT, ".stablehlo": TEXT, ".mlirbc": BYTECODE, ".jaxexport": EXPORTED}


@dataclasses.dataclass
class StableHloModule:
    text: str  # the module as StableHLO text, debug locations dropped
    form: str  # TEXT, BYTECODE or EXPORTED: how it was read, and how it is written back by default
    exported: object | None = None  # the jax.export.Exported it came from

    def with_text(self, text: str) -> StableHloModule:
        return dataclasses.replace(self, text=text)


def load(path) -> StableHloModule:
    """Read ``path`` (text, bytecode, or a serialized Exported: by content, not only suffix)."""
    path = Path(path)
    if not path.is_file():
        raise BadModelError(f"{path}: no such file")
    data = path.read_bytes()
    if data.startswith(b"ML\xefR"):  # MLIR bytecode's magic number
        return StableHloModule(parsed_text(data, path), BYTECODE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _from_exported(data, path)
    return StableHloModule(parsed_text(text, path), TEXT)


def save(module: StableHloModule, path, form: str | None = None) -> None:
    """Write ``module`` to ``path`` atomically, in ``form`` (default: by suffix, else its own)."""
    form = form or SUFFIXES.get(Path(path).suffix.lower(), module.form)
    if form == EXPORTED and module.exported is None:
        raise BadModelError(f"{path}: a serialized jax.export needs a module read from one")
    if form == TEXT:
        payload = module.text.encode()
    else:
        payload = to_bytecode(module.text) if form == BYTECODE else _exported_bytes(module)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(payload)


def to_bytecode(text: str) -> bytes:
    from jax.interpreters import mlir as jax_mlir

    from graphopt.formats.stablehlo.module import parsed

    with parsed(text) as module:
        return jax_mlir.module_to_bytecode(module)


def parsed_text(source, path) -> str:
    """The module's text after a round trip through MLIR's parser (so it is valid StableHLO)."""
    from graphopt.formats.stablehlo.module import parsed

    try:
        with parsed(source) as module:
            return str(module.operation.get_asm(enable_debug_info=False))
    except BadModelError as error:
        raise BadModelError(f"{path}: {error}") from None


def _from_exported(data: bytes, path) -> StableHloModule:
    from jax import export

    try:
        exported = export.deserialize(bytearray(data))
    except Exception as error:  # flatbuffers raise several types on foreign bytes
        raise BadModelError(
            f"{path}: not a StableHLO module (MLIR text, bytecode or a serialized jax.export): {type(error).__name__}"
        ) from None
    return StableHloModule(parsed_text(exported.mlir_module(), path), EXPORTED, exported)


def from_exported(exported) -> StableHloModule:
    """The module of a ``jax.export.Exported`` in memory (written back as one)."""
    return StableHloModule(parsed_text(exported.mlir_module(), "the exported function"), EXPORTED, exported)


def replaced(module: StableHloModule):
    """``module.exported`` with its module replaced by ``module``'s (calling convention kept)."""
    return dataclasses.replace(module.exported, mlir_module_serialized=to_bytecode(module.text))


def _exported_bytes(module: StableHloModule) -> bytes:
    return bytes(replaced(module).serialize())
