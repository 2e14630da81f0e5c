"""IREE's fusion report, read from the scheduling statistics it writes while compiling.

IREE's unit of work is the dispatch: dispatch formation groups ops into dispatch regions (a
matmul with its elementwise consumers, a softmax, a reduction with what feeds it), each compiled
into one kernel. ``--iree-scheduling-dump-statistics-format=csv`` writes, per function, every
command its stream schedules: dispatches by symbol (``main_dispatch_5_matmul_16x192x192_f32``:
root op kind, shape, element type), DMA fills and copies. Commands of ``util.initializer`` run
once when the module loads (weights held as parameters are transposed or packed there), so they
are counted apart and not as what a call runs.

``kernels`` is what a call of ``main`` runs: dispatches, fills and copies. ``ops`` counts
dispatches by root kind (``dispatch.matmul``, ``dispatch.softmax``, ``dispatch.encoding`` for
data-tiling packs), plus ``fill``, ``copy`` and ``initializer.dispatch``. ``fused`` (and ``fired``,
IREE's own doing) counts the dispatches rooted at an op IREE raised from a written-out pattern
(RAISED: ``softmax``, ``attention``): a dispatch of another kind says nothing of fusion by its
name, so a rewrite gains on IREE by saving dispatches or by getting one of these raised.
"""

from __future__ import annotations

import csv
import re
from collections import Counter

from graphopt.core.protocols import FusionReport

COMMANDS = ("dispatch", "fill", "copy")
RAISED = ("softmax", "attention", "online_attention")  # IREE's linalg_ext ops, raised from their spelled-out forms
_PREFIX = re.compile(r"^[\w$]*?_dispatch_\d+_")
_ELEMENT = re.compile(r"^(?:[fiu]\d+|bf16|i1)$")


def dispatch_kind(symbol: str) -> str:
    """``@main_dispatch_5::@main_dispatch_5_matmul_16x192x192_f32`` -> ``matmul``; data-tiling
    packs (``_encoding_0_encode_...``) -> ``encoding``."""
    name = symbol.rsplit("::", 1)[-1].lstrip("@")
    if "_encoding_" in name or name.startswith("_encoding"):
        return "encoding"
    words = []
    for word in _PREFIX.sub("", name).split("_"):
        if not word or word[0].isdigit() or _ELEMENT.match(word):
            break
        words.append(word)
    return "_".join(words) or "unknown"


def commands(statistics_csv: str) -> list[tuple[str, str, str]]:
    """(section, command, symbol) for every scheduled command; section is ``main`` for what a
    call runs and ``initializer`` for what runs once at load."""
    found, section = [], None
    for line in statistics_csv.splitlines():
        if line.startswith("; builtin.module"):
            section = "initializer" if "util.initializer" in line else "main"
            continue
        if not line or line.startswith(";") or line.startswith('"Depth"') or section is None:
            continue
        row = next(csv.reader([line]))
        if len(row) > 2 and row[1] in COMMANDS:
            found.append((section, row[1], row[2]))
    return found


def fusion_report(statistics_csv: str) -> FusionReport:
    ops: Counter = Counter()
    for section, command, symbol in commands(statistics_csv):
        if section == "initializer":
            ops[f"initializer.{command}"] += 1
        elif command == "dispatch":
            ops[f"dispatch.{dispatch_kind(symbol)}"] += 1
        else:
            ops[command] += 1
    kernels = sum(n for op, n in ops.items() if not op.startswith("initializer."))
    raised = {op: n for op, n in ops.items() if op.removeprefix("dispatch.") in RAISED}
    return FusionReport(kernels, dict(ops), raised, raised)
