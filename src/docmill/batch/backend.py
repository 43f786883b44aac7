"""The provider's Batch API as a ``--batch`` run uses it: one small interface, two implementations.

``BatchSession`` packs request lines, records a batch, creates it, polls it and collects its
answers; what differs between providers is behind ``BatchBackend``:

* ``line(custom_id, body)``: one request line of a batch, ``body`` being the online request.
* ``stage(content)``: the batch's *input id*, recorded in the journal before the batch is created.
  OpenAI uploads the file (``/v1/files``) and the id is the file's; Anthropic keeps no files, and the
  id is a digest of the lines, computed here (nothing is sent).
* ``create(input_id, content)``: the batch at the provider. ``content`` is None when a resumed run
  creates a batch an earlier run recorded: only a provider that ``keeps_input`` can do that.
* ``find(input_id, …)``: the batch an earlier run created from that input, if the provider has it
  (a run killed between creating a batch and recording its id): OpenAI's batches name their input
  file; Anthropic's are matched by their requests (``docmill.batch.anthropic``).
* ``retrieve``, ``results``: where a batch is (in docmill's names: ``validating``, ``in_progress``,
  ``finalizing``, ``cancelling``; ended: ``completed``, ``failed``, ``expired``, ``cancelled``) and,
  once it has ended, each line's answer or why there is none.
* ``sent(input_id)``: the bodies of a batch's lines as sent, to re-pack the lines it did not get to
  (a provider that does not keep its input gives none: those documents are prepared again).

``OpenAIBatches`` (``/v1/files`` and ``/v1/batches``, ``docmill.llm.batch_api``) is here;
``AnthropicBatches`` (Message Batches) in ``docmill.batch.anthropic``; ``backend_for`` picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from docmill.batch.lines import answer_body, bodies, failure, openai_line, parse_lines
from docmill.errors import ConfigError, PermanentError
from docmill.llm.batch_api import BatchAPI
from docmill.llm.prompt import count_prompt_tokens

if TYPE_CHECKING:
    from docmill.processors.classify_llm import LLMSettings

BATCH_PROVIDERS = ("openai", "anthropic")  # the providers with a Batch API


@dataclass(frozen=True, slots=True)
class BatchView:
    """A batch as the provider describes it now: its id, docmill's name for its status, its counts."""

    id: str
    status: str
    counts: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LineResult:
    """What became of one line: the reply ``body`` (fate ``ok``), or ``failed``/``unfinished`` and why."""

    body: Any
    fate: str = "ok"
    reason: str | None = None


class BatchBackend(Protocol):
    """A provider's Batch API (see the module docstring)."""

    name: str
    keeps_input: bool  # a recorded batch can be created, and its lines re-packed, from its input id

    def line(self, custom_id: str, body: Mapping[str, Any]) -> bytes: ...
    def prompt_tokens(self, body: Any) -> int: ...
    def stage(self, content: bytes) -> str: ...
    def create(self, input_id: str, content: bytes | None, *, metadata: Mapping[str, str]) -> BatchView: ...
    def find(
        self, input_id: str, *, requests: int, since: float, known: Collection[str]
    ) -> BatchView | None: ...
    def retrieve(self, provider_id: str) -> BatchView: ...
    def results(self, batch: BatchView, input_id: str) -> dict[str, LineResult]: ...
    def sent(self, input_id: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


class OpenAIBatches:
    """OpenAI's Batch API: the lines in an uploaded JSONL file, output and error files to collect."""

    name = "openai"
    keeps_input = True

    def __init__(self, api: BatchAPI) -> None:
        self.api = api

    def line(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        return openai_line(custom_id, body)

    def prompt_tokens(self, body: Any) -> int:
        return count_prompt_tokens(body.get("messages") or []) if isinstance(body, Mapping) else 0

    def stage(self, content: bytes) -> str:
        return self.api.upload(content)

    def create(self, input_id: str, content: bytes | None, *, metadata: Mapping[str, str]) -> BatchView:
        return _view(self.api.create(input_id, metadata=metadata))

    def find(self, input_id: str, *, requests: int, since: float, known: Collection[str]) -> BatchView | None:
        found = self.api.find(input_id)
        return None if found is None else _view(found)

    def retrieve(self, provider_id: str) -> BatchView:
        return _view(self.api.retrieve(provider_id))

    def results(self, batch: BatchView, input_id: str) -> dict[str, LineResult]:
        raw = batch.raw or {}
        outputs, errors = self._file(raw.get("output_file_id")), self._file(raw.get("error_file_id"))
        found: dict[str, LineResult] = {}
        for custom_id in outputs.keys() | errors.keys():
            body = answer_body(outputs.get(custom_id))
            if body is not None:
                found[custom_id] = LineResult(body)
                continue
            fate, reason = failure(errors.get(custom_id) or outputs.get(custom_id), batch.status)
            found[custom_id] = LineResult(None, fate, reason)
        return found

    def sent(self, input_id: str) -> dict[str, Any]:
        try:
            return dict(bodies(self.api.content(input_id)))
        except PermanentError:  # the input file is gone: its documents are prepared again
            return {}

    def close(self) -> None:
        self.api.close()

    def _file(self, file_id: Any) -> dict[str, dict[str, Any]]:
        return parse_lines(self.api.content(str(file_id))) if file_id else {}


def _view(batch: Mapping[str, Any]) -> BatchView:
    return BatchView(str(batch["id"]), str(batch["status"]), batch.get("request_counts"), batch)


def backend_for(
    settings: LLMSettings, *, api_key: str | None, sleep: Callable[[float], None] | None = None
) -> BatchBackend:
    """The Batch API of ``settings.provider`` at ``settings.base_url``."""
    if settings.provider == "openai":
        api = BatchAPI(settings.base_url, api_key=api_key, timeout=settings.timeout, sleep=sleep)
        return OpenAIBatches(api)
    if settings.provider == "anthropic":
        from docmill.batch.anthropic import AnthropicBatches

        return AnthropicBatches.at(settings.base_url, api_key=api_key, timeout=settings.timeout, sleep=sleep)
    raise ConfigError(
        f"llm.mode: batch needs a provider with a Batch API (openai or anthropic), not {settings.provider!r}"
    )
