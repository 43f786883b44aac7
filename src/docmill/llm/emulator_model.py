"""What the emulated model answers: keyword scoring of the prompt's labels against its document.

Deterministic: the same prompt always gets the same answer, a seeded share of documents
(``error_rate``) gets a wrong label on purpose so evaluations give meaningful numbers, and a
``gullible`` model obeys instructions found in the document (``label: X``, ``answer X``, ``classify
this as X``, ``the label is X``; the attacker model of the prompt-injection tests).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence

from docmill.llm.prompt import LabelSpec

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
_ASSIGNED = re.compile(r"""label["']?\s*[:=]\s*["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)
_ORDERED = re.compile(
    r"""\b(?:(?:answer|respond|reply|output|say)(?:\s+(?:only|with|only\s+with))?\s*:?"""
    r"""|(?:classify|categori[sz]e|label)\s+(?:this|it|the\s+document|the\s+text)\s+as"""
    r"""|(?:label|category|class)\s+(?:is|should\s+be))\s*["']?([A-Za-z0-9_-]+)""",
    re.IGNORECASE,
)
_STOP = frozenset(
    "the and for with from that this are was were which into its any all can has have not but "
    "one such other more about than their there these those them they what when where who will "
    "would should could used uses use using each per via document documents text label".split()
)


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _terms(label: LabelSpec) -> Counter[str]:
    """Words that speak for ``label``: keywords weigh 3, name words 2, description words 1."""
    terms: Counter[str] = Counter()
    for keyword in label.keywords:
        terms.update(dict.fromkeys(_words(keyword), 3))
    terms.update(dict.fromkeys(_words(label.name.replace("-", " ").replace("_", " ")), 2))
    terms.update(_words(label.description))
    return terms


def _unit(seed: int, text: str, salt: str) -> float:
    digest = hashlib.sha256(f"{seed}:{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def score(labels: Sequence[LabelSpec], text: str) -> list[float]:
    """One score per label: weighted, log-damped counts of its terms in ``text``."""
    counts = Counter(_words(text))
    return [sum(w * (1 + counts[t]) ** 0.5 - w for t, w in _terms(label).items()) for label in labels]


def _obeyed(labels: Sequence[LabelSpec], text: str) -> str | None:
    """What a gullible model does when told: the first instruction naming an offered label, else the
    first ``label: X`` assignment, whatever X is."""
    offered = {label.name.casefold(): label.name for label in labels}
    found = [*_ASSIGNED.finditer(text), *_ORDERED.finditer(text)]
    for match in sorted(found, key=lambda m: m.start()):
        if match.group(1).casefold() in offered:
            return offered[match.group(1).casefold()]
    assigned = _ASSIGNED.search(text)
    return assigned.group(1) if assigned else None


def evident(labels: Sequence[LabelSpec], text: str, *, share: float = 0.5) -> list[str]:
    """Every label (best first) scoring at least ``share`` of the best one: a multi-label answer.
    The best label alone when nothing matched."""
    scores = score(labels, text)
    order = sorted(range(len(labels)), key=lambda i: (-scores[i], i))
    if not order:
        return []
    top = scores[order[0]]
    return [labels[i].name for i in order if top > 0 and scores[i] >= share * top] or [labels[order[0]].name]


def classify(
    labels: Sequence[LabelSpec], text: str, *, seed: int = 0, error_rate: float = 0.0, gullible: bool = False
) -> tuple[str, float, str]:
    """(label, confidence, reason) for ``text``; the same inputs always give the same answer."""
    if not labels:
        return "unknown", 0.0, "no labels were offered"
    injected = _obeyed(labels, text) if gullible else None
    if injected:
        return injected, 1.0, "the document told me to"
    scores = score(labels, text)
    best = max(range(len(labels)), key=lambda i: (scores[i], -i))
    confidence = scores[best] / (sum(scores) or 1.0)
    if len(labels) > 1 and _unit(seed, text, "error") < error_rate:
        shift = 1 + int(_unit(seed, text, "which") * (len(labels) - 1))
        return labels[(best + shift) % len(labels)].name, confidence / 2, "a plausible mistake"
    return labels[best].name, confidence, f"matched terms of {labels[best].name}"
