"""The exception raised for a configuration an operator must fix."""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A script configuration is invalid.

    The message names the offending option (and line, where known) and
    what is wrong, in words an operator can act on.
    """
