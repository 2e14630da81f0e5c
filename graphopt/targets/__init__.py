"""One package per downstream compiler (graphopt.core.protocols.Target): compile a graph, read back
what it fused, run it. Chosen by name through graphopt.core.registry."""
