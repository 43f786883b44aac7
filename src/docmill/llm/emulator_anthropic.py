"""The emulator's Anthropic API: ``POST /v1/messages``, ``GET /v1/models``, and Message Batches.

Anthropic's shapes over the emulator's behaviour, so a run against ``provider: anthropic`` gets the
answers, limits and faults an OpenAI-compatible run gets:

* Every request needs ``anthropic-version`` (400 without it) and, with ``api_key`` configured, the
  key in ``x-api-key`` (401 ``authentication_error`` otherwise; the message echoes what it got, as
  careless providers do, so tests can check the client scrubs it).
* ``POST /v1/messages`` is checked the way the Messages API checks it (``request_problem``: a model,
  ``max_tokens``, user/assistant turns, a top-level ``system``, well-formed ``tools`` and
  ``tool_choice``; 400 ``invalid_request_error`` otherwise), counted against the same windows as
  every online call (429 ``rate_limit_error`` with ``retry-after`` in whole seconds), and answered by
  the same model (``emulator_schema``): with a tool the model is made to call (``tool_choice`` ``tool``
  or ``any``, or ``auto`` with tools offered), the answer is that call's ``input``, valid under its
  ``input_schema`` as under OpenAI's ``json_schema``; otherwise a text block. ``usage`` counts the
  system prompt as one more message, so the tokens are those of the OpenAI form of the same prompt.
* ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` on every reply, 429s included
  (``limit_headers: none`` sends none).
* Faults: ``fail_500`` → 500 ``api_error``; ``fail_503`` → 529 ``overloaded_error`` (Anthropic's
  "try again later"); ``drop``, ``hang``, ``malformed``, ``truncated`` and ``bad_label`` as online.
* Message Batches (``emulator_anthropic_batch``) under ``/v1/messages/batches``.

``/emulator/stats`` counts these requests in ``requests`` and again in ``anthropic_requests``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from docmill.llm import emulator_schema
from docmill.llm.anthropic import chat_messages
from docmill.llm.emulator_replies import Reply
from docmill.llm.prompt import count_prompt_tokens, estimate_tokens

if TYPE_CHECKING:
    from docmill.llm.emulator import Emulator
    from docmill.llm.emulator_anthropic_batch import MessageBatches

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CHOICES = ("auto", "any", "tool", "none")
_MALFORMED = b'{"id": "msg_x", "type": "message", "content": [{"type": "text", "text": "{\\"lab'


def error(status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """An error reply in Anthropic's shape: ``{type: error, error: {type, message}}``."""
    payload = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply.json(status, payload, {"request-id": _id("req"), **(headers or {})})


def invalid(message: str) -> Reply:
    return error(400, "invalid_request_error", message)


def request_problem(request: Any) -> str | None:
    """Why the Messages API would refuse ``request`` (400), or None."""
    if not isinstance(request, Mapping):
        return "the body must be a JSON object"
    if not isinstance(request.get("model"), str) or not request["model"]:
        return "model: Field required"
    limit = request.get("max_tokens")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return "max_tokens: Field required (an integer of at least 1)"
    if request.get("stream"):
        return "stream: this emulator answers whole messages only"
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ("user", "assistant"):
            hint = " (the system prompt is the top-level system field)" if role == "system" else ""
            return f"messages.{i}.role: Input should be 'user' or 'assistant'{hint}"
        if not isinstance(message.get("content"), str | list):
            return f"messages.{i}.content: Input should be a string or a list of content blocks"
    if not isinstance(request.get("system", ""), str | list):
        return "system: Input should be a string or a list of text blocks"
    temperature = request.get("temperature", 0)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        return "temperature: Input should be between 0 and 1"
    return _tools_problem(request)


def _tools_problem(request: Mapping[str, Any]) -> str | None:
    tools = request.get("tools", [])
    if not isinstance(tools, list):
        return "tools: Input should be a list"
    names = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not _TOOL_NAME.fullmatch(str(tool.get("name", ""))):
            return f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        schema = tool.get("input_schema")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            return f"tools.{i}.input_schema: Input should be a JSON schema of type object"
        names.append(tool["name"])
    choice = request.get("tool_choice")
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind not in _CHOICES:
        return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    if kind in ("any", "tool") and not names:
        return f"tool_choice: {kind!r} needs tools"
    if kind == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: no tool named {choice.get('name')!r}"
    return None


