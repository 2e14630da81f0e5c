"""graphopt's rewrite rules, one module per family, per format (installed as graphopt.passes).

Each format's package defines FAMILIES (family -> module with RULES), RULES (the registry, in
the order rules are applied), ``all_rules()`` and ``rules_by_name(names)``; ``named`` is the
latter's shared body."""

from graphopt.errors import GraphoptError


def named(rules: list, names: list[str] | None, hint: str = "see `graphopt rules`") -> list:
    """The rules of ``rules`` called ``names`` (all of them when ``names`` is empty), in the order
    named; an unknown name is a usage error."""
    if not names:
        return list(rules)
    known = {r.name: r for r in rules}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GraphoptError(f"unknown rule(s): {', '.join(unknown)}; {hint}")
    return [known[n] for n in names]
