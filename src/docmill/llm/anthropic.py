"""``provider: anthropic``: Anthropic's Messages API, the wire format of one online call.

``POST {base_url}/v1/messages`` with the headers ``x-api-key`` and ``anthropic-version:
2023-06-01`` (``base_url`` is the API's root, ``https://api.anthropic.com``; one ending in ``/v1`` is
taken as that root too). The body::

    {model, max_tokens, temperature: 0, system, messages: [{role: user, content}],
     tools: [{name: classification, description, input_schema: <the answer's schema>}],
     tool_choice: {type: tool, name: classification}}

The Messages API has no JSON mode: with ``response_format: json_schema`` (the default) the answer's
schema is the input schema of one tool the model is made to call, and the answer is that call's
``input``; with ``json_object`` the system prompt asks for the JSON object alone; with ``none``
nothing is added (a reply with JSON inside prose is accepted, as from any provider).

A reply is ``{type: message, content: [{type: text, text} | {type: tool_use, name, input}, …],
stop_reason, usage: {input_tokens, output_tokens}}``: the text the classifier reads is the tool
call's input as JSON, else the text blocks joined; ``stop_reason: max_tokens`` is reported as
``length`` (a reply cut off). Errors are ``{type: error, error: {type, message}}``: the client maps
them by status as for every provider (429 ``rate_limit_error`` → paused by ``retry-after``; 529
``overloaded_error`` and 5xx → retried; 401 ``authentication_error`` → the key is refused), and the
``anthropic-ratelimit-*`` headers teach the limits (``docmill.limits.headers``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from docmill.errors import ConfigError, UpstreamError
from docmill.llm.prompt import Message, count_prompt_tokens
from docmill.llm.providers import Completion

VERSION = "2023-06-01"  # the anthropic-version header
DEFAULT_URL = "https://api.anthropic.com"
TOOL = "classification"  # the tool whose input is the answer
_JSON_ONLY = "Reply with the JSON object alone: no prose before or after it, no code fences."
_STOPS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length"}


def root(base_url: str) -> str:
    """The API's root: ``https://api.anthropic.com`` for that URL and for ``…/v1``."""
    return base_url.rstrip("/").removesuffix("/v1")


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The headers every Anthropic call carries (the key only when there is one)."""
    headers = {"anthropic-version": VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def split_system(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(the system prompt, the user and assistant turns): the Messages API takes the system prompt
    as a top-level field, not as a message."""
    system = "\n\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    turns = [
        {"role": m["role"], "content": m.get("content", "")} for m in messages if m.get("role") != "system"
    ]
    return system, turns


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's prompt as chat messages (system first): what its tokens are counted over, so
    that the client's estimate, the emulator's usage and the OpenAI form of the same prompt agree."""
    system = body.get("system")
    if isinstance(system, list):
        system = "\n\n".join(str(b.get("text", "")) for b in system if isinstance(b, Mapping))
    messages: list[dict[str, Any]] = [{"role": "system", "content": str(system)}] if system else []
    turns = [t for t in body.get("messages") or [] if isinstance(t, Mapping)]
    messages.extend({"role": t.get("role"), "content": text_of(t.get("content"))} for t in turns)
    return messages


def prompt_tokens(body: Any) -> int:
    """Prompt tokens of a Messages request body (the stated approximation, system included)."""
    return count_prompt_tokens(chat_messages(body)) if isinstance(body, Mapping) else 0


def text_of(content: Any) -> str:
    """A message's content as text: a string, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, Mapping))
    return ""


class AnthropicMessages:
    """``POST {base_url}/v1/messages`` (Anthropic's Messages API)."""

    path = "/v1/messages"

    def __init__(self, response_format: str = "json_schema") -> None:
        if response_format not in ("json_schema", "json_object", "none"):
            raise ConfigError(
                f"response_format must be json_schema, json_object or none, got {response_format!r}"
            )
        self.response_format = response_format

    def url(self, base_url: str) -> str:
        return root(base_url) + self.path

    def headers(self, api_key: str | None) -> dict[str, str]:
        return auth_headers(api_key)

    def body(
        self, messages: Sequence[Message], *, model: str, max_tokens: int, schema: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        system, turns = split_system(messages)
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": 0}
        if self.response_format == "json_schema" and schema is not None:
            body["tools"] = [
                {"name": TOOL, "description": "Record the answer.", "input_schema": dict(schema)}
            ]
            body["tool_choice"] = {"type": "tool", "name": TOOL}
        elif self.response_format == "json_object":
            system = f"{system}\n\n{_JSON_ONLY}" if system else _JSON_ONLY
        if system:
            body["system"] = system
        body["messages"] = turns
        return body

    def completion(self, payload: Any) -> Completion:
        try:
            blocks = payload["content"]
            usage = payload.get("usage") or {}
            called = [b for b in blocks if b.get("type") == "tool_use"]
            if called:
                text = json.dumps(called[0].get("input"))
            else:
                text = "".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
            tokens_in = sum(
                int(usage.get(k) or 0)
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            stop = payload.get("stop_reason")
            return Completion(
                text=text,
                tokens_in=tokens_in,
                tokens_out=int(usage.get("output_tokens", 0)),
                finish_reason=_STOPS.get(stop, stop),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(f"reply is not an Anthropic message ({type(exc).__name__}: {exc})") from exc
