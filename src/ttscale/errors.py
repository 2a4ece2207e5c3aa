"""The one exception type users see: a message that says what to do, shown without a traceback."""


class TTScaleError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits non-zero."""
