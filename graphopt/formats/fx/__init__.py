"""The FX format: a Dynamo graph (``torch.fx.GraphModule``) as graphopt reads and rewrites it.

Dynamo hands a backend graphs at torch level: the same operation reaches us as
``operator.mul``, ``torch.mul`` or the method ``.mul``, and ``torch.matmul`` or ``@``. ``ops``
names them once (``kind``), reads their arguments wherever they were passed (``arg``) and their
example values (``meta``), so rules in ``passes/fx`` match on meaning, not spelling. ``graphs``
copies, fingerprints and runs graph modules, and finds their symbolic sizes; ``format`` is the
Format and RuleSet the engine drives; ``rewrite`` the driver.
"""

from graphopt.formats.fx.graphs import copy_module, fingerprint, run_eager, symbol_sources
from graphopt.formats.fx.ops import arg, constant, kind, meta

__all__ = ["arg", "constant", "copy_module", "fingerprint", "kind", "meta", "run_eager", "symbol_sources"]
