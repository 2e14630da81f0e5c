"""User-facing errors.

Everything that is the user's input being wrong (not a model, escaping external data, an opset
the runtime cannot run, inputs we cannot generate) raises a GraphoptError whose message is one
line. The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""


class GraphoptError(Exception):
    """An error caused by the input, with a one-line message meant for the user."""

    exit_code = 2


class BadModelError(GraphoptError):
    """The file is not a model graphopt can load, or the target cannot run it."""


class InputGenerationError(GraphoptError):
    """graphopt cannot produce meaningful inputs for the model (ask for --inputs or --shape)."""


class InputsDidNotRun(GraphoptError):
    """The target refused to run the original model on the inputs it was given."""


class UsageError(GraphoptError):
    """A flag or an option names something graphopt does not know (a target, a policy, a rule)."""
