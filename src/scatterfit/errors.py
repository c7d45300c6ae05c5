"""One exception type for every user-facing problem, so the CLI can print one clear line."""


class ScatterfitError(ValueError):
    """A problem with the user's input (file, structure, setting), described in one line."""
