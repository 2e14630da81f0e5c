"""graphopt's rewrite rules, one module per family, per format (installed as graphopt.passes)."""
