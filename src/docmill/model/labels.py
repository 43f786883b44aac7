"""The labels file: the allowed labels, what each means, and the words that betray it.

One format serves the keywords classifier and the LLM classifier::

    labels:
      invoice:
        description: "A bill requesting payment for goods or services."
        keywords: [invoice, amount due, payment terms, vat]

``load_labels(path)`` returns a frozen :class:`LabelSet`. A malformed file raises ``ConfigError``
with one line naming the file and the problem, before any document is read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from docmill.errors import ConfigError

_LABEL_KEYS = frozenset({"description", "keywords"})


@dataclass(frozen=True, slots=True)
class LabelSet:
    """Label names in file order, with a description and keywords for each."""

    names: tuple[str, ...]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.names:
            raise ConfigError("a label set needs at least one label")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"duplicate label names in {list(self.names)}")
        # Own copies with an entry for every name (plain dicts: a LabelSet must pickle).
        descriptions = {n: self.descriptions.get(n, "") for n in self.names}
        keywords = {n: tuple(self.keywords.get(n, ())) for n in self.names}
        object.__setattr__(self, "descriptions", descriptions)
        object.__setattr__(self, "keywords", keywords)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __len__(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """The file's content as plain data (what ``fingerprint`` hashes)."""
        labels = {
            n: {"description": self.descriptions[n], "keywords": list(self.keywords[n])} for n in self.names
        }
        return {"labels": labels}

    def fingerprint(self) -> str:
        """Stable hash of names, descriptions and keywords (order included: it breaks ties)."""
        blob = json.dumps(self.to_dict(), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_labels(path: str | os.PathLike[str]) -> LabelSet:
    """Read and validate a labels file; ConfigError (one line, naming the file) if it is wrong."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"labels file {file}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"labels file {file}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"labels file {file}: invalid YAML{_where(exc)}") from None
    try:
        return parse_labels(data)
    except ConfigError as exc:
        raise ConfigError(f"labels file {file}: {exc}") from None


def parse_labels(data: Any) -> LabelSet:
    """Build a LabelSet from already-parsed YAML/JSON data."""
    if not isinstance(data, Mapping) or "labels" not in data:
        raise ConfigError("expected a mapping with a top-level 'labels:' key")
    labels = data["labels"]
    if not isinstance(labels, Mapping) or not labels:
        raise ConfigError("'labels' must be a non-empty mapping of label name → {description, keywords}")
    descriptions: dict[str, str] = {}
    keywords: dict[str, tuple[str, ...]] = {}
    for name, entry in labels.items():
        _check_name(name)
        descriptions[name], keywords[name] = _parse_entry(name, entry)
    return LabelSet(tuple(labels), descriptions, keywords)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"label name {name!r} must be a non-empty string (quote it in YAML)")
    if name != name.strip():
        raise ConfigError(f"label name {name!r} has leading or trailing spaces")


def _parse_entry(name: str, entry: Any) -> tuple[str, tuple[str, ...]]:
    if entry is None:
        return "", ()
    if not isinstance(entry, Mapping):
        raise ConfigError(f"label {name!r}: expected a mapping with 'description' and/or 'keywords'")
    unknown = sorted(str(k) for k in entry if k not in _LABEL_KEYS)
    if unknown:
        raise ConfigError(
            f"label {name!r}: unknown key(s) {', '.join(unknown)}; allowed: description, keywords"
        )
    description = entry.get("description") or ""
    if not isinstance(description, str):
        raise ConfigError(f"label {name!r}: 'description' must be a string")
    return description.strip(), _parse_keywords(name, entry.get("keywords"))


def _parse_keywords(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"label {name!r}: 'keywords' must be a list of strings")
    bad = [k for k in value if not isinstance(k, str) or not k.strip()]
    if bad:
        raise ConfigError(f"label {name!r}: keyword {bad[0]!r} is not a non-empty string (quote it in YAML)")
    return tuple(dict.fromkeys(k.strip() for k in value))


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or ""
    if mark is None:
        return f": {problem}" if problem else ""
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}".rstrip(": ")
