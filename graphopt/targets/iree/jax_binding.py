"""A JAX function's arguments calling a module IREE compiled: what ``graphopt.jax.optimize(...,
target="iree-cpu")`` hands back.

The callable takes ``fn``'s arguments (any pytrees), flattens them as ``jax.export`` did, and runs
the compiled module on them: weights held as parameters are bound when the module is loaded and
again only when the caller passes other weight arrays (checked by identity, so a loop that calls
with the same params pays nothing); the other inputs go in per call. Outputs come back as jax
arrays in ``fn``'s output tree.

Arguments of another structure, shape or dtype than the example's go to ``fallback``: ``fn``
exported at those arguments and compiled by IREE as is, once per signature. Tracers (a call
inside ``jax.jit`` or ``jax.grad``) go to ``fn`` itself, as IREE cannot run inside a JAX trace.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


class IreeFunction:
    def __init__(self, compiled, exported, names: list[str], fallback):
        self.compiled, self.exported, self.fallback = compiled, exported, fallback
        self.names = names  # input name of each flattened argument, in order
        self.held = [names.index(name) for name in compiled.held]
        self._held_values: tuple[list, dict] = ([], {})  # (the jax leaves last bound, their numpy arrays)

    def __call__(self, *args):
        leaves, tree = jax.tree_util.tree_flatten((args, {}))
        if not self._matches(leaves, tree):
            return self.fallback(*args)
        passed = {
            name: np.asarray(leaf)
            for index, (name, leaf) in enumerate(zip(self.names, leaves))
            if index not in self.held
        }
        feeds = self._held(leaves) | passed
        outputs = self.compiled.run(feeds)
        return jax.tree_util.tree_unflatten(self.exported.out_tree, [jnp.asarray(value) for value in outputs])

    def _matches(self, leaves, tree) -> bool:
        if tree != self.exported.in_tree or any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return False
        return all(
            tuple(np.shape(leaf)) == tuple(aval.shape) and np.result_type(leaf) == aval.dtype
            for leaf, aval in zip(leaves, self.exported.in_avals)
        )

    def _held(self, leaves) -> dict:
        """The held inputs' arrays: the same objects as last call when the caller passed the same
        weights (the loaded module is kept), new ones otherwise (it is loaded again)."""
        last, values = self._held_values
        current = [leaves[index] for index in self.held]
        if len(last) != len(current) or any(a is not b for a, b in zip(last, current)):
            values = {self.names[index]: np.asarray(leaf) for index, leaf in zip(self.held, current)}
            self._held_values = (current, values)
        return values


def as_is(target, fn):
    """``fn`` exported at the arguments of each call and compiled by ``target`` as is, once per
    signature; tracers go to ``fn`` itself."""
    from jax import export

    from graphopt.core import registry

    compiled: dict = {}

    def call(*args):
        leaves, tree = jax.tree_util.tree_flatten((args, {}))
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return fn(*args)
        signature = (tree, tuple((tuple(np.shape(leaf)), str(np.result_type(leaf))) for leaf in leaves))
        if signature not in compiled:
            exported = export.export(jax.jit(fn, keep_unused=True))(*args)
            _, fmt, _ = registry.format_of(exported)
            graph = fmt.from_object(exported)
            names = [spec.name for spec in fmt.input_specs(graph)]
            compiled[signature] = IreeFunction(target.compile(graph, report=False), exported, names, fn)
        return compiled[signature](*args)

    return call
