"""Errors meant for the user: the command line prints them as one line, without a traceback."""


class DelaypropError(Exception):
    """Base class of every error delayprop raises on bad input or impossible settings."""


class ConfigError(DelaypropError, ValueError):
    """An impossible or inconsistent setting (negative max_delay, sigma <= 0, ...)."""


class DataError(DelaypropError):
    """A missing, corrupt or malformed data file; the message names the file (and sample)."""
