"""User-facing errors.

Anything that is the user's input being wrong (a bad file, a missing option, a mismatch between a
model and a dataset) raises `BenderError` with a one-line message that says what is wrong and what
to do. The CLI prints it without a traceback (unless `--debug`); library users can catch it.
"""


class BenderError(Exception):
    """A problem with the user's input, explained in one line."""
