"""Numerical equivalence of two graphs' outputs on the same inputs, with tolerances per dtype.

An element passes when ``|candidate - reference| <= atol * scale + rtol * |reference|``, where
``scale = max(1, max|reference|)`` of that output, so that an output whose values are in the
hundreds (logits) is not held to an absolute error meant for values near one. NaN and +-Inf must
sit at exactly the same positions (with the same sign); integers and bools must match exactly.

Why these numbers: a legal rewrite (a fused LayerNorm, Gelu, Attention, a Gemm instead of
MatMul+Add) reassociates reductions and may use a different but documented-accurate kernel
(ORT's Gelu uses its own erf). Reassociating a sum of K terms moves the result by up to about
``K * eps`` relative to the sum of magnitudes; across a dozen layers with K <= 4096 that stays
within ~1e3 ulp. So fp32 (eps 1.2e-7) gets rtol 1e-4 and atol 1e-5 (about 800 and 80 ulp).
fp16 (eps 9.8e-4) and bf16 (eps 7.8e-3) store every intermediate in few bits, so the same
~10 ulp of per-op rounding difference is 1e-2 and 6e-2. Nothing looser: a real bug (a wrong
axis, a dropped bias, a mis-scaled softmax) shows up as errors of 1e-2 or more in fp32.
"""

from __future__ import annotations

import dataclasses

import numpy as np

TOLERANCES: dict[str, tuple[float, float]] = {  # dtype name -> (rtol, atol)
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (6e-2, 1e-2),
}


@dataclasses.dataclass(frozen=True)
class OutputComparison:
    name: str
    dtype: str
    max_abs_error: float
    max_rel_error: float
    ok: bool
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Equivalence:
    outputs: tuple[OutputComparison, ...]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs)

    def first_failure(self) -> OutputComparison | None:
        return next((o for o in self.outputs if not o.ok), None)

    def merged(self, other: Equivalence) -> Equivalence:
        """Worst case over two comparisons of the same outputs (e.g. two input sizes)."""
        return Equivalence(tuple(_worse(a, b) for a, b in zip(self.outputs, other.outputs, strict=True)))


def _worse(a: OutputComparison, b: OutputComparison) -> OutputComparison:
    if a.ok != b.ok:
        return b if a.ok else a
    return a if a.max_abs_error >= b.max_abs_error else b


def compare(
    names: list[str],
    reference: list[np.ndarray],
    candidate: list[np.ndarray],
    tolerances: dict[str, tuple[float, float]] | None = None,
) -> Equivalence:
    tolerances = tolerances or TOLERANCES
    return Equivalence(
        tuple(_compare_one(n, r, c, tolerances) for n, r, c in zip(names, reference, candidate, strict=True))
    )


def _compare_one(name, ref, cand, tolerances) -> OutputComparison:
    ref, cand = np.asarray(ref), np.asarray(cand)
    dtype = ref.dtype.name
    if ref.shape != cand.shape or ref.dtype != cand.dtype:
        return OutputComparison(
            name, dtype, np.inf, np.inf, False, f"{cand.dtype}{list(cand.shape)} != {ref.dtype}{list(ref.shape)}"
        )
    if ref.dtype.kind not in "fc" and dtype != "bfloat16":
        mismatched = int(np.count_nonzero(ref != cand))
        err = 0.0 if not mismatched else float(np.max(np.abs(ref.astype(np.float64) - cand.astype(np.float64))))
        return OutputComparison(
            name, dtype, err, err, not mismatched, f"{mismatched} elements differ" if mismatched else ""
        )
    r, c = ref.astype(np.float64), cand.astype(np.float64)
    finite = np.isfinite(r)
    if not np.array_equal(finite, np.isfinite(c)) or not np.array_equal(r[~finite], c[~finite], equal_nan=True):
        return OutputComparison(name, dtype, np.inf, np.inf, False, "NaN/Inf positions differ")
    if not finite.any():
        return OutputComparison(name, dtype, 0.0, 0.0, True)
    rtol, atol = tolerances.get(dtype, TOLERANCES["float32"])
    r, c = r[finite], c[finite]
    diff = np.abs(c - r)
    scale = max(1.0, float(np.max(np.abs(r))))
    bound = atol * scale + rtol * np.abs(r)
    abs_err = float(diff.max())
    rel_err = float((diff / np.maximum(np.abs(r), scale * 1e-3)).max())
    ok = bool(np.all(diff <= bound))
    reason = "" if ok else f"max |error| {abs_err:.3g} above rtol={rtol:g}, atol={atol:g}*{scale:.3g}"
    return OutputComparison(name, dtype, abs_err, rel_err, ok, reason)
