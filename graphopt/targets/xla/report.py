"""XLA's fusion report, read from the optimized HLO it compiled (``compiled.as_text()``).

What runs is the ENTRY computation's instructions: each ``fusion`` is one kernel (its ``kind``:
kLoop, kInput, kOutput, or kCustom for library calls such as the CPU backend's dot fusions), and so
is every other instruction except those that move no data (parameters, constants, tuples,
bitcasts). Every fusion is XLA's own doing, so ``fused`` and ``fired`` are the same counts.
"""

from __future__ import annotations

import re
from collections import Counter

from graphopt.core.protocols import FusionReport

FREE = frozenset({"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all"})
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.-]+)\s*=\s*(?:\([^=]*?\)|\S+)\s+([a-z][a-z0-9-]*)\(")
_KIND = re.compile(r"kind=(k\w+)")


def entry_instructions(hlo_text: str) -> list[str]:
    """The ENTRY computation's instruction lines."""
    lines, inside = [], False
    for line in hlo_text.splitlines():
        if line.startswith("ENTRY "):
            inside = True
            continue
        if inside:
            if line.startswith("}"):
                break
            lines.append(line)
    return lines


def fusion_report(hlo_text: str) -> FusionReport:
    ops: Counter = Counter()
    fused: Counter = Counter()
    for line in entry_instructions(hlo_text):
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        opcode = match.group(2)
        if opcode == "fusion":
            kind = _KIND.search(line)
            opcode = f"fusion.{kind.group(1) if kind else 'unknown'}"
            fused[opcode] += 1
        ops[opcode] += 1
    kernels = sum(n for op, n in ops.items() if op not in FREE)
    return FusionReport(kernels, dict(ops), dict(fused), dict(fused))
