"""Typed errors of the engine layer; upper layers map them to API error codes."""


class EngineError(Exception):
    """Base class for errors raised by the engine."""


class EngineInputError(EngineError, ValueError):
    """Bad input: the message names the row, column or parameter at fault."""
