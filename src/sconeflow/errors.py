"""The root of sconeflow's named errors.

Every error a user can cause derives from :class:`SconeflowError`; the CLI prints it as one line,
``<ErrorName>: <message>``, and exits with its ``exit_code``.
"""

from __future__ import annotations


class SconeflowError(Exception):
    """Base class of every named sconeflow error."""

    exit_code: int = 1

    @property
    def name(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:  # keep messages to one line
        return " ".join(str(self.args[0]).split()) if self.args else self.name


class ConfigError(SconeflowError):
    """A setting or a path in the configuration is unusable."""
