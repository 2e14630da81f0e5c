"""An FX rule: a name, its family, whether it keeps gradients exact, and a pure ``match``.

``match(node)`` returns None or ``build(graph) -> Node`` (see graphopt/formats/fx/rewrite.py).
``preserves_gradients`` is False where the replacement computes the same values but a different
(sub)gradient somewhere (``clamp(min=0)`` -> ``relu`` at exactly 0): such rules are left out of
graphs that need gradients. ``with_freezing`` is False where Inductor's ``freezing`` does the
rewrite itself and does it better: folded into constants, the rule's form hides the pattern its
weight-prepacking passes match (conv_bn: measured slower frozen than freezing alone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class FxRule:
    name: str
    family: str
    match: Callable
    preserves_gradients: bool = True
    with_freezing: bool = True
    summary: str = ""
