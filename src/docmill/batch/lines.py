"""Batch files, line by line: packing request lines within the limits, reading output and error files.

A line of an OpenAI input file is ``{custom_id, method: POST, url: /v1/chat/completions, body}``,
the body being exactly the chat request an online call sends (``Provider.body``); lines of output
and error files are ``{id, custom_id, response: {status_code, body} | null, error: {code, message} |
null}``. The ``Packer`` writes lines in the form its backend gives (``BatchBackend.line``: Anthropic's
are ``{custom_id, params}``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.journal.batch_store import BatchMember, BatchRecord
from docmill.llm.batch_api import ENDPOINT
from docmill.outcome import Outcome

UNFINISHED = ("batch_expired", "batch_cancelled")  # lines a provider did not get to: re-packed


@dataclass(slots=True)
class OpenBatch:
    """A batch not yet collected, as this run tracks it."""

    id: int
    input_file_id: str
    members: list[BatchMember]
    info: dict[str, Any]
    provider_id: str | None = None
    state: str = "packed"
    created: float = 0.0

    @classmethod
    def of(cls, record: BatchRecord) -> OpenBatch:
        """A batch of an earlier run, from its journal record (its members are read when collected)."""
        info = dict(record.info)
        return cls(
            record.id, record.input_file_id, [], info, record.provider_id, record.state, record.created
        )


@dataclass(slots=True)
class Book:
    """Who answers what: documents in open batches, the document packed per content, copies waiting."""

    in_flight: set[str] = field(default_factory=set)  # paths in a batch of this run (open or not)
    leaders: dict[str, str] = field(default_factory=dict)  # sha256 → the path whose line answers it
    followers: dict[str, list[Outcome]] = field(default_factory=dict)  # sha256 → copies waiting
    answered: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # sha256 → answer (this run)
    lines: dict[str, dict[str, int]] = field(default_factory=dict)  # path → failed / unfinished lines


def openai_line(custom_id: str, body: Mapping[str, Any]) -> bytes:
    """A line of an OpenAI batch input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line) + "\n").encode()


@dataclass(slots=True)
class Packer:
    """Request lines gathered into one file, within ``max_requests`` lines and ``max_bytes`` bytes."""

    max_requests: int
    max_bytes: int
    members: list[BatchMember] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    tokens: int = 0  # prompt tokens of every line (with max_tokens: what the batch may cost at most)
    form: Callable[[str, Mapping[str, Any]], bytes] = openai_line  # the backend's line

    def line(self, body: Mapping[str, Any]) -> bytes:
        return self.form(f"doc-{len(self.lines)}", body)

    def fits(self, line: bytes) -> bool:
        return not self.lines or (
            len(self.lines) < self.max_requests and self.size + len(line) <= self.max_bytes
        )

    def add(self, member: BatchMember, line: bytes, tokens: int) -> None:
        self.members.append(member)
        self.lines.append(line)
        self.size += len(line)
        self.tokens += tokens

    @property
    def full(self) -> bool:
        return len(self.lines) >= self.max_requests

    def take(self) -> tuple[bytes, list[BatchMember], int]:
        """(the file's bytes, its members, their tokens), and start a new file."""
        content, members, tokens = b"".join(self.lines), self.members, self.tokens
        self.members, self.lines, self.size, self.tokens = [], [], 0, 0
        return content, members, tokens

    def __len__(self) -> int:
        return len(self.lines)


def parse_lines(content: bytes) -> dict[str, dict[str, Any]]:
    """custom_id → line, for the lines of an output, error or input file (unreadable ones left out)."""
    found: dict[str, dict[str, Any]] = {}
    for raw in content.splitlines():
        try:
            line = json.loads(raw)
            found[str(line["custom_id"])] = line
        except (ValueError, KeyError, TypeError):
            continue
    return found


def answer_body(line: Mapping[str, Any] | None) -> Any:
    """The chat reply of an output line that succeeded, or None."""
    response = (line or {}).get("response") or {}
    return response.get("body") if response.get("status_code") == 200 else None


def failure(line: Mapping[str, Any] | None, status: str) -> tuple[str, str]:
    """(fate, reason) of a line that brought no answer: ``unfinished`` (re-packed) or ``failed``."""
    if line is None:
        return "unfinished", f"no line for it in the files of a batch {status}"
    error = line.get("error") or {}
    if error.get("code") in UNFINISHED:
        return "unfinished", str(error["code"])
    response = line.get("response") or {}
    message = error.get("message") or ((response.get("body") or {}).get("error") or {}).get("message")
    code = response.get("status_code") or error.get("code") or "error"
    return "failed", " ".join(f"batch line failed ({code}): {message or 'no reason given'}".split())[:300]


def bodies(content: bytes) -> Iterator[tuple[str, Any]]:
    """(custom_id, body) of an input file's lines: what re-packing sends again."""
    for custom_id, line in parse_lines(content).items():
        yield custom_id, line.get("body")
