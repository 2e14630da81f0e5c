"""graphopt's rewrite rules, one module per family, per format (installed as graphopt.passes).

Each format's package builds one ``Registry`` from its families (family -> module with RULES, in
the order rules are applied) and exposes the same three functions: ``families()``,
``all_rules(**required)`` and ``rules_by_name(names)``. ``graphopt rules --format F`` lists them.
"""

from __future__ import annotations

import dataclasses
import types

from graphopt.core.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Registry:
    """The rule families of one format, in the order their rules are applied."""

    format: str
    modules: dict[str, types.ModuleType]  # family -> the module defining its RULES (and its legality doc)

    def families(self) -> dict[str, types.ModuleType]:
        return dict(self.modules)

    def all_rules(self, **required: bool) -> list:
        """Every rule in registry order; ``required`` keeps those whose attributes have these
        values (FX: ``preserves_gradients=True`` for graphs that need gradients)."""
        rules = [r for module in self.modules.values() for r in module.RULES]
        return [r for r in rules if all(getattr(r, key) == value for key, value in required.items())]

    def rules_by_name(self, names: list[str] | None = None) -> list:
        """The named rules, in the order named (all of them when ``names`` is empty); an unknown
        name is a usage error."""
        rules = self.all_rules()
        if not names:
            return rules
        known = {r.name: r for r in rules}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(f"unknown rule(s): {', '.join(unknown)}; see `graphopt rules --format {self.format}`")
        return [known[n] for n in names]
