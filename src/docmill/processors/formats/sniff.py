"""Which reader a document needs: magic bytes first, the file extension second.

Returns one of ``pdf``, ``docx``, ``html``, ``md``, ``txt`` (the names recorded in ``format``), or
raises UnsupportedDocument for data that is recognisably binary (ELF, gzip, images, …). With
``images=True`` (OCR is on) PNG, JPEG and TIFF are documents too: ``image``.
"""

from __future__ import annotations

import re

from docmill.errors import UnsupportedDocument

# Magic numbers of common binary formats that are never documents docmill reads.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "an ELF executable"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office (OLE2) file; only DOCX is supported"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"PAR1", "a Parquet file"),
)
# Text-based formats that have no reader: their markup would pass for words.
_UNREAD_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"{\\rtf", "RTF documents are not supported; convert them to DOCX or text"),
    (b"%!PS", "PostScript is not supported; convert it to PDF"),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")  # read by OCR
BY_EXTENSION = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
}
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)


def sniff(data: bytes, suffix: str, *, images: bool = False) -> str:
    """The format name for ``data`` whose file name ends in ``suffix`` (any case, may be empty)."""
    head = data[:2048]
    if images and head.startswith(_IMAGE_MAGIC):
        return "image"
    if head.lstrip()[:5] == b"%PDF-":
        return "pdf"
    if head.startswith(_ZIP_MAGIC):
        return "docx"
    _reject_binary_magic(head)
    known = BY_EXTENSION.get(suffix.lower())
    if known is not None:
        return known
    return "html" if _HTML_START.match(head) else "txt"


def _reject_binary_magic(head: bytes) -> None:
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            raise UnsupportedDocument(f"binary data ({what}), not a document")
    if head[4:8] == b"ftyp":
        raise UnsupportedDocument("binary data (ISO media: MP4/MOV/HEIC), not a document")
    for magic, why in _UNREAD_FORMATS:
        if head.startswith(magic):
            raise UnsupportedDocument(why)
