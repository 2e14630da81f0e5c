"""IREE as a graphopt Target for StableHLO modules: compile with iree-compile, the dispatch report
from its scheduling statistics, compile flags as levers, weights held as parameters.

``import iree.compiler`` and ``iree.runtime`` happen here, so the extra's absence is one line:
``--target iree-cpu`` without ``pip install 'graphopt[iree]'`` says how to install it (exit 2)."""

from graphopt.core.errors import UsageError

try:
    import iree.compiler
    import iree.runtime  # noqa: F401
except ImportError:  # pragma: no cover - exercised by tests/test_iree_target.py in a subprocess
    iree = None


def target_from_name(name: str):
    """``iree-cpu`` (measured here); ``iree-cuda``, ``iree-rocm`` and ``iree-vulkan`` are written
    for IREE's other backends and untested: no such device on the machines this was built on."""
    if iree is None:
        raise UsageError(f"target {name!r} needs IREE: pip install 'graphopt[iree]'")
    from graphopt.targets.iree.target import target_from_name as parse

    return parse(name)


__all__ = ["target_from_name"]
