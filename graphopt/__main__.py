"""`python -m graphopt` is the `graphopt` command."""

from graphopt.cli.app import app

app()
