"""Cap how deeply HTML elements nest before the parser sees them.

HTML5 tree construction checks the stack of open elements on every block start tag ("is there a
``p`` in button scope?"), so its cost is O(depth) per tag: 20,000 nested ``div``s take lexbor about
a second, 40,000 take four times as long, and a 1 MB file of ``<div>`` would take minutes.
Browsers cap the depth for the same reason (Chrome at 512). Here, container tags deeper than the
limit are removed from the markup and their text is kept. A hidden element (``hidden``,
``display:none``, ``visibility:hidden``) beyond the limit is removed with its content, so
flattening never reveals text that the page hides.
"""

from __future__ import annotations

import re

MAX_DEPTH = 512

# Elements that stay open until closed explicitly (those closed implicitly, such as p, li and td,
# cannot pile up). Both block ones, whose start tags scan the stack, and inline ones, which deepen it.
_CONTAINERS = frozenset(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption figure "
    "footer form header hgroup main menu nav ol section summary ul "
    "a abbr b bdi bdo big cite code del dfn em font i ins kbd label mark q s samp small span strike "
    "strong sub sup tt u var".split()
)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]{0,15})([^<>]{0,2000})>")
_HIDDEN = re.compile(r"\bhidden\b|display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def cap_nesting(markup: str, limit: int = MAX_DEPTH) -> str:
    """``markup`` with container elements nested at most ``limit`` deep; unchanged when they already are."""
    if markup.count("<") <= limit:
        return markup  # too few tags to nest that deep
    flattener = _Flattener(markup, limit)
    return flattener.run()


class _Flattener:
    """One pass over the tags: depth per container tag; tags past the limit cut out."""

    def __init__(self, markup: str, limit: int) -> None:
        self.markup = markup
        self.limit = limit
        self.depth = 0
        self.kept: list[str] = []
        self.last = 0  # end of the markup already copied or dropped
        self.hidden_at: int | None = None  # depth of a hidden element being dropped whole
        self.changed = False

    def run(self) -> str:
        for match in _TAG.finditer(self.markup):
            if match.group(2).lower() in _CONTAINERS:
                self.tag(match)
        if not self.changed:
            return self.markup
        self.copy_until(len(self.markup))
        return "".join(self.kept)

    def tag(self, match: re.Match[str]) -> None:
        closing = match.group(1) == "/"
        depth = self.depth if closing else self.depth + 1
        if depth > self.limit:
            self.copy_until(match.start())
            self.last = match.end()  # the tag itself is dropped
            self.changed = True
            if not closing and self.hidden_at is None and _HIDDEN.search(match.group(3)):
                self.hidden_at = depth
        self.depth = max(0, depth - 1) if closing else depth
        if self.hidden_at is not None and self.depth < self.hidden_at:
            self.hidden_at = None
            self.last = match.end()

    def copy_until(self, end: int) -> None:
        if self.hidden_at is None:
            self.kept.append(self.markup[self.last : end])
        self.last = max(self.last, end)
