"""``BatchAPI``: the provider's Batch API over HTTP (OpenAI's ``/files`` and ``/batches``; its
plumbing, ``request``/``request_json``, carries Anthropic's Message Batches too:
``docmill.batch.anthropic``).

Upload a JSONL file (``purpose=batch``), create a batch of it, look at it, cancel it, list the
batches (to find one created by a run that was killed before it could note the id), and download
output and error files. Every call is retried on 429s, 5xx, timeouts and dropped connections with
the run's ``RetryPolicy`` (waits through the injected ``sleep``); 401/403 are
``AuthRefusedError`` and other 4xx ``PermanentError``, as for chat calls. The API key is sent in
the ``Authorization`` header only and scrubbed from error messages.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from docmill.errors import AuthRefusedError, PermanentError, RetryableError, UpstreamError
from docmill.llm.replies import error_detail, scrub
from docmill.retry import RetryPolicy

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
DEFAULT_RETRY = RetryPolicy(max_attempts=6, initial=1.0, maximum=60.0)


class BatchAPI:
    """Files and batches at ``base_url`` (``…/v1``); thread-safe, closed by ``close()``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.retry = retry
        self._sleep = sleep or time.sleep  # the run passes its clock's
        self._secret = api_key or None
        if headers is None:  # the key as a bearer token; a provider of its own says how (x-api-key)
            headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def upload(self, content: bytes, *, name: str | None = None) -> str:
        """Upload a batch input file; its id."""
        filename = name or f"docmill-{uuid.uuid4().hex[:12]}.jsonl"
        files = {"file": (filename, content, "application/jsonl")}
        return str(self._json("POST", "/files", data={"purpose": "batch"}, files=files)["id"])

    def create(self, input_file_id: str, *, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Create a batch of an uploaded file; the batch object."""
        body = {"input_file_id": input_file_id, "endpoint": ENDPOINT, "completion_window": WINDOW}
        return self._json("POST", "/batches", json={**body, "metadata": dict(metadata or {})})

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._json("GET", f"/batches/{batch_id}")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._json("POST", f"/batches/{batch_id}/cancel")

    def list(self, *, page: int = 100) -> Iterator[dict[str, Any]]:
        """Every batch, newest first, page by page."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page} | ({"after": after} if after else {})
            listing = self._json("GET", "/batches", params=params)
            yield from listing.get("data") or []
            after = listing.get("last_id")
            if not listing.get("has_more") or not after:
                return

    def find(self, input_file_id: str) -> dict[str, Any] | None:
        """The batch created from ``input_file_id``, if there is one."""
        return next((b for b in self.list() if b.get("input_file_id") == input_file_id), None)

    def content(self, file_id: str) -> bytes:
        """A file's bytes (an output or error file, or an input file to re-pack from)."""
        return self._send("GET", f"/files/{file_id}/content").content

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One call, retried as every call here (``path`` under the base URL)."""
        return self._send(method, path, **options)

    def request_json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """One call whose reply must be a JSON object."""
        return self._json(method, path, **options)

    def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        response = self._send(method, path, **options)
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            raise UpstreamError(f"{method} {path}: the reply is not JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise UpstreamError(f"{method} {path}: the reply is not a JSON object")
        return payload

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(method, path, **options)
            except RetryableError as exc:
                wait = self.retry.delay(attempt, exc)
                if wait is None:
                    raise
                self._sleep(wait)

    def _once(self, method: str, path: str, **options: Any) -> httpx.Response:
        url = self.base + path
        try:
            response = self._http.request(method, url, **options)
        except httpx.HTTPError as exc:
            raise UpstreamError(self._scrub(f"{method} {url} failed: {type(exc).__name__}: {exc}")) from exc
        status = response.status_code
        if status == 200:
            return response
        detail = self._detail(response)
        if status == 429 or status >= 500 or status in (408, 409):
            raise UpstreamError(f"{method} {url}: provider error {status}: {detail}", status=status)
        if status in (401, 403):
            raise AuthRefusedError(f"provider refused the request ({status}): {detail}")
        raise PermanentError(f"{method} {url}: provider refused the request ({status}): {detail}")

    def _detail(self, response: httpx.Response) -> str:
        return error_detail(response, self._secret)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secret)

    def __reduce__(self) -> Any:
        raise TypeError("BatchAPI holds an API key and open connections: it stays in the parent")
