"""The one exception type for mistakes a user can fix.

The CLI turns a :class:`TrimkitError` into one line on stderr and exit code 2; any
other exception is a bug in trimkit and keeps its traceback.
"""


class TrimkitError(ValueError):
    """Bad input: the message names the problem and the fix, on one line."""
