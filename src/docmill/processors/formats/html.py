"""HTML: the text a reader sees, via selectolax's lexbor parser (fast, tolerant of broken markup).

Dropped before the text is taken: ``head`` (title and metadata), ``script``, ``style``, ``noscript``,
``template``, embedded objects, and elements hidden with the ``hidden`` attribute, ``aria-hidden``
or an inline ``display:none`` / ``visibility:hidden`` style, which is where hidden-text prompt
injections live. Nesting is capped first (``nesting.py``): parsing costs O(depth) per tag.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from docmill.errors import CorruptDocument
from docmill.processors.formats import Extracted, Limits, cap
from docmill.processors.formats.nesting import cap_nesting
from docmill.processors.formats.text import decode, tidy

_INVISIBLE = (
    "head, script, style, noscript, template, svg, math, iframe, object, embed, [hidden], [aria-hidden=true]"
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([a-zA-Z0-9_.:-]+)""", re.I)
# Markup can be longer than its text; read this many bytes of HTML per character kept.
_MARKUP_FACTOR = 8
_SAMPLE = 64 * 1024
_WINDOWS_1252 = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii"}


def read_html(data: bytes, limits: Limits) -> Extracted:
    """An HTML document's visible text."""
    from selectolax.lexbor import LexborHTMLParser

    markup, encoding, cut = decode_html(data, limits.max_chars * _MARKUP_FACTOR)
    try:
        raw = _visible_text(LexborHTMLParser(cap_nesting(markup)))
    except Exception as exc:  # the parser's own failures (allocation, invalid state)
        raise CorruptDocument(f"HTML parser failed: {exc}") from exc
    text, truncated = cap(tidy(raw), limits.max_chars)
    return Extracted(text, truncated=truncated or cut, encoding=encoding)


def _visible_text(tree: Any) -> str:
    for node in tree.css(_INVISIBLE):
        node.decompose()  # detaches the subtree; nodes inside it stay valid (selectolax node_remove_deep)
    for node in tree.css("[style]"):
        if _HIDDEN_STYLE.search(node.attributes.get("style") or ""):
            node.decompose()
    root = tree.body or tree.root
    return str(root.text(deep=True, separator=" ", strip=False)) if root is not None else ""


def decode_html(data: bytes, max_chars: int) -> tuple[str, str, bool]:
    """Markup decoded: a BOM or valid UTF-8 first, then a ``<meta charset>`` declaration, then detection."""
    declared = _declared_charset(data[:4096])
    if declared is None or _is_utf8(data[:_SAMPLE]):
        return decode(data, max_chars)
    limit = 4 * max_chars + 4
    text, truncated = cap(data[:limit].decode(declared, errors="replace"), max_chars)
    return text.replace("\x00", ""), declared, truncated or len(data) > limit


def _is_utf8(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3  # only the sample's cut is broken
    return True


def _declared_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head)
    if match is None or head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # a BOM outranks the declaration
    name = match.group(1).decode("ascii").lower()
    try:  # WHATWG: Latin-1 and ASCII labels mean Windows-1252
        return codecs.lookup("cp1252" if name in _WINDOWS_1252 else name).name
    except LookupError:
        return None
