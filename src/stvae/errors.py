"""The one exception type for errors a user can cause (files, flags, data)."""


class StvaeError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with 2."""
