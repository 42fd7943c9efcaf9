"""Dataset ingest: OHLCV CSV uploads to validated Bars (placeholder docstring)."""

from engine.ingest.dialect import Dialect
from engine.ingest.errors import Codes, IngestError, IngestWarning
from engine.ingest.parse import IngestResult, bars_hash, parse_ohlcv
from engine.ingest.quality import Check, QualityReport, quality_report
from engine.ingest.writer import write_csv

__all__ = [
    "Check",
    "Codes",
    "Dialect",
    "IngestError",
    "IngestResult",
    "IngestWarning",
    "QualityReport",
    "bars_hash",
    "parse_ohlcv",
    "quality_report",
    "write_csv",
]
