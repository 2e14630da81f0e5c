"""What a person or a CI system reads: terminal tables, JSON, Markdown, HTML and plots for
``optimize`` and ``check``, in the target's own terms."""
