"""The chat protocols docmill speaks: OpenAI-compatible chat completions, Ollama chat, and
Anthropic's Messages API (``docmill.llm.anthropic``).

A provider knows only its wire format: where to POST, how to present the key, the request body, and
how to read text and token usage out of a reply. Everything else (limits, retries, error mapping)
is the client's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from docmill.errors import ConfigError, UpstreamError
from docmill.llm.prompt import Message


@dataclass(frozen=True, slots=True)
class Completion:
    """The parts of a reply the classifier needs."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None = None


class Provider(Protocol):
    path: str

    def url(self, base_url: str) -> str: ...
    def headers(self, api_key: str | None) -> dict[str, str]: ...

    def body(
        self, messages: Sequence[Message], *, model: str, max_tokens: int, schema: Mapping[str, Any] | None
    ) -> dict[str, Any]: ...
    def completion(self, payload: Any) -> Completion: ...


class _Bearer:
    """``{base_url}{path}``, the key as a bearer token (OpenAI and Ollama)."""

    path: str

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.path

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}


class OpenAIChat(_Bearer):
    """``POST {base_url}/chat/completions`` (OpenAI, Azure-style gateways, vLLM, llama.cpp, LiteLLM…)."""

    path = "/chat/completions"

    def __init__(self, response_format: str = "json_schema") -> None:
        if response_format not in ("json_schema", "json_object", "none"):
            raise ConfigError(
                f"response_format must be json_schema, json_object or none, got {response_format!r}"
            )
        self.response_format = response_format

    def body(
        self, messages: Sequence[Message], *, model: str, max_tokens: int, schema: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if self.response_format == "json_schema" and schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "classification", "schema": schema, "strict": True},
            }
        elif self.response_format != "none":
            body["response_format"] = {"type": "json_object"}
        return body

    def completion(self, payload: Any) -> Completion:
        try:
            choice = payload["choices"][0]
            usage = payload.get("usage") or {}
            return Completion(
                text=str(choice["message"]["content"] or ""),
                tokens_in=int(usage.get("prompt_tokens", 0)),
                tokens_out=int(usage.get("completion_tokens", 0)),
                finish_reason=choice.get("finish_reason"),
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(f"reply is not a chat completion ({type(exc).__name__}: {exc})") from exc


class OllamaChat(_Bearer):
    """``POST {base_url}/api/chat`` with ``stream: false`` (a local Ollama, free of charge)."""

    path = "/api/chat"

    def __init__(self, response_format: str = "json_schema") -> None:
        self.response_format = response_format

    def body(
        self, messages: Sequence[Message], *, model: str, max_tokens: int, schema: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": list(messages), "stream": False}
        body["options"] = {"num_predict": max_tokens, "temperature": 0}
        if self.response_format == "json_schema" and schema is not None:
            body["format"] = schema
        elif self.response_format != "none":
            body["format"] = "json"
        return body

    def completion(self, payload: Any) -> Completion:
        try:
            return Completion(
                text=str(payload["message"]["content"] or ""),
                tokens_in=int(payload.get("prompt_eval_count", 0)),
                tokens_out=int(payload.get("eval_count", 0)),
                finish_reason=payload.get("done_reason"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(f"reply is not an Ollama chat message ({type(exc).__name__}: {exc})") from exc


PROVIDERS: dict[str, type[OpenAIChat] | type[OllamaChat]] = {"openai": OpenAIChat, "ollama": OllamaChat}
NAMES = ("openai", "ollama", "anthropic")


def get_provider(name: str, *, response_format: str = "json_schema") -> Provider:
    """The provider called ``name`` (``openai``, ``ollama`` or ``anthropic``)."""
    if name == "anthropic":
        from docmill.llm.anthropic import AnthropicMessages

        return AnthropicMessages(response_format)
    try:
        return PROVIDERS[name](response_format)
    except KeyError:
        raise ConfigError(
            f"unknown LLM provider {name!r}; choose one of: {', '.join(sorted(NAMES))}"
        ) from None