def called_tool(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The tool the model calls: the one ``tool_choice`` names, else the first offered (``any``, or
    ``auto`` with a tool for the answer at hand); None with ``none`` or no tools."""
    tools = [t for t in request.get("tools") or [] if isinstance(t, Mapping)]
    choice = request.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next(t for t in tools if t.get("name") == choice.get("name"))
    return tools[0]


def compose(
    emulator: Emulator, request: Mapping[str, Any], fault: str | None
) -> tuple[dict[str, Any], tuple[int, int]]:
    """The Message answering ``request`` and its (input, output) tokens; online and in batches."""
    cfg = emulator.config
    messages = chat_messages(request)
    tool = called_tool(request)
    shape: dict[str, Any] = {}
    if tool is not None:  # the tool's input is decoded under its schema, as OpenAI's json_schema
        shape = {"response_format": {"type": "json_schema", "json_schema": {"schema": tool["input_schema"]}}}
    content = emulator_schema.answer(
        shape, messages, ollama=False, seed=cfg.seed, error_rate=cfg.error_rate, gullible=cfg.gullible,
        bad_label=fault == "bad_label",
    )  # fmt: skip
    limit = int(request["max_tokens"])
    blocks: list[dict[str, Any]]
    if estimate_tokens(content) > limit:  # cut off: what was said so far, as text
        content = content[: limit * 4]
        blocks, stop = [{"type": "text", "text": content}], "max_tokens"
    elif tool is not None:
        call = {"type": "tool_use", "id": _id("toolu"), "name": tool["name"], "input": json.loads(content)}
        blocks, stop = [call], "tool_use"
    else:
        blocks, stop = [{"type": "text", "text": content}], "end_turn"
    usage = (count_prompt_tokens(messages), estimate_tokens(content))
    payload = {
        "id": _id("msg"), "type": "message", "role": "assistant", "model": request.get("model"),
        "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }  # fmt: skip
    return payload, usage


class AnthropicDesk:
    """The Anthropic routes of one emulator."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._batches: MessageBatches | None = None

    @property
    def batches(self) -> MessageBatches:
        from docmill.llm.emulator_anthropic_batch import MessageBatches

        if self._batches is None:
            self._batches = MessageBatches(self)
        return self._batches

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        if (method, route) == ("POST", "/v1/messages"):
            return await self._message(headers, body)
        if (refused := self.refused(headers)) is not None:
            return refused
        if (method, route) == ("GET", "/v1/models"):
            return self._models({k: v[-1] for k, v in parse_qs(parts.query).items()})
        if route.startswith("/v1/messages/batches"):
            return self.batches.handle(method, path, headers, body)
        return error(404, "not_found_error", f"no route {method} {route}")

    def refused(self, headers: Mapping[str, str]) -> Reply | None:
        """400 without ``anthropic-version``; 401 unless the configured key is in ``x-api-key``."""
        if "anthropic-version" not in headers:
            return invalid("anthropic-version: header is required")
        key, given = self.emulator.config.api_key, headers.get("x-api-key", "")
        if key is None or given == key:
            return None
        return error(401, "authentication_error", f"invalid x-api-key: {given}".strip().rstrip(":"))

    def limit_headers(self, now: float) -> dict[str, str]:
        """Anthropic's rate-limit headers (none with ``limit_headers: none``)."""
        style = "none" if self.emulator.config.limit_headers == "none" else "anthropic"
        return self.emulator.limit_headers(now, style)

    def _models(self, query: Mapping[str, str]) -> Reply:
        names = list(self.emulator.config.models)
        try:
            limit = max(1, min(1000, int(query.get("limit", "20"))))
        except ValueError:
            return invalid("limit: Input should be a valid integer")
        page = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in names[:limit]
        ]
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        listing = {"data": page, "has_more": len(names) > limit, "first_id": first, "last_id": last}
        return Reply.json(200, listing, {"request-id": _id("req")})

    async def _message(self, headers: Mapping[str, str], body: bytes) -> Reply:
        emulator = self.emulator
        now = emulator.clock.monotonic()
        emulator.arrivals.append(now)
        emulator.counts["requests"] += 1
        emulator.counts["anthropic_requests"] += 1
        if (refused := self.refused(headers)) is not None:
            return refused
        try:
            request = json.loads(body)
        except ValueError:
            return invalid("the body is not JSON")
        if (problem := request_problem(request)) is not None:
            return invalid(problem)
        prompt = count_prompt_tokens(chat_messages(request))
        throttled = emulator.charge(now, prompt + int(request["max_tokens"]))
        if throttled is not None:
            wait, kind = throttled
            retry = {"retry-after": str(math.ceil(wait)), **self.limit_headers(now)}
            return error(429, "rate_limit_error", emulator.throttle_message(wait, kind), retry)
        entry = emulator.tokens_entry(now)
        emulator.in_flight += 1
        emulator.peak_in_flight = max(emulator.peak_in_flight, emulator.in_flight)
        try:
            return await self._work(request, prompt, entry)
        finally:
            emulator.in_flight -= 1

    async def _work(self, request: Mapping[str, Any], prompt: int, entry: list[float]) -> Reply:
        emulator = self.emulator
        fault = emulator.draw_fault()
        payload, usage = compose(emulator, request, fault)
        entry[1] = float(sum(usage))  # correct the admission charge to the real usage
        await emulator.work_latency(usage[1])
        if fault is not None and fault != "bad_label":
            return await self._fault(fault, prompt, entry)
        emulator.counts["ok"] += 1
        emulator.counts["tokens_in"] += usage[0]
        emulator.counts["tokens_out"] += usage[1]
        headers = {"request-id": _id("req"), **self.limit_headers(emulator.clock.monotonic())}
        return Reply.json(200, payload, headers)

    async def _fault(self, fault: str, prompt: int, entry: list[float]) -> Reply:
        emulator = self.emulator
        if fault in ("drop", "hang"):  # no reply at all: the same on every protocol
            return await emulator.transport_fault(fault, prompt, entry)
        entry[1] = float(prompt)  # the work was started: the prompt is charged
        headers = self.limit_headers(emulator.clock.monotonic())
        if fault == "fail_500":
            return error(500, "api_error", "Internal server error", headers)
        if fault == "fail_503":
            return error(529, "overloaded_error", "Overloaded", headers)
        headers["content-type"] = "application/json"
        if fault == "malformed":
            return Reply(200, _MALFORMED, headers)
        return Reply(200, _MALFORMED + b" " * 64, headers, action="truncate")


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"
