"""The check before a run: does the endpoint answer, take the key and know the model?

One free request (the model list: ``GET /models``, Ollama's ``GET /api/tags``, Anthropic's
``GET /v1/models``) made in the parent
before any document, so that a typo in ``base_url``, a wrong key or an unknown model ends the run
in a second with one line and exit 2 (``EndpointError``), with nothing recorded, instead of
failing every document after minutes of retries. A server that does not list its models (404, a
5xx, an unreadable body) passes: the run's own calls will tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from docmill.errors import EndpointError
from docmill.llm.replies import error_detail, scrub

if TYPE_CHECKING:
    from docmill.processors.classify_llm import LLMSettings

PROBE_SECONDS = 10.0  # at most: a dead endpoint must be reported within seconds
_LISTS = {
    "openai": ("/models", "data", "id"),
    "ollama": ("/api/tags", "models", "name"),
    "anthropic": ("/v1/models", "data", "id"),  # under the API's root, as /v1/messages
}


def probe(
    settings: LLMSettings, api_key: str | None, *, transport: httpx.BaseTransport | None = None
) -> None:
    """Raise EndpointError unless ``settings.base_url`` answers, accepts ``api_key`` and offers the model."""
    path, _, _ = _LISTS.get(settings.provider, _LISTS["openai"])
    if settings.provider == "anthropic":
        from docmill.llm import anthropic

        url = anthropic.root(settings.base_url) + path + "?limit=1000"  # one page: every model
        headers = anthropic.auth_headers(api_key)
    else:
        url = settings.base_url.rstrip("/") + path
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    seconds = min(settings.timeout, PROBE_SECONDS)
    try:
        with httpx.Client(headers=headers, timeout=seconds, transport=transport) as http:
            response = http.get(url)
    except httpx.TimeoutException as exc:
        raise EndpointError(f"no answer from {settings.base_url} within {seconds:g} s") from exc
    except httpx.HTTPError as exc:
        raise EndpointError(scrub(f"nothing answers at {settings.base_url}: {exc}", api_key)) from exc
    _judge(response, settings, api_key)


def _judge(response: httpx.Response, settings: LLMSettings, api_key: str | None) -> None:
    status = response.status_code
    if status in (401, 403):
        detail = error_detail(response, api_key, limit=200)
        hint = f"check {settings.api_key_env}" if settings.api_key_env else "set api_key_env"
        raise EndpointError(f"{settings.base_url} refused the key ({status}): {detail}; {hint}")
    names = _models(response, settings.provider) if status == 200 else None
    if names is not None and not _offered(settings.model, names):
        offered = ", ".join(sorted(names)[:8]) or "none"
        raise EndpointError(f"unknown model {settings.model!r} at {settings.base_url}; it offers: {offered}")


def _models(response: httpx.Response, provider: str) -> set[str] | None:
    """The model names listed, or None if the body is not a model list."""
    _, key, field = _LISTS.get(provider, _LISTS["openai"])
    try:
        listing: Any = response.json()
        if listing.get("has_more"):  # a page of a longer list (Anthropic's): it cannot tell
            return None
        return {str(entry[field]) for entry in listing[key]}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _offered(model: str, names: set[str]) -> bool:
    """Ollama lists ``llama3:latest`` for ``llama3``; Anthropic lists ``claude-sonnet-4-5-20250929``
    (a dated snapshot) for the aliases ``claude-sonnet-4-5`` and ``claude-sonnet-4-5-latest``."""
    if model in names or f"{model}:latest" in names or model.removesuffix(":latest") in names:
        return True
    alias = model.removesuffix("-latest")  # claude-3-7-sonnet-latest: the newest snapshot
    return any(name.startswith(f"{alias}-") and name[len(alias) + 1 :].isdigit() for name in names)
