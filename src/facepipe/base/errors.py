"""User-facing errors: one line that names the file or key and says what to do."""


class FacepipeError(Exception):
    """An error a user can act on. Its message is printed alone, without a traceback."""
