"""graphopt for torch users: ``torch.compile(model, backend="graphopt")`` needs no import;
``graphopt.torch.explain(model, *args)`` says what was decided for each graph."""

from graphopt.torch.backend import DECISIONS, GraphDecision, explain

__all__ = ["DECISIONS", "GraphDecision", "explain"]
