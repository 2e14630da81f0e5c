"""The graphs Dynamo hands a backend, captured: what the FX format is read from outside a
torch.compile call (tests, benchmarks, a user who wants to look at what graphopt sees).

Dynamo orders a graph's placeholders by first use, not by the function's signature, so each
graph comes with the inputs in the order it takes them.
"""

from __future__ import annotations

import torch


def dynamo_graphs(fn, *calls, dynamic: bool | None = None, fullgraph: bool = False, **kwargs) -> list[tuple]:
    """Every (GraphModule, its example inputs) Dynamo makes of ``fn`` over ``calls`` (each a
    tuple of positional arguments; ``kwargs`` go to every call), under ``torch.no_grad``."""
    graphs = []

    def capture(gm, example_inputs):
        graphs.append((gm, list(example_inputs)))
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(fn, backend=capture, dynamic=dynamic, fullgraph=fullgraph)
    with torch.no_grad():
        for args in calls:
            compiled(*args, **kwargs)
    return graphs


def dynamo_graph(fn, *args, **kwargs) -> tuple:
    """The single (GraphModule, inputs) Dynamo makes of ``fn`` on ``args`` (a graph break is an error)."""
    (graph,) = dynamo_graphs(fn, args, fullgraph=True, **kwargs)
    return graph
