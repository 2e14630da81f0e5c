"""What Inductor generated for one graph, read from its output code (not assumed).

Every compiled graph's wrapper is a Python module Inductor writes and loads through
``PyCodeCache`` (also on an FX-graph-cache hit). Its source names the kernels it generated
(``cpp_fused_*`` on CPU, ``triton_*`` on GPU: each one a fusion of the graph's pointwise and
reduction ops) and every call it makes to an existing kernel (``extern_kernels.mm``,
``torch.ops.aten._scaled_dot_product_flash_attention_for_cpu``, mkldnn's fused convolutions).
"""

from __future__ import annotations

import collections
import re

from graphopt.core.protocols import FusionReport

_KERNEL = re.compile(r"^(cpp_fused_\w+|triton_\w+)\s*=\s*async_compile\.", re.M)
_EXTERN = re.compile(r"\b(extern_kernels\.\w+|torch\.ops\.\w+\.\w+)(?:\.default)?\(")
_FUSED_CALLS = ("scaled_dot_product", "_convolution_pointwise", "_linear_pointwise", "mkldnn_rnn", "addmm")


def loaded_modules() -> int:
    """How many wrapper modules Inductor has loaded so far (read before compiling)."""
    from torch._inductor.codecache import PyCodeCache

    return len(PyCodeCache.modules)


def read_report(since: int) -> FusionReport:
    """The FusionReport of the wrapper modules loaded after ``since``."""
    from torch._inductor.codecache import PyCodeCache

    sources = []
    for module in PyCodeCache.modules[since:]:
        try:
            with open(module.__file__) as handle:
                sources.append(handle.read())
        except (OSError, AttributeError, TypeError):
            continue
    return from_source("\n".join(sources))


def from_source(source: str) -> FusionReport:
    kernels = _KERNEL.findall(source)
    calls = collections.Counter(_short(name) for name in _EXTERN.findall(source))
    ops = dict(calls) | {"generated kernel": len(kernels)}
    fused = {name: n for name, n in calls.items() if any(key in name for key in _FUSED_CALLS)}
    fused_kernels = sum(1 for k in kernels if k.startswith(("cpp_fused_", "triton_")) and k.count("_") > 2)
    if fused_kernels:
        fused["generated fused kernel"] = fused_kernels
    return FusionReport(kernels=len(kernels) + sum(calls.values()), ops=ops, fused=fused, fired=dict(fused))


def _short(name: str) -> str:
    return name.removeprefix("torch.ops.").removeprefix("extern_kernels.")
