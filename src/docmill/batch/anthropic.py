"""``AnthropicBatches``: Anthropic's Message Batches behind ``BatchBackend`` (``docmill.batch.backend``).

* Create: ``POST /v1/messages/batches`` ``{requests: [{custom_id, params}]}``, ``params`` being the
  online Messages request; ``GET /v1/messages/batches/{id}`` (``processing_status``
  ``in_progress`` | ``canceling`` | ``ended``, ``request_counts {processing, succeeded, errored,
  canceled, expired}``, ``results_url``); ``GET …/results`` once ended: JSON lines ``{custom_id,
  result: {type: succeeded | errored | canceled | expired, message | error}}``, in any order.
* Anthropic keeps no input files, so a batch's *input id* (the journal's ``input_file_id``) is
  ``sha256:<digest of its request lines>``, computed before anything is sent, and every
  ``custom_id`` sent carries a tag of that digest (``dm<16 hex>-doc-7``): results are matched by
  that tag, and lines of any other batch are never taken for this one's.
* Finding a batch an earlier run created before it could record its id: the batches listed
  (newest first) back to a little before the intent was recorded, of the same number of requests,
  not already known to the journal. An ended one is checked by its results' tags; among those still
  running (their requests cannot be seen yet) the earliest is adopted, and its results are checked
  by tag when it is collected, so a wrong guess only re-packs those documents, it never records
  another batch's answers.
* With no input file at the provider, a recorded batch that was never created cannot be created
  later (``keeps_input`` is false: the run closes it and packs its documents again), and lines a
  batch did not get to are prepared again from their documents rather than re-sent as they were.

Status names are docmill's (``BatchView.status``): ``in_progress``, ``cancelling``, and once ended
``expired`` (some requests expired), ``cancelled`` (cancellation was asked for) or ``completed``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from docmill.batch.backend import BatchView, LineResult
from docmill.limits.headers import parse_time
from docmill.llm import anthropic
from docmill.llm.batch_api import BatchAPI

BATCHES = "/v1/messages/batches"
SKEW = 600.0  # seconds: how far the provider's clock may run behind ours when looking back
PAGE = 100
_UNFINISHED = {"expired": "batch_expired", "canceled": "batch_cancelled"}


class AnthropicBatches:
    """Message Batches at an Anthropic API root; closed by ``close()``."""

    name = "anthropic"
    keeps_input = False

    def __init__(self, api: BatchAPI) -> None:
        self.api = api  # its base is the API's root (https://api.anthropic.com)

    @classmethod
    def at(
        cls,
        base_url: str,
        *,
        api_key: str | None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] | None = None,
        **options: Any,
    ) -> AnthropicBatches:
        headers = anthropic.auth_headers(api_key)
        root = anthropic.root(base_url)
        return cls(BatchAPI(root, api_key=api_key, timeout=timeout, sleep=sleep, headers=headers, **options))

    def line(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        return (json.dumps({"custom_id": custom_id, "params": body}) + "\n").encode()

    def prompt_tokens(self, body: Any) -> int:
        return anthropic.prompt_tokens(body)

    def stage(self, content: bytes) -> str:
        return f"sha256:{hashlib.sha256(content).hexdigest()}"  # nothing to upload

    def create(self, input_id: str, content: bytes | None, *, metadata: Mapping[str, str]) -> BatchView:
        if content is None:
            raise ValueError("Anthropic keeps no input files: a batch is created from its lines")
        tag = _tag(input_id)
        requests = []
        for raw in content.splitlines():
            line = json.loads(raw)
            requests.append({"custom_id": f"{tag}-{line['custom_id']}", "params": line["params"]})
        return _view(self.api.request_json("POST", BATCHES, json={"requests": requests}))

    def find(self, input_id: str, *, requests: int, since: float, known: Collection[str]) -> BatchView | None:
        running: list[Mapping[str, Any]] = []
        for batch in self._listed():
            created = parse_time(batch.get("created_at"))
            if created is not None and created < since - SKEW:
                break  # older than the record: not this run's
            counts = batch.get("request_counts") or {}
            total = sum(int(v or 0) for v in counts.values())
            if str(batch.get("id")) in known or total != requests:
                continue
            if batch.get("processing_status") != "ended":
                running.append(batch)
            elif self._tagged(batch, _tag(input_id)):
                return _view(batch)
        return _view(running[-1]) if running else None  # the earliest after the record

    def retrieve(self, provider_id: str) -> BatchView:
        return _view(self.api.request_json("GET", f"{BATCHES}/{provider_id}"))

    def results(self, batch: BatchView, input_id: str) -> dict[str, LineResult]:
        tag = f"{_tag(input_id)}-"
        found: dict[str, LineResult] = {}
        for line in self._lines(batch):
            custom_id = str(line.get("custom_id", ""))
            if not custom_id.startswith(tag):
                continue  # another batch's line (a batch adopted by mistake): never taken for ours
            found[custom_id[len(tag) :]] = _result(line.get("result") or {})
        return found

    def sent(self, input_id: str) -> dict[str, Any]:
        return {}  # no input file: the documents are prepared again

    def close(self) -> None:
        self.api.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def _listed(self) -> Any:
        """Every batch, newest first, page by page."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE} | ({"after_id": after} if after else {})
            listing = self.api.request_json("GET", BATCHES, params=params)
            yield from listing.get("data") or []
            after = listing.get("last_id")
            if not listing.get("has_more") or not after:
                return

    def _lines(self, batch: BatchView) -> list[dict[str, Any]]:
        url = str((batch.raw or {}).get("results_url") or "")
        base = self.api.base
        path = url[len(base) :] if url.startswith(f"{base}/") else f"{BATCHES}/{batch.id}/results"
        found = []
        for raw in self.api.request("GET", path).content.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                found.append(line)
        return found

    def _tagged(self, batch: Mapping[str, Any], tag: str) -> bool:
        return any(str(line.get("custom_id", "")).startswith(f"{tag}-") for line in self._lines(_view(batch)))


def _tag(input_id: str) -> str:
    """What every custom_id of the batch of ``input_id`` starts with."""
    return f"dm{input_id.rpartition(':')[2][:16]}"


def _view(batch: Mapping[str, Any]) -> BatchView:
    counts = batch.get("request_counts") or {}
    status = str(batch.get("processing_status"))
    if status == "ended":
        cancelled = "cancelled" if batch.get("cancel_initiated_at") else "completed"
        status = "expired" if counts.get("expired") else cancelled
    elif status == "canceling":
        status = "cancelling"
    return BatchView(str(batch["id"]), status, counts, batch)


def _result(result: Mapping[str, Any]) -> LineResult:
    kind = result.get("type")
    if kind == "succeeded":
        return LineResult(result.get("message"))
    if kind in _UNFINISHED:
        return LineResult(None, "unfinished", _UNFINISHED[str(kind)])
    error = (result.get("error") or {}).get("error") or {}
    reason = f"batch line failed ({error.get('type') or kind}): {error.get('message') or 'no reason given'}"
    return LineResult(None, "failed", " ".join(reason.split())[:300])
