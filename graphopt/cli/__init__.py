"""The ``graphopt`` command: optimize, check, inspect, rules, policy."""
