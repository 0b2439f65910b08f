"""The base error of revalign: every expected failure is one of these."""


class RevalignError(Exception):
    """Raised for invalid input or a failed step; the message says what to fix.

    ``retryable`` is true when the same call may succeed later (a timeout, a 5xx or
    a rate limit), so schedulers can retry it and the CLI can say so.
    """

    retryable: bool = False
    exit_code: int = 2


class InputError(RevalignError):
    """Raised when an input file has a missing column or an invalid value."""
