"""The one exception type users see.

Every error caused by bad input or a failed build is raised as a `BootstrapError` whose message
is one line naming the file or object at fault, what was wrong and what was expected. The CLI
prints it without a traceback and exits non-zero.
"""


class BootstrapError(Exception):
    """A user-facing error: one clear line, no traceback."""
