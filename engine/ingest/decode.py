"""From uploaded bytes to clean UTF-8 text lines: decompression, encoding, newlines, blanks.

The output keeps a map from each kept line back to its 1-based line number in the
(decompressed) file, so every later error can name the line a person sees in an editor.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from engine.ingest.errors import Codes, IngestError

__all__ = ["DEFAULT_MAX_DECOMPRESSED_BYTES", "MAX_LINE_BYTES", "Decoded", "decode_bytes"]

DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024
_CHUNK = 1 << 20

_OTHER_FORMATS = (
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!", "RAR"),
    (b"PAR1", "Parquet"),
    (b"\xd0\xcf\x11\xe0", "Excel 97-2003 (.xls)"),
    (b"%PDF", "PDF"),
)
# Entries archivers add next to the real file; never data.
_ZIP_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class Decoded:
    """UTF-8 text with "\\n" newlines and no blank lines, plus where each line came from."""

    data: bytes
    line_numbers: np.ndarray  # int64, 1-based original line of each kept line
    encoding: str  # "utf-8" | "utf-8-sig" | "utf-16-le" | "utf-16-be"
    compression: str | None  # None | "gzip" | "zip"
    member: str | None  # the file inside a zip
    blank_lines: int
    first_blank_line: int | None


def _too_large(cap: int, what: str) -> IngestError:
    return IngestError(
        Codes.TOO_LARGE, f"{what} is larger than the {cap:,}-byte limit once decompressed"
    )


def _gunzip(data: bytes, cap: int) -> bytes:
    out = bytearray()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=31)
            buf = rest
            while buf:
                out += d.decompress(buf, _CHUNK)
                if len(out) > cap:
                    raise _too_large(cap, "the gzip file")
                buf = d.unconsumed_tail
            if not d.eof:
                raise IngestError(Codes.ARCHIVE_INVALID, "the gzip file is truncated")
            rest = d.unused_data.lstrip(b"\x00")  # concatenated members, padding
            if rest and rest[:2] != b"\x1f\x8b":
                break  # trailing garbage after a complete member: gzip(1) ignores it too
    except zlib.error as exc:
        raise IngestError(Codes.ARCHIVE_INVALID, f"the gzip file is corrupt: {exc}") from None
    return bytes(out)


def _unzip(data: bytes, cap: int) -> tuple[bytes, str]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IngestError(Codes.ARCHIVE_INVALID, f"the zip file is corrupt: {exc}") from None
    with zf:
        infos = [
            i
            for i in zf.infolist()
            if not i.is_dir() and not any(j in i.filename for j in _ZIP_JUNK)
        ]
        names = [i.filename for i in infos]
        if "[Content_Types].xml" in names or any(n.startswith("xl/") for n in names):
            raise IngestError(
                Codes.UNSUPPORTED_FORMAT,
                "this is an Excel workbook (.xlsx); save the sheet as CSV and upload that",
            )
        if len(infos) != 1:
            listed = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            raise IngestError(
                Codes.ZIP_MEMBERS,
                f"a zip upload must contain exactly one CSV file, found {len(infos)}"
                + (f" ({listed})" if names else ""),
            )
        info = infos[0]
        if info.flag_bits & 0x1:
            raise IngestError(Codes.ARCHIVE_INVALID, f"{info.filename} is encrypted")
        if info.file_size > cap:
            raise _too_large(cap, info.filename)
        out = bytearray()
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(_CHUNK):
                    out += chunk
                    if len(out) > cap:  # declared sizes can lie
                        raise _too_large(cap, info.filename)
        except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, EOFError) as exc:
            raise IngestError(
                Codes.ARCHIVE_INVALID, f"cannot read {info.filename} from the zip: {exc}"
            ) from None
    if out[:2] == b"\x1f\x8b" or out[:4] == b"PK\x03\x04":
        raise IngestError(
            Codes.UNSUPPORTED_FORMAT, f"{info.filename} is itself an archive; upload the CSV"
        )
    return bytes(out), info.filename


def _decompress(data: bytes, cap: int) -> tuple[bytes, str | None, str | None]:
    if data[:2] == b"\x1f\x8b":
        raw = _gunzip(data, cap)
        if raw[:2] == b"\x1f\x8b" or raw[:4] == b"PK\x03\x04":
            raise IngestError(
                Codes.UNSUPPORTED_FORMAT, "the gzip holds another archive; upload the CSV"
            )
        return raw, "gzip", None
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        raw, member = _unzip(data, cap)
        return raw, "zip", member
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            raise IngestError(
                Codes.UNSUPPORTED_FORMAT,
                f"this looks like a {name} file; upload CSV text, optionally gzip- or zip-compressed",
            )
    if len(data) > cap:
        raise _too_large(cap, "the file")
    return data, None, None


def _line_of_offset(data: bytes, offset: int) -> int:
    return (
        data.count(b"\n", 0, offset)
        + data.count(b"\r", 0, offset)
        - data.count(b"\r\n", 0, offset)
        + 1
    )


def _to_utf8(raw: bytes) -> tuple[bytes, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        enc, body = "utf-8-sig", raw[3:]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        enc = "utf-16-le" if raw[:2] == b"\xff\xfe" else "utf-16-be"
        try:
            text = raw[2:].decode(enc)
        except UnicodeDecodeError as exc:
            raise IngestError(
                Codes.ENCODING, f"the file starts with a UTF-16 byte-order mark but {exc.reason}"
            ) from None
        body = text.encode("utf-8")
    else:
        enc, body = "utf-8", raw
    nul = body.find(b"\x00")
    if nul >= 0:
        raise IngestError(
            Codes.ENCODING,
            "the file contains NUL bytes: it is binary, or UTF-16 without a byte-order mark "
            "(save it as UTF-8)",
            line=_line_of_offset(body, nul),
        )
    if enc != "utf-16-le" and enc != "utf-16-be":
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = _line_of_offset(body, exc.start)
            byte = body[exc.start : exc.start + 1].hex().upper()
            raise IngestError(
                Codes.ENCODING,
                f"byte 0x{byte} is not valid UTF-8 (save the file as UTF-8; Excel: 'CSV UTF-8')",
                line=line,
            ) from None
    return body, enc


def _drop_blank_lines(data: bytes) -> tuple[bytes, np.ndarray, int, int | None]:
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(data)]))
    if ends[-1] == starts[-1]:  # text after the final newline: nothing, not a line
        starts, ends = starts[:-1], ends[:-1]
    lengths = ends - starts
    if lengths.size and int(lengths.max()) > MAX_LINE_BYTES:
        i = int(np.argmax(lengths > MAX_LINE_BYTES))
        raise IngestError(
            Codes.LINE_TOO_LONG,
            f"the line is {int(lengths[i]):,} bytes long (limit {MAX_LINE_BYTES:,}): "
            "not a row of OHLCV values",
            line=i + 1,
        )
    blank = lengths == 0
    # Whitespace-only lines are rare; check the candidates one by one.
    first = buf[starts.clip(max=len(data) - 1)]
    for i in np.flatnonzero(~blank & ((first == 32) | (first == 9))):
        if not data[starts[i] : ends[i]].strip(b" \t"):
            blank[i] = True
    kept = np.flatnonzero(~blank)
    n_blank = int(blank.sum())
    first_blank = int(np.argmax(blank)) + 1 if n_blank else None
    if n_blank:
        if n_blank == int((lengths == 0).sum()):
            # Only empty lines: drop every "\n" that starts an empty line, vectorized.
            keep = np.ones(buf.shape[0], dtype=bool)
            keep[starts[blank]] = False  # an empty line starts at its own "\n"
            data = buf[keep].tobytes()
        else:
            data = b"\n".join(data[starts[i] : ends[i]] for i in kept)
    return data, kept.astype(np.int64) + 1, n_blank, first_blank


def decode_bytes(data: bytes, *, max_decompressed_bytes: int) -> Decoded:
    """Decompress (gzip, zip of one file), decode (UTF-8 +- BOM, UTF-16 with BOM), split lines."""
    if not data:
        raise IngestError(Codes.EMPTY_FILE, "the file is empty")
    raw, compression, member = _decompress(data, max_decompressed_bytes)
    body, encoding = _to_utf8(raw)
    if not body or body.isspace():
        raise IngestError(Codes.EMPTY_FILE, "the file has no text")
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text, line_numbers, n_blank, first_blank = _drop_blank_lines(body)
    if not text or text.isspace():
        raise IngestError(Codes.EMPTY_FILE, "the file has no text")
    return Decoded(
        data=text,
        line_numbers=line_numbers,
        encoding=encoding,
        compression=compression,
        member=member,
        blank_lines=n_blank,
        first_blank_line=first_blank,
    )
