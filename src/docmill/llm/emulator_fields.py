"""What the emulated model extracts for a field of a JSON schema: read from the document, as a model would.

A schema property that is not a label (``docmill.model.fields``: ``section``, ``name``, ``see_also``)
is answered from the document the prompt fences, never made up:

* a **heading** named like the property (``see_also`` → ``SEE ALSO`` or ``See Also``, ``name`` →
  ``NAME``) gives its section's text: a string is its first entry (a man page's ``name - what it
  does`` gives ``name``, and of ``a, b - …`` the first), a list of strings the pages it names
  (``ls(1)``, hyphenation across lines undone) or else its comma-separated entries, a number the
  first number in it;
* an integer about a **section** (by the property's name or description) is the manual section a
  man page states in its header (``LS(1)``);
* a date is the first ``YYYY-MM-DD`` date in its section, else in the document;
* an integer whose description lists **choices** (``1 user commands, 2 system calls, …``) is the
  choice the document's words speak for most (the classification model, ``emulator_model``).

What the document does not say is ``MISSING``: the schema walk then answers ``null`` where the schema
allows it, and its usual value otherwise (decoding under a schema must produce one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from docmill.llm import emulator_model
from docmill.llm.prompt import LabelSpec

MISSING: Final = object()
_UPPER = re.compile(r"^[A-Z][A-Z0-9 /&-]{0,40}$")  # no "_": NAME_LIKE_THIS is a name
_TITLE = re.compile(r"^[A-Z][a-z]+(?: [A-Za-z][a-z]*){0,4}$")
_REF = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.:+-]*) ?\((\d[A-Za-z0-9]*)\)")  # groff HTML: "ls (1)"
_HEADER = re.compile(r"^\s*[A-Za-z0-9_.:+-]+\((\d)[A-Za-z0-9]*\)")
_WHATIS = re.compile(r"\s[-—–]\s|\s\\-\s|\s[-—–]$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_DATE = re.compile(r"\b\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b")
_SOFT_BREAK = re.compile(r"‐\s*\n\s*")  # man's hyphen where a word was broken across lines


class Reader:
    """The fields a document states, found by the schema property's name."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = [line.strip() for line in text.splitlines()]

    def read(self, name: str, schema: Mapping[str, Any], kind: str) -> Any:
        """The value of property ``name`` (of JSON type ``kind``) within the schema's bounds, or
        ``MISSING`` (also for what is not a field: a label, an object)."""
        if not reads(schema, kind):
            return MISSING
        found = self._value(name, schema, kind)
        return found if found is MISSING or _within(found, schema) else MISSING

    def _value(self, name: str, schema: Mapping[str, Any], kind: str) -> Any:
        body = self.section(name)
        if kind == "integer":
            return self._integer(name, schema, body)
        if kind == "string" and schema.get("format") == "date":
            found = _DATE.search(body or self.text)
            return found.group(0) if found else MISSING
        if body is None:
            return [] if kind == "array" and _strings(schema) else MISSING
        if kind == "string":
            return first_entry(body)
        if kind == "array" and _strings(schema):
            return entries(body)
        if kind == "number" and (found := _NUMBER.search(body)):
            return float(found.group(0))
        return MISSING

    def section(self, name: str) -> str | None:
        """The text under the first heading named ``name`` that has any (``see_also``: ``SEE ALSO``)."""
        wanted = name.replace("_", " ").replace("-", " ").casefold().strip()
        for i, line in enumerate(self.lines):
            style = _UPPER if _UPPER.match(line) else _TITLE if _TITLE.match(line) else None
            if style is None or line.casefold() != wanted:
                continue
            body = self._body(i + 1, style)
            if body:
                return body
        return None

    def _body(self, start: int, style: re.Pattern[str]) -> str:
        found: list[str] = []
        for line in self.lines[start:]:
            if style.match(line) and (found or style is _UPPER):
                break
            found.append(line)
        return "\n".join(found).strip()

    def _integer(self, name: str, schema: Mapping[str, Any], body: str | None) -> Any:
        if body is not None and (found := re.search(r"\d+", body)):
            return int(found.group(0))
        about = f"{name} {schema.get('description') or ''}".casefold()
        if "section" in about and (section := self.man_section()) is not None:
            return section
        return self.choice(str(schema.get("description") or ""))

    def man_section(self) -> int | None:
        """The section a man page states in its header line (``LS(1)``). Not where a page names
        itself: ``printf(1)`` in printf(3) is another page (on the shared man pages, without their
        headers, that guess was right for 9 of the 37 pages that name themselves)."""
        first = next((line for line in self.lines if line), "")
        header = _HEADER.match(first)
        return int(header.group(1)) if header else None

    def choice(self, description: str) -> Any:
        """The number among those the description lists with a meaning that the document's words
        speak for most; ``MISSING`` when it lists fewer than two."""
        parts = re.split(r"(?<![\w.])(\d+)(?![\w.])", description)
        options = [
            LabelSpec(parts[i], parts[i + 1].strip(" ,;:.=()-"))
            for i in range(1, len(parts) - 1, 2)
            if re.search(r"[A-Za-z]{3}", parts[i + 1])
        ]
        if len(options) < 2:
            return MISSING
        label, _, _ = emulator_model.classify(options, self.text)
        return int(label)


def first_entry(body: str) -> str:
    """A section's first entry: before ``-`` in ``name - what it does``, the first of a list."""
    paragraph = " ".join(body.split("\n\n", 1)[0].split())
    head = _WHATIS.split(paragraph, maxsplit=1)[0] if _WHATIS.search(paragraph) else paragraph
    return head.split(",")[0].strip()


def entries(body: str) -> list[str]:
    """The pages a section names (``ls(1)``), else its comma- or line-separated entries."""
    joined = _SOFT_BREAK.sub("", body)
    refs = [f"{m.group(1)}({m.group(2)})" for m in _REF.finditer(joined)]
    if refs:
        return list(dict.fromkeys(refs))
    items = (item.strip(" .;") for item in re.split(r"[,\n]", joined))
    return [" ".join(item.split()) for item in items if item]


def reads(schema: Mapping[str, Any], kind: str) -> bool:
    """Whether a property of this schema is a field the reader answers (a string, a number, a list of
    strings), not a label (an enum) or a structure."""
    plain = "enum" not in schema and "const" not in schema
    return plain and (kind in ("string", "integer", "number") or (kind == "array" and _strings(schema)))


def _within(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` keeps the schema's bounds (lengths, item counts, minimum and maximum)."""
    if isinstance(value, list | str):
        least, most = ("minItems", "maxItems") if isinstance(value, list) else ("minLength", "maxLength")
        return int(schema.get(least) or 0) <= len(value) <= int(schema.get(most, len(value)))
    low, high = schema.get("minimum"), schema.get("maximum")
    return bool((low is None or value >= low) and (high is None or value <= high))


def _strings(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` is an array of plain strings (not of an enum: labels are chosen elsewhere)."""
    items = schema.get("items")
    return isinstance(items, Mapping) and items.get("type") == "string" and "enum" not in items


__all__ = ["MISSING", "Reader", "entries", "first_entry", "reads"]
