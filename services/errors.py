"""Errors that the command line shows as one line, without a traceback."""


class UserError(Exception):
    """Something the person running the command can fix (a wrong file, an unknown school)."""
