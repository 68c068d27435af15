"""The package's one error type."""


class CaptionError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""
