"""Module weights among a Dynamo graph's inputs: which inputs they are, a copy of the graph with
them held as constants, and a guard that notices when the user changes one.

Dynamo lifts a module's parameters and buffers into graph inputs, so a compiler sees weights
and activations alike. Those that bake weights in (Inductor's ``freezing``, an ONNX Runtime
session's initializers) fold and prepack them once, which is only right while they stay what
they were: an input is a weight when it is module state (a ``Parameter``, or a buffer Dynamo
marked as a static input) and the graph never writes to it (a KV cache or
BatchNorm's running statistics in training mode are written). The guard holds each baked
weight's storage address and version counter: an in-place update (``weight.mul_``) and a
swapped tensor (``module.weight = Parameter(...)``) both show there.
"""

from __future__ import annotations

import dataclasses
import operator

import torch
import torch.fx

from graphopt.formats.fx.graphs import copy_module
from graphopt.formats.fx.ops import kind

_VIEWS = {
    "view",
    "reshape",
    "getitem",
    "narrow",
    "select",
    "slice",
    "transpose",
    "permute",
    "t",
    "expand",
    "unsqueeze",
    "squeeze",
    "flatten",
    "unflatten",
    "as_strided",
    "split",
    "chunk",
    "unbind",
    "view_as",
    "detach",
    "contiguous",
}


def weight_inputs(gm: torch.fx.GraphModule, inputs) -> list[int]:
    """Positions of ``gm``'s inputs that are module weights the graph only reads."""
    placeholders = [node for node in gm.graph.nodes if node.op == "placeholder"]
    return [
        i for i, (node, value) in enumerate(zip(placeholders, inputs)) if _module_state(value) and not _written(node)
    ]


def _module_state(value) -> bool:
    """A parameter, or a tensor Dynamo marked as a static input (the buffers of the modules it
    inlines; also tensors a user marked with ``mark_static_address``, which the guard covers).
    Dynamo's own record of each input's source is dropped once the backend returns."""
    return isinstance(value, torch.nn.Parameter) or (
        isinstance(value, torch.Tensor) and getattr(value, "_dynamo_static_input_type", None) is not None
    )


def _written(node: torch.fx.Node) -> bool:
    """Whether the graph writes to ``node`` or to a view of it."""
    seen, todo = {node}, [node]
    while todo:
        current = todo.pop()
        for user in current.users:
            if _in_place(user) and user.args and user.args[0] is current:
                return True
            if kind(user) in _VIEWS and user not in seen:
                seen.add(user)
                todo.append(user)
    return False


def _in_place(node: torch.fx.Node) -> bool:
    if node.op == "call_function" and node.target is operator.setitem:
        return True
    name = kind(node) or ""
    return name.endswith("_") and not name.endswith("__")


def with_weights_held(gm: torch.fx.GraphModule, inputs, positions: list[int]) -> torch.fx.GraphModule:
    """A copy of ``gm`` whose inputs at ``positions`` are buffers holding ``inputs[i]`` (shared
    storage, not copied): what remains are the inputs at ``remaining(len(inputs), positions)``."""
    module = copy_module(gm)
    placeholders = [node for node in module.graph.nodes if node.op == "placeholder"]
    for i in positions:
        name = f"_weight_{i}"
        module.register_buffer(name, inputs[i].detach())
        with module.graph.inserting_before(placeholders[i]):
            held = module.graph.get_attr(name)
        held.meta = dict(placeholders[i].meta)
        placeholders[i].replace_all_uses_with(held)
        module.graph.erase_node(placeholders[i])
    module.recompile()
    return module


def remaining(count: int, positions) -> list[int]:
    """Positions of the inputs that are still inputs once those at ``positions`` are held."""
    held = set(positions)
    return [i for i in range(count) if i not in held]


@dataclasses.dataclass(frozen=True)
class WeightGuard:
    """Each held weight's position, storage address and version counter when it was baked."""

    held: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def of(cls, inputs, positions) -> WeightGuard:
        return cls(tuple((i, inputs[i].data_ptr(), inputs[i]._version) for i in positions))

    def changed(self, args) -> bool:
        return any(args[i].data_ptr() != address or args[i]._version != version for i, address, version in self.held)
