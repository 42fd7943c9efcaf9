"""Dataset ingest: OHLCV CSV uploads to validated Bars (placeholder docstring)."""

from engine.ingest.dialect import Dialect
from engine.ingest.errors import Codes, IngestError, IngestWarning
from engine.ingest.parse import IngestResult, bars_hash, parse_ohlcv

__all__ = [
    "Codes",
    "Dialect",
    "IngestError",
    "IngestResult",
    "IngestWarning",
    "bars_hash",
    "parse_ohlcv",
]
