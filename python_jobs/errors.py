"""Errors a user can cause; the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A problem the user can fix: bad flag, bad file, unreachable service."""


class GateFailed(UserError):
    """A Great Expectations checkpoint failed; the run stops before the next stage."""
