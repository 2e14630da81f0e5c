"""How many compilations a decision may hold at once, planned before the first is made.

A compilation holds its own copy of the weights (ORT CPU: every session loads and pre-packs the
weights it reads; measured 0.35 GB per session on a 123 M-parameter decoder with 0.46 GB of
weights, whichever way it is handed them), so what a decision holds is set by how many are alive
at once: one to read a candidate's fusion report and verify it, then the timing's fresh pairs
(A1 B1 B2 A2: four, which averages out where each session's buffers land). A 1 B-parameter
model's four sessions are 16 GB; the kernel's OOM killer ends such a run with no word.

So the engine plans first, from the Target's estimate of one compilation
(``Target.compiled_bytes``) and the memory available (``GRAPHOPT_MEMORY_LIMIT`` when set, as
bytes or with a K/M/G suffix, else the kernel's MemAvailable): four sessions per timing when
they fit and hold at most FOUR_SESSIONS_UP_TO, else two (one per side), else a one-line refusal
that says what it would need.
"""

from __future__ import annotations

import dataclasses
import os
import re

from graphopt.core.errors import GraphoptError

LIMIT_VARIABLE = "GRAPHOPT_MEMORY_LIMIT"
HEADROOM = 0.9  # of what is available: the interpreter, the rules and the feeds live there too
# Four sessions per timing average out where each one's buffers land (a 1-2% effect); past this
# many bytes for the four, a timing keeps just the two it compares, so that a large model's run
# stays a small multiple of its weights (1 B decoder: 17.8 GB peak with four, 9.9 GB with two).
FOUR_SESSIONS_UP_TO = 4 * 2**30
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class OutOfMemoryError(GraphoptError):
    """The model's compilations would not fit in the memory available."""


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    timing_pairs: int  # session pairs alive in one A/B timing: 2 (A1 B1 B2 A2) or 1 (A B)
    compiled_bytes: int  # one compilation, as the target estimates it
    limit_bytes: int

    def note(self) -> str | None:
        """What the report says when the plan was narrowed, else None."""
        if self.timing_pairs == 2:
            return None
        return (
            f"memory: timed with one session per side (four would hold {gib(4 * self.compiled_bytes)}; "
            f"{gib(self.limit_bytes)} available)"
        )


def plan(compiled_bytes: int, limit: int | None = None) -> MemoryPlan:
    """The widest timing that fits ``limit`` (default: limit_bytes()); OutOfMemoryError when not
    even one compilation per side does."""
    limit = limit_bytes() if limit is None else limit
    usable = int(limit * HEADROOM)
    if 4 * compiled_bytes <= min(usable, FOUR_SESSIONS_UP_TO):
        return MemoryPlan(2, compiled_bytes, limit)
    if 2 * compiled_bytes <= usable:
        return MemoryPlan(1, compiled_bytes, limit)
    raise OutOfMemoryError(
        f"comparing two versions of this model needs about {gib(2 * compiled_bytes)} (one compilation of "
        f"{gib(compiled_bytes)} per side), more than the {gib(limit)} available; run where more memory is free"
        + (f" or raise {LIMIT_VARIABLE}" if os.environ.get(LIMIT_VARIABLE) else "")
    )


def limit_bytes() -> int:
    """GRAPHOPT_MEMORY_LIMIT when set, else the memory a new allocation can get now."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return available_bytes()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?", text.upper())
    if not match:
        raise GraphoptError(f"{LIMIT_VARIABLE}={text!r}: expected bytes, or a number with K, M, G or T")
    return int(float(match[1]) * _UNITS[match[2]])


def available_bytes() -> int:
    """Memory a new allocation can get now (MemAvailable), or the physical total as a fallback."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"
