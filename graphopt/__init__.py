"""graphopt: rewrite graphs so that the downstream compiler's fusions fire, proven equivalent and
measured faster.

The path a model takes is a straight line (docs/DESIGN.md): load (Format) -> sites (RuleSet) ->
the policy picks -> rewrite -> the Target compiles and reports what fused -> verify -> measure ->
decide -> save + report. ``graphopt.optimize`` and ``graphopt.check`` are the Python API
(graphopt/api); ``graphopt.jax.optimize`` and ``torch.compile(model, backend="graphopt")`` the
other ways in. The rooms: core/ (the engine), policies/, formats/, targets/, api/, cli/,
reports/, torch/.
"""

__version__ = "0.1.0"
__all__ = ["check", "optimize"]


def __getattr__(name: str):
    """``optimize`` and ``check``, imported on first use (``import graphopt`` stays light: the
    torch backend's entry point imports this package)."""
    if name in __all__:
        from graphopt import api

        return getattr(api, name)
    raise AttributeError(f"module 'graphopt' has no attribute {name!r}")
