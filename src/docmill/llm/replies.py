"""What a provider's error reply says, in one line, with the API key never in it.

Shared by the HTTP client, the endpoint probe and the Batch API client: every message that may
reach a log, the journal or the terminal goes through ``scrub``.
"""

from __future__ import annotations

import httpx


def error_detail(response: httpx.Response, secret: str | None, limit: int = 300) -> str:
    """The provider's ``error.message`` (else the body), on one line, at most ``limit`` characters."""
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text
    return scrub(" ".join(message.split())[:limit], secret)


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text
