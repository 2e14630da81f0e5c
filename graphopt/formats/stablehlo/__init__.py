"""StableHLO as a graphopt Format, on jaxlib's MLIR bindings (no hand-written parser).

Files: StableHLO text (``.mlir``, what ``jax.jit(f).lower(...).as_text()`` writes), MLIR bytecode
(``.mlirbc``) and a serialized ``jax.export.Exported`` (``.jaxexport``; shape-polymorphic
modules keep their symbolic dimensions). ``module.py`` walks a module: ops, the entry function's
inputs with their shapes and symbols, a fingerprint.
"""

from graphopt.formats.stablehlo.files import StableHloModule, load, save
from graphopt.formats.stablehlo.format import StableHloFormat

__all__ = ["StableHloFormat", "StableHloModule", "load", "save"]
