"""Inputs for a StableHLO module's entry function: the user's (.npz, by argument name or in
order) or generated from the argument types.

Floats are standard normal (what weights and activations look like after initialisation),
integers small and non-negative (token ids and positions: XLA clamps gather indices, so any
value is legal, but small ones keep a model's embedding lookups meaningful), booleans fair coin
flips. Dynamic dims (shape-polymorphic exports) are refused: XLA compiles static shapes here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphopt.core.errors import BadModelError
from graphopt.core.protocols import InputSpec

INT_HIGH = 16  # generated integers lie in [0, INT_HIGH)


def feeds(specs: list[InputSpec], shapes=None, inputs_file=None) -> list[dict[str, np.ndarray]]:
    if inputs_file:
        return [_loaded(specs, inputs_file)]
    dynamic = [s.name for s in specs if any(not isinstance(d, int) for d in s.dims)]
    if dynamic:
        raise BadModelError(
            f"inputs {', '.join(dynamic)} have dynamic dimensions; export the module at fixed sizes for XLA"
        )
    return [{s.name: generated(s, np.random.default_rng(seed)) for s in specs} for seed in (0, 1)]


def generated(spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(spec.dims)
    if spec.dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(spec.dtype, np.integer):
        return rng.integers(0, INT_HIGH, shape).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)


def _loaded(specs: list[InputSpec], path) -> dict[str, np.ndarray]:
    if not Path(path).is_file():
        raise BadModelError(f"{path}: no such inputs file")
    with np.load(path) as data:
        arrays = dict(data)
    names = [s.name for s in specs]
    if set(arrays) != set(names):
        if len(arrays) != len(names):
            raise BadModelError(f"{path}: {len(arrays)} arrays for {len(names)} inputs ({', '.join(names)})")
        arrays = dict(zip(names, arrays.values()))  # in order, when the file names them otherwise
    for spec in specs:
        value = arrays[spec.name]
        if tuple(value.shape) != tuple(spec.dims) or value.dtype != spec.dtype:
            raise BadModelError(
                f"{path}: {spec.name} is {value.dtype}{list(value.shape)}, "
                f"the module takes {spec.dtype}{list(spec.dims)}"
            )
    return arrays
