"""Finding the table in the text: delimiter, header or not, and which column is which."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field

from engine.ingest.errors import Codes, IngestError
from engine.ingest.formats import is_date_only, looks_like_datetime, looks_like_time_of_day
from engine.ingest.values import NUMBER, bad_value_error

__all__ = ["DELIMITERS", "MAX_COLUMNS", "Layout", "normalize_name", "sniff_layout"]

DELIMITERS = (",", ";", "\t", "|")
MAX_COLUMNS = 64
SAMPLE_LINES = 50
_NUM_RE = re.compile(NUMBER, re.ASCII)

# Normalized header name (lower case, letters and digits only) -> role.
_ALIASES: dict[str, str] = {}
for _role, _names in {
    # English, plus the German, French and Spanish headers of localized exports.
    "datetime": (
        "datetime timestamp ts opentime gmttime localtime datetimeutc timeutc timestamputc "
        "unix unixtime epoch dt timegmt bartime candletime"
    ),
    "date": "date day tradedate dtyyyymmdd tradingday dateutc dategmt yyyymmdd datum fecha",
    "time": "time tm timeofday hhmmss hhmm zeit uhrzeit heure hora",
    "open": "open o openprice op eröffnung eroeffnung erster ouverture apertura",
    "high": "high h highprice hi max hoch höchst hoechst haut plushaut máximo maximo",
    "low": "low l lowprice lo min tief tiefst bas plusbas mínimo minimo",
    "close": "close c closeprice last lastprice closelast cl schluss schlusskurs clôture "
    "cloture dernier cierre",
    "adjclose": "adjclose adjustedclose adjcl adjclosing",
    "volume": "volume vol v realvolume realvol qty quantity totalvolume volumebase volumen",
    "tickvol": "tickvol tickvolume ticks tickcount",
}.items():
    for _n in _names.split():
        _ALIASES[_n] = _role
# Known columns that are not OHLCV: ignored without a warning.
# fmt: off
_KNOWN_IGNORED = frozenset((
    "ticker", "symbol", "name", "per", "period", "interval", "timeframe", "openint",
    "openinterest", "oi", "spread", "trades", "numberoftrades", "numtrades", "count",
    "quoteassetvolume", "quotevolume", "takerbuybaseassetvolume", "takerbuyquoteassetvolume",
    "takerbuybasevolume", "takerbuyquotevolume", "ignore", "closetime", "dividends",
    "stocksplits", "splits", "exchange", "series", "isin", "turnover", "vwap", "change",
    "changepct", "pctchange", "expiry", "strike", "instrument", "token",
))
# fmt: on
ROLES = ("open", "high", "low", "close")


def normalize_name(name: str) -> str:
    """'<Adj Close>' -> 'adjclose': lower case, letters and digits only."""
    return re.sub(r"[\W_]", "", name.lower())


@dataclass(frozen=True)
class Layout:
    """Where the data starts and what each column holds."""

    delimiter: str
    n_columns: int
    header: bool
    skip_lines: int  # kept lines before the first data row ("sep=" line, header)
    names: list[str]  # display name of each column, used in messages
    roles: dict[str, int]  # datetime|date|time|open|high|low|close|volume|tickvol|adjclose
    unknown: list[str] = field(default_factory=list)  # ignored columns we did not recognise
    header_style: str = "plain"  # plain | metastock (<DATE>, <OPEN> ...)


def _split(lines: list[str], delimiter: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=delimiter, quotechar='"', strict=False))


def _plausible(cell: str, delimiter: str) -> bool:
    """A cell split by the right delimiter holds no other delimiter, unless it is a value."""
    if not any(d in cell for d in DELIMITERS if d != delimiter):
        return True
    return _is_number(cell) or looks_like_datetime(cell)


def _pick_delimiter(lines: list[str]) -> str:
    best: tuple[float, int, str] | None = None
    for rank, d in enumerate(DELIMITERS):
        rows = _split(lines, d)
        counts = Counter(len(r) for r in rows[1:] or rows)
        n, seen = counts.most_common(1)[0]
        if n < 2:
            continue
        consistency = seen / max(len(rows[1:] or rows), 1)
        cells = [c for r in rows for c in r]
        plausible = sum(_plausible(c, d) for c in cells) / max(len(cells), 1)
        score = (consistency + plausible, -rank, d)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        raise IngestError(
            Codes.DELIMITER,
            "cannot find the column delimiter (tried comma, semicolon, tab and |); "
            "an OHLCV file needs at least a time and four price columns",
        )
    return best[2]


def _is_number(cell: str) -> bool:
    c = cell.strip()
    return bool(_NUM_RE.match(c) or _NUM_RE.match(c.replace(",", ".", 1)))


def _looks_like_data(row: list[str]) -> bool:
    has_time = any(looks_like_datetime(c, headerless=True) for c in row)
    return has_time and sum(_is_number(c) for c in row) >= 4


def _header_roles(names: list[str], line: int) -> tuple[dict[str, int], list[str]]:
    roles: dict[str, int] = {}
    unknown: list[str] = []
    for i, raw in enumerate(names):
        err = bad_value_error(raw, line, f"header field {i + 1}")
        if err is not None:
            raise err
        key = normalize_name(raw)
        role = _ALIASES.get(key)
        if role is None:
            if key and key not in _KNOWN_IGNORED:
                unknown.append(raw.strip())
            continue
        if role in roles:
            raise IngestError(
                Codes.DUPLICATE_COLUMN,
                f"columns {names[roles[role]].strip()!r} and {raw.strip()!r} both look like "
                f"the {role} column; rename or remove one",
                line=line,
            )
        roles[role] = i
    if "time" in roles and "date" not in roles and "datetime" not in roles:
        roles["datetime"] = roles.pop("time")  # a lone "time" column holds full timestamps
    if "datetime" in roles and ("date" in roles or "time" in roles):
        other = roles.get("date", roles.get("time"))
        raise IngestError(
            Codes.DUPLICATE_COLUMN,
            f"both {names[roles['datetime']].strip()!r} and {names[other].strip()!r} hold "  # type: ignore[index]
            "times; keep one",
            line=line,
        )
    return roles, unknown


def _missing_columns(roles: dict[str, int], names: list[str], line: int | None) -> None:
    need = [r for r in ROLES if r not in roles]
    if "datetime" not in roles and "date" not in roles:
        need.insert(0, "date/time")
    if not need:
        return
    found = ", ".join(repr(n.strip()) for n in names if n.strip()) or "none"
    hint = ""
    if "close" in need and "adjclose" in roles:
        hint = " (an adjusted close alone is not used: open/high/low would not match it)"
    raise IngestError(
        Codes.MISSING_COLUMN,
        f"missing column(s) {', '.join(need)}{hint}; found {found}",
        line=line,
    )


def _separate_time(rows: list[list[str]], j: int) -> bool:
    """Is field j+1 a time of day belonging to the date in field j (headerless files)?

    "09:15" always is. Six digits (093000) are only after a compact date, and only
    when dates repeat (intraday) or five numbers follow (o, h, l, c, v): otherwise a
    six-digit price could pass for a time.
    """
    row = rows[0]
    k = j + 1
    if k >= len(row) or not is_date_only(row[j]):
        return False
    nxt = row[k].strip()
    if sum(_is_number(c) for c in row[k + 1 : k + 5]) < 4:
        return False
    if ":" in nxt:
        return looks_like_time_of_day(nxt)
    if not (len(nxt) == 6 and nxt.isdigit() and row[j].strip().isdigit()):
        return False
    same = [r for r in rows if len(r) == len(row)]
    if not all(looks_like_time_of_day(r[k]) for r in same):
        return False
    dates = [r[j].strip() for r in same]
    return len(set(dates)) < len(dates) or sum(_is_number(c) for c in row[k + 1 :]) >= 5


def _positional_roles(rows: list[list[str]], line: int) -> dict[str, int]:
    row = rows[0]
    j = next((i for i, c in enumerate(row) if looks_like_datetime(c, headerless=True)), None)
    if j is None:
        raise IngestError(
            Codes.MISSING_COLUMN,
            "the file has no header and no field of the first line is a date/time",
            line=line,
        )
    roles = {"datetime": j}
    k = j + 1
    if _separate_time(rows, j):
        roles = {"date": j, "time": k}
        k += 1
    numeric = [i for i in range(k, min(k + 5, len(row))) if _is_number(row[i])]
    if numeric[:4] != list(range(k, k + 4)):
        raise IngestError(
            Codes.MISSING_COLUMN,
            "the file has no header and the date/time is not followed by four prices "
            "(open, high, low, close)",
            line=line,
        )
    roles.update(zip(ROLES, range(k, k + 4), strict=True))
    if k + 4 in numeric:
        roles["volume"] = k + 4
    return roles


def sniff_layout(head: list[str], head_lines: list[int]) -> Layout:
    """Layout from the first kept lines of the file; `head_lines` are their line numbers."""
    skip = 0
    delimiter = None
    if head and head[0].strip().lower().startswith("sep=") and len(head[0].strip()) == 5:
        delimiter = head[0].strip()[4]  # Excel's explicit delimiter line
        head, skip = head[1:], 1
    if not head:
        raise IngestError(Codes.EMPTY_FILE, "the file has no rows")
    delimiter = delimiter or _pick_delimiter(head)
    rows = _split(head, delimiter)
    data_rows = rows[1:] or rows
    n_cols = Counter(len(r) for r in data_rows).most_common(1)[0][0]
    if n_cols > MAX_COLUMNS:
        raise IngestError(
            Codes.TOO_MANY_COLUMNS,
            f"{n_cols} columns (limit {MAX_COLUMNS}): not an OHLCV table",
            line=head_lines[skip],
        )
    first = rows[0]
    line = head_lines[skip]
    if _looks_like_data(first):
        roles = _positional_roles(rows, line)
        names = [f"field {i + 1}" for i in range(n_cols)]
        for role, i in roles.items():
            if i < n_cols:
                names[i] = f"field {i + 1} ({role})"
        return Layout(delimiter, n_cols, False, skip, names, roles)
    names = [c.strip() for c in first]
    if len(names) > n_cols and not any(names[n_cols:]):
        names = names[:n_cols]  # trailing delimiter on the header line only
    names += [""] * (n_cols - len(names))
    if len(names) != n_cols:
        raise IngestError(
            Codes.FIELD_COUNT,
            f"the header has {len(names)} fields but the rows have {n_cols}",
            line=line,
        )
    roles, unknown = _header_roles(names, line)
    _missing_columns(roles, names, line)
    style = "metastock" if all(n.startswith("<") for n in names if n) else "plain"
    display = [n or f"field {i + 1}" for i, n in enumerate(names)]
    return Layout(delimiter, n_cols, True, skip + 1, display, roles, unknown, style)
