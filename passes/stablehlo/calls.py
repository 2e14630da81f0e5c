"""Private function calls inlined into the entry function.

jax exports some library functions as calls to private functions of the module: ``jnp.var`` is
``call @_var(x, ddof)``, and inside it ``call @_where(...)`` for the ``ddof`` guard. A LayerNorm
written with ``jnp.var`` (Haiku's and Equinox's LayerNorm are) then reaches the compiler split at
the call: IREE runs it as its two reductions plus an elementwise dispatch, a DMA copy and a fill
(IREE 3.13, a 16x384 LayerNorm), where the same math written inline is the two reductions alone.
XLA inlines calls itself, so the rule is judged per target.

    %v = call @_var(%x, %c)     =>  the ops of @_var's body, on %x and %c; %v their result

Legality: the callee's single block is copied before the call with its arguments replaced by
the call's operands, and the call's results by the values its ``return`` returns: the same ops on
the same values, in the same order, so outputs are bitwise equal. Only private functions with one
block are inlined (a public function is an entry point of its own; several blocks need control
flow the copy does not rebuild). Calls nested in the body are inlined by the next match.
"""

from __future__ import annotations

from graphopt.core.rules import NodeRule


def _callee(op):
    """The func.func a func.call calls, found in the module holding the call."""
    from jaxlib.mlir import ir

    name = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
    module = op.operation.parent
    while module is not None and module.name != "builtin.module":
        module = module.parent
    if module is None:
        return None
    for candidate in module.regions[0].blocks[0].operations:
        if candidate.operation.name == "func.func" and ir.StringAttr(candidate.attributes["sym_name"]).value == name:
            return candidate
    return None


def match_inline_call(op) -> dict | str | None:
    """Bindings: the call and the private function it calls."""
    if op.name != "func.call":
        return None
    callee = _callee(op)
    if callee is None:
        return "the callee is not a function of this module"
    visibility = callee.attributes["sym_visibility"].value if "sym_visibility" in callee.attributes else "public"
    if visibility != "private":
        return "the callee is public: an entry point of its own"
    if len(callee.regions[0].blocks) != 1:
        return "the callee has more than one block"
    return {"op": op, "callee": callee}


def rewrite_inline_call(module, op, callee) -> None:
    from jaxlib.mlir import ir

    block = callee.regions[0].blocks[0]
    mapping = dict(zip(block.arguments, op.operands))
    for inner in block.operations:
        if inner.name == "func.return":
            returned = [mapping.get(value, value) for value in inner.operands]
            break
        copied = inner.clone(ir.InsertionPoint(op))
        for index, value in enumerate(inner.operands):
            if value in mapping:
                copied.operands[index] = mapping[value]
        mapping.update(zip(inner.results, copied.results))
    for result, value in zip(op.results, returned):
        result.replace_all_uses_with(value)
    op.erase()


RULES = [
    NodeRule(
        "inline_call",
        "calls",
        "call of a private one-block function -> its body's ops in place (jnp.var's @_var)",
        match_inline_call,
        rewrite_inline_call,
    ),
]
