"""User strategy files for the discovery and validation tests: one good, many broken.

Each broken file fails at one validation step; `BROKEN` maps its file name to
(source, the step it must fail at, words the message must contain).
"""

from __future__ import annotations

from pathlib import Path

_HEAD = '''"""Written by the tests."""
import numpy as np
import pandas as pd

from engine.bars import Bars
from strategies.base import Param, ParamError, Strategy
'''

GOOD = _HEAD + '''

class UserMomentum(Strategy):
    """Long after the close rose over `lookback` bars, short after it fell (a user file)."""

    name = "user_momentum"
    lookback: int = Param(3, ge=1, le=50, help="bars to look back")

    @property
    def warmup(self) -> int:
        return self.lookback

    def signals(self, bars: Bars) -> np.ndarray:
        c, k = bars.close, self.lookback
        out = np.zeros(len(c), dtype=np.int8)
        if len(c) > k:
            out[k:] = np.sign(c[k:] - c[:-k]).astype(np.int8)
        return out
'''

# The same strategy, edited: a different code hash, still valid.
GOOD_EDITED = GOOD.replace('Param(3, ge=1', 'Param(5, ge=1')


def _strategy(name: str, body: str, extra: str = "") -> str:
    return _HEAD + f'''

class {name.title().replace("_", "")}(Strategy):
    """A deliberately broken strategy: {name}."""

    name = "{name}"
    period: int = Param(10, ge=2, le=100, help="a period")
{extra}
    def signals(self, bars: Bars) -> np.ndarray:
{body}
'''


BROKEN: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "syntax_error.py": (
        _HEAD + "\nclass Oops(Strategy:\n    name = 'oops'\n",
        "import", ("SyntaxError: ", "line 8"),
    ),
    "import_error.py": (
        "import numpy as np\nimport no_such_package_for_tests\n",
        "import", ("ModuleNotFoundError", "no_such_package_for_tests", "line 2"),
    ),
    "bad_default.py": (
        _strategy(
            "bad_default", "        return np.zeros(len(bars), dtype=np.int8)",
            extra=(
                "    slow: int = Param(5, ge=2, le=100, help='must exceed period')\n\n"
                "    @classmethod\n    def check(cls, params):\n"
                "        if params['slow'] <= params['period']:\n"
                "            raise ParamError('slow', 'slow must be > period')\n"
            ),
        ),
        "instantiate", ("slow must be > period",),
    ),
    "raises.py": (
        _strategy("raises", "        return bars.nonexistent_column"),
        "signals", ("AttributeError", "nonexistent_column"),
    ),
    "wrong_length.py": (
        _strategy("wrong_length", "        return np.zeros(len(bars) - 1, dtype=np.int8)"),
        "signals", ("one value per bar", "expected shape (1125,), got (1124,)"),
    ),
    "text_signals.py": (
        _strategy("text_signals", "        return np.array(['buy'] * len(bars))"),
        "signals", ("cannot be converted to int8",),
    ),
    "nan_signals.py": (
        _strategy(
            "nan_signals",
            "        out = np.zeros(len(bars))\n        out[len(bars) // 2] = np.nan\n"
            "        return out",
        ),
        "values", ("NaN signal at bar 562", "after the warm-up"),
    ),
    "out_of_range.py": (
        _strategy("out_of_range", "        return np.full(len(bars), 2, dtype=np.int8)"),
        "values", ("signal 2 at bar 0", "-1, 0 or +1"),
    ),
    "peeks_ahead.py": (
        _strategy(
            "peeks_ahead",
            "        close = pd.Series(bars.close)\n"
            "        nxt = close.shift(-1).fillna(close)  # tomorrow's close: a leak\n"
            "        return np.sign(nxt - close).to_numpy().astype(np.int8)",
        ),
        "look_ahead", ("differ from the full-data signals", "shift(-1)"),
    ),
    "whole_series.py": (
        _strategy(
            "whole_series",
            "        c = bars.close\n"
            "        z = (c - c.mean()) / c.std()  # statistics of the future too\n"
            "        return np.where(z > 0.5, 1, np.where(z < -0.5, -1, 0)).astype(np.int8)",
        ),
        "look_ahead", ("differ from the full-data signals",),
    ),
}


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(source)
    return path
