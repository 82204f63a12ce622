"""Errors meant for the user: the command line prints them as one line, without a traceback."""


class DelaypropError(Exception):
    """Base class of every error delayprop raises on bad input or impossible settings."""


class ConfigError(DelaypropError, ValueError):
    """An impossible or inconsistent setting (negative max_delay, sigma <= 0, ...)."""


class DataError(DelaypropError):
    """A missing, corrupt or malformed data file; the message names the file (and sample)."""


class CorruptFileError(DelaypropError):
    """A checkpoint or cache file whose checksum does not match its contents."""


class DivergenceError(DelaypropError):
    """Training produced a non-finite loss, gradient or parameter; nothing was saved."""


class WriteError(DelaypropError, OSError):
    """A file could not be written (full disk, unwritable folder); still an OSError."""
