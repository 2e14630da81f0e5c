"""Questions asked of a StableHLO module: its ops, its entry function's inputs, a fingerprint.

Parsing goes through ``jax.interpreters.mlir.make_ir_context()``, which registers the func,
stablehlo, chlo and other dialects JAX emits (a bare ``jaxlib.mlir.ir.Context()`` registers none);
an unknown dialect is a parse error, reported as one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator

import numpy as np

from graphopt.core.errors import BadModelError
from graphopt.core.protocols import InputSpec

ENTRY = "main"  # the function JAX's lowering and jax.export call
ELEMENT_TYPES = {
    "f64": "float64",
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "i1": "bool",
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
    "ui8": "uint8",
    "ui16": "uint16",
    "ui32": "uint32",
    "ui64": "uint64",
}


@contextlib.contextmanager
def parsed(source: str | bytes):
    """The module parsed in a fresh context with JAX's dialects (text or bytecode)."""
    from jax.interpreters import mlir as jax_mlir
    from jaxlib.mlir import ir

    with jax_mlir.make_ir_context() as context:
        try:
            module = ir.Module.parse(source, context=context)
        except Exception as error:  # MLIRError, ValueError: the parser's diagnostics
            raise BadModelError(
                f"not a StableHLO module (MLIR text, bytecode or a serialized jax.export): {_first_line(error)}"
            ) from None
        yield module


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.strip().startswith("note:")]
    detail = next((line for line in lines if "error:" in line), lines[0] if lines else type(error).__name__)
    return detail[:200]


def entry_function(module):
    for op in module.body.operations:
        if op.operation.name == "func.func" and op.attributes["sym_name"].value == ENTRY:
            return op
    raise BadModelError(f"no @{ENTRY} function: not a module JAX lowered or exported")


def walk(operation) -> Iterator:
    """Every operation nested in ``operation`` (regions included), in order."""
    for region in operation.regions:
        for block in region.blocks:
            for op in block.operations:
                yield op
                yield from walk(op.operation)


def op_types(text: str) -> list[str]:
    with parsed(text) as module:
        return [op.operation.name for op in walk(module.operation)]


# op name -> the ONNX operator name the learned policy's features count (Format.portable_op_types);
# softmax, layer norm and relu have no one op here (they are reductions and elementwise ops)
PORTABLE_OPS = {
    **dict.fromkeys(("stablehlo.dot_general", "stablehlo.dot"), "MatMul"),
    "stablehlo.convolution": "Conv",
    "chlo.erf": "Erf",  # also the name of the stablehlo.composite JAX writes for erf
    "stablehlo.tanh": "Tanh",
    "stablehlo.logistic": "Sigmoid",
    "stablehlo.gather": "Gather",
    "stablehlo.transpose": "Transpose",
    **dict.fromkeys(("stablehlo.reshape", "stablehlo.dynamic_reshape"), "Reshape"),
    "stablehlo.add": "Add",
    "stablehlo.multiply": "Mul",
    "stablehlo.divide": "Div",
    "stablehlo.subtract": "Sub",
    "stablehlo.select": "Where",
    **dict.fromkeys(("stablehlo.broadcast_in_dim", "stablehlo.dynamic_broadcast_in_dim"), "Expand"),
    "stablehlo.concatenate": "Concat",
    **dict.fromkeys(("stablehlo.slice", "stablehlo.dynamic_slice", "stablehlo.real_dynamic_slice"), "Slice"),
    "stablehlo.power": "Pow",
    **dict.fromkeys(("stablehlo.sqrt", "stablehlo.rsqrt"), "Sqrt"),
    "stablehlo.convert": "Cast",
    "stablehlo.batch_norm_inference": "BatchNormalization",
    "stablehlo.maximum": "Max",
    "stablehlo.minimum": "Min",
    "stablehlo.clamp": "Clip",
}


def portable_op_types(text: str) -> list[str]:
    """The ops in the shared vocabulary (PORTABLE_OPS): a ``stablehlo.composite`` counts as the op
    it names ("chlo.erf" is one Erf), and the private functions that spell composites out do not
    count, so the count reads the graph as its author wrote it."""
    with parsed(text) as module:
        functions = {op.attributes["sym_name"].value: op for op in module.body.operations if _is_function(op)}
        decompositions = {
            op.attributes["decomposition"].value
            for function in functions.values()
            for op in walk(function.operation)
            if op.operation.name == "stablehlo.composite"
        }
        names = []
        for name, function in functions.items():
            if name not in decompositions:
                names += [_portable(op) for op in walk(function.operation)]
        return names


def _is_function(op) -> bool:
    return op.operation.name == "func.func"


def _portable(op) -> str:
    name = op.operation.name
    if name == "stablehlo.composite":
        name = op.attributes["name"].value
    return PORTABLE_OPS.get(name, name)


def input_name(index: int) -> str:
    """The name the engine's feeds give the entry function's argument ``index``."""
    return f"arg{index}"


def input_specs(text: str, symbols: list[tuple] | None = None) -> list[InputSpec]:
    """The entry function's arguments: dtype and dims, a dynamic dim named by ``symbols`` (an
    Exported's in_avals shapes) where given, else None."""
    from jaxlib.mlir import ir

    specs = []
    with parsed(text) as module:
        arguments = list(entry_function(module).arguments)
        symbols = (
            symbols if symbols is not None and len(symbols) == len(arguments) else None
        )  # else they do not line up
        for index, argument in enumerate(arguments):
            tensor = ir.RankedTensorType(argument.type)
            known = symbols[index] if symbols else None
            dims = tuple(
                (str(known[i]) if known else None) if tensor.is_dynamic_dim(i) else tensor.shape[i]
                for i in range(tensor.rank)
            )
            specs.append(InputSpec(input_name(index), dtype(str(tensor.element_type)), dims))
    return specs


def result_count(text: str) -> int:
    """How many results the entry function returns."""
    from jaxlib.mlir import ir

    with parsed(text) as module:
        function_type = ir.FunctionType(ir.TypeAttr(entry_function(module).attributes["function_type"]).value)
        return len(function_type.results)


def dtype(element_type: str) -> np.dtype:
    if element_type not in ELEMENT_TYPES:
        raise BadModelError(f"element type {element_type} is not supported")
    name = ELEMENT_TYPES[element_type]
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


_NAMES = re.compile(r"(%[\w#.]+|@[\w.$-]+|loc\([^)]*\))")


def fingerprint(text: str) -> str:
    """Equal for modules that compute the same way: value names, symbol names and locations left
    out, constants and attributes kept."""
    canonical = _NAMES.sub("_", text)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
