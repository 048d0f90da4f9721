"""Errors a user can cause and fix: the command line prints them as one line."""


class UserFacingError(Exception):
    """A failure whose message alone tells the user what to fix (no traceback)."""
