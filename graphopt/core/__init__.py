"""The engine: the contract (protocols), ``decide``, the judge, the budget, the evaluation log,
the harness (verify + interleaved timing), and the registry that names formats, targets and
policies. Nothing here imports a format's or a compiler's library."""
