"""The text features of the ``model:`` classifier that prediction needs: plain Python, no scikit-learn.

``structure`` and ``lead`` preprocess text for two tf-idf blocks; ``citation_row`` computes the
citation block's 20 columns from a corpus citation index. :mod:`docmill.model.features` builds the
scikit-learn pipeline around them for training; :mod:`docmill.model.compiled` applies them in workers,
which then import neither scikit-learn nor scipy.
"""

from __future__ import annotations

import re
from collections import Counter

LEAD_CHARS = 600
CITATION_COLUMNS = 20
_REF = re.compile(r"([\w.:+@-]+) ?\((\d)[a-z]*\)")  # what references() finds, written plainly
_SECTION = re.compile(r"\((\d)[a-z]*\)")
_NAME_TAIL = re.compile(r"[\w.:+@-]+\Z")
_HEADING = re.compile(r"^[ \t]{0,2}(?:##[ \t]*)?([A-Z][A-Za-z ]{1,30}?)[ \t]*$", re.M)
_NAME_HEADING = re.compile(r"^[ \t]*(?:##[ \t]*)?NAME[ \t]*$", re.I | re.M)
_NAME_DASH = re.compile(r"\s[-\u2014\u2013\u2010]\s")
_CAPS_LINE = re.compile(r"^[ \t]*[A-Z][A-Z ]{2,}[ \t]*$", re.M)
_SPLIT_WORD = re.compile(r"[\u2010-]\s*\n\s*")


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def structure(text: str) -> str:
    """Tokens describing the document's shape: headings, cross-reference sections, C includes."""
    text = _lines(text)
    markdown = text.lstrip().startswith("##")
    tokens = ["doc"]  # never empty: a corpus without any structure still fits
    tokens.extend(f"ref{section}" for _, section in references(text))
    headings = (h for h in _HEADING.findall(text) if h.isupper() or markdown)
    tokens.extend("h_" + "_".join(h.lower().split()) for h in headings)
    if "#include" in text:
        tokens.append("include")
    return " ".join(tokens)


def lead(text: str) -> str:
    """The opening of the document (title, NAME line, synopsis), lower-cased."""
    return text[:LEAD_CHARS].lower()


def references(text: str) -> list[tuple[str, str]]:
    """(name, section digit) of every ``name(N)`` / ``name (N)``: ``_REF.findall(text)``, 4–30× faster.

    The regular expression tries a name at every word character; this finds the rare ``(N)`` first
    and reads the name backwards from it (a maximal run of name characters, as the greedy ``+`` takes).
    """
    found = []
    for match in _SECTION.finditer(text):
        end = match.start()
        if end and text[end - 1] == " ":
            end -= 1
        start = _name_start(text, end)
        if start < end:
            found.append((text[start:end], match.group(1)))
    return found


def _name_start(text: str, end: int) -> int:
    """Where the run of name characters that ends at ``end`` starts (``end`` if there is none)."""
    window = 64
    while True:
        begin = max(0, end - window)
        tail = _NAME_TAIL.search(text, begin, end)
        if tail is None:
            return end
        if tail.start() > begin or begin == 0:
            return tail.start()
        window *= 4  # the run may go on before the window


def citations(text: str) -> Counter[tuple[str, str]]:
    """(lower-cased name, section digit) for every ``name(N)`` cross-reference in the text."""
    return Counter((name.lower(), section) for name, section in references(text))


def own_names(text: str) -> list[str]:
    """The names a page documents: its NAME entry (before the dash) and its title line."""
    text = _lines(text)
    names = _name_entry(text)
    first = text.strip().split("\n", 1)[0].strip().split(" ")[0].rstrip("()").lower() if text.strip() else ""
    if first and first != "name" and first not in names and len(first) < 60:
        names.append(first)
    return names


def _name_entry(text: str) -> list[str]:
    for match in _NAME_HEADING.finditer(text):
        segment = text[match.end() : match.end() + 600]
        dash = _NAME_DASH.search(segment)
        if dash is None or _CAPS_LINE.search(segment[: dash.start()]):
            continue  # a table of contents, not the NAME section itself
        segment = _SPLIT_WORD.sub("", segment[: dash.start()])
        return [" ".join(n.split()).lower() for n in segment.split(",") if n.strip()][:12]
    return []


def citation_row(text: str, index: Counter[tuple[str, str]], *, exclude_own: bool) -> list[float]:
    """The 20 :class:`Citations` columns of one text, given the corpus's citation ``index``."""
    own = citations(text)
    row = [0.0] * CITATION_COLUMNS
    for name in own_names(text):
        for digit in range(10):
            key = (name, str(digit))
            row[digit] += index.get(key, 0) - (own.get(key, 0) if exclude_own else 0)
            row[10 + digit] += own.get(key, 0)
    for first in (0, 10):
        total = sum(row[first : first + 10])
        if total > 0:
            row[first : first + 10] = [v / total for v in row[first : first + 10]]
    return row


PREPROCESSORS = {"structure": structure, "lead": lead}  # named in version-2 model files
