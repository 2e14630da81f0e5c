"""How many compilations a decision may hold at once, planned before the first is made.

A compilation holds its own copy of the weights (ORT CPU: every session loads and pre-packs the
weights it reads, whichever way it is handed them; ORT 1.32's Python API has no container that
would let two sessions share their pre-packed copies), so what a decision holds is set by how many
are alive at once. A timing compares fresh compilations of both sides in one of three widths:

- four alive (A1 B1 B2 A2, runs interleaved): averages out where each session's buffers land;
- two alive (A B, runs interleaved);
- one alive (blocks A B B A: each compilation made, timed for a block of runs and let go before
  the next is made), the only width at which a model as large as the memory allows can be timed.

The engine plans first, from the Target's estimate of one compilation (``Target.compiled_bytes``),
what the process already holds, and two ceilings: the memory available (``GRAPHOPT_MEMORY_LIMIT``
when set, as bytes or with a K/M/G suffix, else the kernel's MemAvailable) and the run's envelope,
1.5x one compilation plus 1 GiB: a run stays a small multiple of the model's weights however much
the machine has (a 1 B-parameter decoder's four sessions were 17.8 GB). In a process that already
holds more than that allowance (a test runner, a torch user's process with its model loaded) the
envelope is what the run adds: 1.5x one compilation plus RUN_EXTRA over what it held when planning,
so a small model is not timed one session at a time there. The widest width within both is
taken; when not even one compilation fits what is available, a one-line refusal says what it
would need.
"""

from __future__ import annotations

import dataclasses
import os
import re

from graphopt.core.errors import GraphoptError

LIMIT_VARIABLE = "GRAPHOPT_MEMORY_LIMIT"
HEADROOM = 0.9  # of what is available: the rules, the feeds and the outputs live there too
ENVELOPE_MULTIPLE = 1.5  # a run holds at most this many compilations' worth ...
ENVELOPE_EXTRA = 2**30  # ... plus this (the interpreter, onnx, ORT and the candidates' graphs)
RUN_EXTRA = 2**29  # the candidates' graphs and buffers, over what a large process held already
WIDTHS = (4, 2, 1)  # compilations alive at once in one timing, widest first
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class OutOfMemoryError(GraphoptError):
    """The model's compilations would not fit in the memory available."""


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    alive: int  # compilations alive at once in a timing: 4 (A1 B1 B2 A2), 2 (A B) or 1 (blocks A B B A)
    compiled_bytes: int  # one compilation, as the target estimates it
    limit_bytes: int  # what was available
    ceiling_bytes: int = 0  # the run's ceiling: the smaller of the envelope and what was available

    @property
    def compilations_per_timing(self) -> int:
        """Fresh compilations one timing makes: four except at width two (A B)."""
        return 2 if self.alive == 2 else 4

    def note(self) -> str | None:
        """What the report says when the plan was narrowed, else None."""
        if self.alive == 4:
            return None
        how = "one session per side" if self.alive == 2 else "one session alive at a time, in blocks A B B A"
        return (
            f"memory: timed with {how} (four sessions would hold {gib(4 * self.compiled_bytes)}; "
            f"this run keeps within {gib(self.ceiling_bytes)})"
        )


def plan(compiled_bytes: int, limit: int | None = None, resident: int | None = None) -> MemoryPlan:
    """The widest timing whose compilations, beside the ``resident`` bytes the process holds
    (default: its resident set now), fit both ``limit`` (default: limit_bytes()) and the envelope;
    OutOfMemoryError when not even one compilation fits ``limit``."""
    limit = limit_bytes() if limit is None else limit
    resident = resident_bytes() if resident is None else resident
    usable = int(limit * HEADROOM)
    ceiling = min(usable, max(envelope_bytes(compiled_bytes), resident + growth_bytes(compiled_bytes)))
    for alive in WIDTHS:
        if alive * compiled_bytes + resident <= ceiling or (alive == 1 and compiled_bytes + resident <= usable):
            return MemoryPlan(alive, compiled_bytes, limit, max(ceiling, compiled_bytes + resident))
    raise OutOfMemoryError(
        f"judging this model needs about {gib(compiled_bytes + resident)} (one compilation of "
        f"{gib(compiled_bytes)} beside the {gib(resident)} graphopt holds), more than the {gib(limit)} available; "
        "run where more memory is free" + (f" or raise {LIMIT_VARIABLE}" if os.environ.get(LIMIT_VARIABLE) else "")
    )


def envelope_bytes(compiled_bytes: int) -> int:
    """What a run may hold whatever the machine has: 1.5x one compilation plus 1 GiB."""
    return int(ENVELOPE_MULTIPLE * compiled_bytes) + ENVELOPE_EXTRA


def growth_bytes(compiled_bytes: int) -> int:
    """What a run may add to a process that held more than the envelope's allowance already."""
    return int(ENVELOPE_MULTIPLE * compiled_bytes) + RUN_EXTRA


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
    return _meminfo("MemAvailable:") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def resident_bytes() -> int:
    """This process's resident set now (0 where /proc is not there to say)."""
    return _meminfo("VmRSS:", "/proc/self/status") or 0


def _meminfo(key: str, path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"
