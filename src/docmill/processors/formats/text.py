"""Plain text and Markdown: bytes → str in the right encoding, without binary junk.

Decoding order: a byte-order mark (UTF-8, UTF-16, UTF-32); strict UTF-8; UTF-8 with replacement
characters when the file is mostly valid UTF-8 with a few broken sequences; otherwise the legacy
encoding charset-normalizer detects (Windows-1252 wins ties, so Latin-1 text comes out right).
Only the first ``4 × max_chars`` bytes are decoded, so a 50 MB single-line file stays cheap.
"""

from __future__ import annotations

import codecs
import re

from docmill.errors import UnsupportedDocument
from docmill.processors.formats import Extracted, Limits, cap

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 controls that never occur in text (tab, newlines, form feed, backspace and ESC excluded;
# NUL is handled apart: it is stripped, as some exporters pad text with it).
_CONTROL = bytes([*range(0x01, 0x08), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_BINARY_RATIO = 0.03  # random bytes score ~0.10; real text 0
_SAMPLE = 64 * 1024
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_OVERSTRIKE = re.compile(".\b")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_LINE_EDGES = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


def read_text(data: bytes, limits: Limits) -> Extracted:
    """A plain-text document."""
    text, encoding, truncated = decode(data, limits.max_chars)
    return Extracted(tidy(text), truncated=truncated, encoding=encoding)


def read_markdown(data: bytes, limits: Limits) -> Extracted:
    """A Markdown document, with its markup lightly stripped."""
    text, encoding, truncated = decode(data, limits.max_chars)
    return Extracted(tidy(strip_markdown(text)), truncated=truncated, encoding=encoding)


def decode(data: bytes, max_chars: int) -> tuple[str, str, bool]:
    """(text, encoding, truncated): ``data`` decoded, NULs removed, capped at ``max_chars``."""
    encoding, start = _bom(data)
    limit = 4 * max_chars + 4  # no encoding needs more than 4 bytes per character
    head = data[start : start + limit]  # never a copy of the whole file
    complete = start + len(head) == len(data)
    if start == 0:
        _reject_binary(head)
        encoding = _guess(head)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(head, final=complete).replace("\x00", "")
    text, truncated = cap(text, max_chars)
    return text, encoding, truncated or not complete


def _bom(data: bytes) -> tuple[str, int]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return "utf-8", 0


def _reject_binary(data: bytes) -> None:
    sample = data[:_SAMPLE]
    if not sample:
        return
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    if controls > 1 and controls / len(sample) > _BINARY_RATIO:
        share = f"{controls} control bytes in the first {len(sample)}"
        raise UnsupportedDocument(f"binary data, not text ({share})")


def _guess(data: bytes) -> str:
    sample = data[:_SAMPLE]
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and len(data) > len(sample):
            return "utf-8"  # the sample cut a character in two
    high = len(sample) - len(sample.translate(None, _HIGH_BYTES))
    in_utf8 = sum(len(m) for m in _UTF8_SEQUENCE.findall(sample))
    if in_utf8 * 2 >= high:
        return "utf-8"  # mostly UTF-8: broken sequences become U+FFFD
    return _legacy(sample)


def _legacy(sample: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        return "cp1252"
    ties = [m.encoding for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
    return "cp1252" if "cp1252" in ties else best.encoding


def tidy(text: str) -> str:
    """Whitespace normalised: overstrike removed, runs of blanks and blank lines collapsed."""
    if "\b" in text:
        text = _OVERSTRIKE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _LINE_EDGES.sub("\n", _SPACES.sub(" ", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


# (needle, pattern, replacement): a rule runs only when its needle occurs. Every repetition is
# bounded, so a hostile line ("**a " × 200,000) costs linear time.
_MD_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("", re.compile(r"^```.*$|^~~~.*$", re.M), ""),  # code fences (the code itself stays)
    ("](", re.compile(r"!\[([^\]\n]{0,300})\]\([^)\n]{0,1000}\)"), r"\1"),  # images → alt text
    ("](", re.compile(r"\[([^\]\n]{1,300})\]\([^)\n]{0,1000}\)"), r"\1"),  # links → link text
    (
        "",
        re.compile(r"^ {0,3}(?:#{1,6}[ \t]+|> ?|[-*+][ \t]+|\d{1,9}[.)][ \t]+)", re.M),
        "",
    ),  # headings, lists
    ("", re.compile(r"^ {0,3}(?:[-*_][ \t]*){3,}$", re.M), ""),  # horizontal rules
    ("", re.compile(r"(\*\*|__|`{1,3})(?=\S)([^\n]{1,150}?)(?<=\S)\1"), r"\2"),  # bold, inline code
    ("*", re.compile(r"(?<![\w*])\*(?=\S)([^*\n]{1,150}?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (
        "<",
        re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]{0,30}(?:[ \t]+[^<>\n]{0,500})?/?>"),
        "",
    ),  # HTML, not <stdio.h>
)


def strip_markdown(text: str) -> str:
    """Markdown → plain text, cheaply: markup characters go, words stay."""
    for needle, pattern, replacement in _MD_RULES:
        if needle in text:
            text = pattern.sub(replacement, text)
    return text
