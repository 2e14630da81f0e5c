"""Weights held as IREE parameters: the entry function's weight arguments become module globals
whose values are named parameters, bound once when the module is loaded.

JAX passes weights as arguments, so a module compiled as exported must treat them as unknown on
every call: a matmul's weight is packed for IREE's microkernels (data tiling) per call, and a
transposed weight (``x @ embed.T``) is transposed per call. Held as parameters, as IREE's own
frontends hold a model's weights (iree-turbine's parameter archives), what depends on weights
alone is hoisted by IREE's const-expr hoisting into ``util.initializer`` and runs once at load.

    func @main(%arg0: tensor<384x1536xf32>, %arg1: tensor<1x16x384xf32>)
    =>  util.global private @__graphopt_arg0 = #flow.parameter.named<"graphopt"::"arg0"> : tensor<...>
        func @main(%arg1: tensor<1x16x384xf32>) { %w = util.global.load @__graphopt_arg0 ... }

The values come from a ``ParameterIndex`` built from the arrays at load (target.py). The rewrite
runs in IREE's own MLIR context (it registers stablehlo, util and flow), so the module is checked
by the verifier of the compiler that will read it.
"""

from __future__ import annotations

SCOPE = "graphopt"


def global_name(input_name: str) -> str:
    return f"__graphopt_{input_name}"


def held_as_parameters(text: str, names: dict[str, int]) -> str:
    """``text`` with the entry arguments ``names`` (input name -> argument index) turned into
    parameter-backed globals; the other arguments keep their order."""
    from iree.compiler import ir

    if not names:
        return text
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        main = _entry(module, ir)
        block = main.regions[0].blocks[0]
        first = block.operations[0]
        for name, index in names.items():
            argument = block.arguments[index]
            _declare_global(module, name, argument.type, ir)
            load = ir.Operation.create(
                "util.global.load",
                results=[argument.type],
                attributes={"global": ir.FlatSymbolRefAttr.get(global_name(name))},
                ip=ir.InsertionPoint(first),
            )
            argument.replace_all_uses_with(load.result)
        _drop_arguments(main, block, set(names.values()), ir)
        if not module.operation.verify():
            raise ValueError("holding weights as parameters left an invalid module")
        return str(module)


def _entry(module, ir):
    for op in module.body.operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == "main":
            return op
    raise ValueError("no @main function")


def _declare_global(module, name: str, value_type, ir) -> None:
    ir.Operation.create(
        "util.global",
        attributes={
            "sym_name": ir.StringAttr.get(global_name(name)),
            "sym_visibility": ir.StringAttr.get("private"),
            "type": ir.TypeAttr.get(value_type),
            "initial_value": ir.Attribute.parse(f'#flow.parameter.named<"{SCOPE}"::"{name}"> : {value_type}'),
        },
        ip=ir.InsertionPoint.at_block_begin(module.body),
    )


def _drop_arguments(main, block, indices: set[int], ir) -> None:
    """Erase the entry block's arguments at ``indices`` and their types and attributes."""
    for index in sorted(indices, reverse=True):
        block.erase_argument(index)
    function_type = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    inputs = [t for i, t in enumerate(function_type.inputs) if i not in indices]
    main.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, function_type.results))
    if "arg_attrs" in main.attributes:
        kept = [a for i, a in enumerate(ir.ArrayAttr(main.attributes["arg_attrs"])) if i not in indices]
        main.attributes["arg_attrs"] = ir.ArrayAttr.get(kept)
