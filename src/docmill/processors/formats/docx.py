"""DOCX: ``word/document.xml`` read straight from the zip with a streaming expat parser.

Faster than python-docx, and the only way to bound a decompression bomb: the declared uncompressed
size is checked first, then the bytes actually inflated are counted while reading (a bomb can lie in
its headers), and parsing stops once ``max_chars`` of text are in hand. Paragraphs, line breaks and
table cells and rows become newlines, tabs spaces (as in text); deleted revisions and field codes are skipped.
Documents with a DTD are refused (Word never writes one; entity tricks need one).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import IO
from xml.parsers import expat

from docmill.errors import CorruptDocument, ResourceLimitExceeded, UnsupportedDocument
from docmill.processors.formats import Deadline, Extracted, Limits
from docmill.processors.formats.text import tidy

_MAIN = "word/document.xml"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BREAKS = {_W + "p", _W + "br", _W + "cr", _W + "tr"}
_CHUNK = 256 * 1024


class _Enough(Exception):
    """Internal: max_chars reached, stop parsing."""


def read_docx(data: bytes, limits: Limits, *, named_docx: bool = True) -> Extracted:
    """A DOCX document's text."""
    archive = _open_zip(data)
    with archive:
        info = _main_part(archive, named_docx)
        if info.file_size > limits.max_inflated_bytes:
            raise _too_big(info.file_size, limits, "declares")
        collector = _Collector(limits.max_chars)
        try:
            with archive.open(info) as member:
                _parse(member, collector, limits, limits.timer())
        except _Enough:
            pass
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise CorruptDocument(f"corrupt DOCX: {exc}") from exc  # ValueError: offsets out of range
    return Extracted(collector.text(), truncated=collector.full)


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise CorruptDocument(f"corrupt DOCX: not a zip archive ({exc})") from exc


def _main_part(archive: zipfile.ZipFile, named_docx: bool) -> zipfile.ZipInfo:
    try:
        return archive.getinfo(_MAIN)
    except KeyError:
        error = CorruptDocument if named_docx else UnsupportedDocument
        raise error(f"a zip archive without {_MAIN}: not a DOCX document") from None


def _too_big(size: int, limits: Limits, how: str) -> ResourceLimitExceeded:
    return ResourceLimitExceeded(
        f"DOCX {how} {size:,} bytes of XML; the limit is {limits.max_inflated_bytes:,} (max_inflated_bytes)"
    )


def _parse(member: IO[bytes], collector: _Collector, limits: Limits, deadline: Deadline) -> None:
    parser = collector.parser()
    inflated = 0
    while chunk := member.read(_CHUNK):
        inflated += len(chunk)
        if inflated > limits.max_inflated_bytes:
            raise _too_big(inflated, limits, "inflates to over")
        deadline.check(f"after {inflated:,} bytes of XML")
        _feed(parser, chunk, final=False)
    _feed(parser, b"", final=True)


def _feed(parser: expat.XMLParserType, chunk: bytes, *, final: bool) -> None:
    try:
        parser.Parse(chunk, final)
    except expat.ExpatError as exc:
        raise CorruptDocument(f"corrupt DOCX: {_MAIN} is not well-formed XML ({exc})") from exc


class _Collector:
    """expat callbacks gathering the text of ``w:t`` runs, with breaks and tabs."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.size = 0
        self.in_text = False
        self.full = False

    def parser(self) -> expat.XMLParserType:
        parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.chars
        parser.StartDoctypeDeclHandler = self.doctype
        return parser

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == _W + "t":
            self.in_text = True
        elif name == _W + "tab":
            self.add("\t")

    def end(self, name: str) -> None:
        if name == _W + "t":
            self.in_text = False
        elif name in _BREAKS:
            self.add("\n")

    def chars(self, data: str) -> None:
        if self.in_text:
            self.add(data)

    def doctype(self, *args: object) -> None:
        raise CorruptDocument(f"corrupt DOCX: {_MAIN} declares a DTD")

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.max_chars:
            self.full = True
            raise _Enough

    def text(self) -> str:
        return tidy("".join(self.parts)[: self.max_chars])
