"""Benchmarks: graphopt measured on real models (run as scripts, never as timed unit tests)."""
