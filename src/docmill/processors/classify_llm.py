"""``--classifier llm``: one label per document from an LLM, at the provider's rate limit.

The prompt (``docmill.llm.prompt``) lists the allowed labels with their descriptions and the
document's text cut to a token budget; the reply must be JSON naming one of them. A reply that
does not (bad JSON, a label outside the set, whatever an injected instruction made the model
say) is asked again up to ``invalid_retries`` times, then the document fails permanently with
``InvalidModelOutput``, which the journal quarantines. Rate limits (429), provider errors and
timeouts are retried with exponential backoff and full jitter (``RetryPolicy``); a 429's
Retry-After pauses every worker sharing the limits. The classifier is the one owner of these
retries (``docmill.llm.attempts``): every attempt is counted, and the error it gives up on is
marked ``exhausted`` so that ``Job`` does not retry it again. ``check()`` probes the endpoint
before a run; an outage during one opens the breaker (``docmill.llm.breaker``) and stops the run.

Result metadata: ``label``, ``score`` (the model's confidence, or None), ``classifier``
(fingerprint), ``model``, ``tokens_in``, ``tokens_out``, ``cost`` (USD), ``requests`` (HTTP
calls made, failed ones included), ``cached`` and ``concurrency`` (the adaptive limit in force).
A copy of a document being classified at the same time waits for that call and takes its answer
(``docmill.llm.singleflight``): it costs nothing and says whose answer it took (``coalesced``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document
from docmill.errors import ConfigError, InvalidModelOutput, ProcessingError
from docmill.limits import interrupt
from docmill.limits.adaptive import AIMD, ConcurrencyGate
from docmill.limits.provider import ProviderLimits
from docmill.llm.attempts import RETRIED, Tally, after_failure
from docmill.llm.breaker import Breaker
from docmill.llm.cache import NullCache, ResponseCache, cache_key
from docmill.llm.client import LLMClient, LLMReply
from docmill.llm.factory import CONTEXT as CONTEXT  # re-exported: part of this API
from docmill.llm.factory import options_of as options_of
from docmill.llm.factory import wiring as wiring
from docmill.llm.latency import LatencyTracker
from docmill.llm.pricing import Price
from docmill.llm.probe import probe
from docmill.llm.prompt import PROMPT_VERSION, LabelSpec, Message, build_messages, response_schema, truncate
from docmill.llm.providers import get_provider
from docmill.llm.settings import LLMOptions
from docmill.llm.singleflight import Borrowed, SingleFlight, answer_of
from docmill.model.labels import LabelSet, load_labels
from docmill.processors.base import AsyncProcessor
from docmill.retry import RetryPolicy

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
DEFAULT_RETRY = RetryPolicy(max_attempts=8, initial=0.5, maximum=30.0)
FREE = Price()


@dataclass(frozen=True, slots=True)
class LLMSettings:
    """How to reach the model. The API key is read from ``api_key_env`` in each worker's setup()."""

    base_url: str
    model: str
    provider: str = "openai"
    api_key_env: str | None = None
    timeout: float = 60.0  # the ceiling of the tail-aware timeout (docmill.llm.latency)
    timeout_floor: float = 5.0
    timeout_multiplier: float = 3.0
    hedge: float = 0.95  # the quantile past which a call gets a twin at the tail (docmill.llm.hedge)
    response_format: str = "json_schema"
    max_tokens_in: int = 2000
    max_tokens_out: int = 100


class LLMClassifier(AsyncProcessor):
    """Classify documents with a chat model; ``prompt()`` and ``parse()`` are the override points."""

    name = "llm"
    version = "1"
    requires = (("httpx", "llm"),)

    def __init__(
        self,
        labels: LabelSet,
        settings: LLMSettings,
        *,
        limits: ProviderLimits | None = None,
        price: Price = FREE,
        cache: ResponseCache | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        invalid_retries: int = 2,
        concurrency: AIMD | None = None,
        transport: Any = None,
        clock: Clock = SYSTEM_CLOCK,
        outage_seconds: float = 30.0,
    ) -> None:
        self.labels = labels
        self.settings = settings
        self.limits = limits or ProviderLimits()
        self.price = price
        self.cache = cache
        self.retry = retry
        self.invalid_retries = invalid_retries
        self.concurrency = concurrency or AIMD()
        self.transport = transport  # tests: httpx.MockTransport
        self.clock = clock
        self.breaker = Breaker(window=outage_seconds, clock=clock)  # per process
        self._specs = [LabelSpec(n, labels.descriptions[n], labels.keywords[n]) for n in labels.names]
        self._client: LLMClient | None = None
        self._cache: ResponseCache | NullCache = NullCache()

    def config(self) -> Mapping[str, Any]:
        s = self.settings
        return {
            "labels": self.labels.fingerprint(),
            "model": s.model,
            "prompt": PROMPT_VERSION,
            "max_tokens_in": s.max_tokens_in,
        }

    def setup(self) -> None:
        """Per worker: read the API key, open the connection pool and the cache."""
        s = self.settings
        gate = ConcurrencyGate(
            AIMD(**{f: getattr(self.concurrency, f) for f in ("limit", "minimum", "maximum")}),
            clock=self.clock,
        )
        self._client = LLMClient(
            s.base_url,
            provider=get_provider(s.provider, response_format=s.response_format),
            api_key=_api_key(s),
            limits=self.limits,
            gate=gate,
            timeout=s.timeout,
            transport=self.transport,
            clock=self.clock,
            latency=LatencyTracker(s.timeout, s.timeout_floor, s.timeout_multiplier, clock=self.clock),
            hedge=s.hedge,
        )
        self._cache = self.cache if self.cache is not None else NullCache()  # an empty cache is falsy

    def check(self) -> None:
        """Before the run: the endpoint answers, takes the key and knows the model (EndpointError)."""
        if self.transport is None:  # an injected transport (tests) answers scripted calls only
            probe(self.settings, _api_key(self.settings))

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._cache.close()

    # -- the two drivers: same decisions, blocking or awaiting ------------------------------------

    def process(self, doc: Document) -> Document:
        self._started()
        if (hit := self._cached(doc)) is not None:
            return hit
        shared = self._flight().run(self._key(doc), doc.ref.id, lambda: self._call(doc))
        return self._borrowed(doc, shared) if isinstance(shared, Borrowed) else shared

    def _call(self, doc: Document) -> Document:
        client = self._started()
        messages = self.prompt(doc)
        tally = Tally.of(messages)
        try:
            while True:
                try:
                    reply = client.complete(messages, **self._call_options())
                    return self._answered(doc, reply, tally)
                except RETRIED as exc:
                    wait = self._after_failure(tally, exc)
                interrupt.sleep(self.clock, wait)  # cut short when the run stops
        except ProcessingError as exc:
            self._bill(exc, tally)
            raise

    async def aprocess(self, doc: Document) -> Document:
        self._started()
        if (hit := self._cached(doc)) is not None:
            return hit
        shared = await self._flight().arun(self._key(doc), doc.ref.id, lambda: self._acall(doc))
        return self._borrowed(doc, shared) if isinstance(shared, Borrowed) else shared

    async def _acall(self, doc: Document) -> Document:
        client = self._started()
        messages = self.prompt(doc)
        tally = Tally.of(messages)
        try:
            while True:
                try:
                    call = functools.partial(client.acomplete, messages, **self._call_options())
                    reply = await client.hedger.first_reply(call, tally)
                    return self._answered(doc, reply, tally)
                except RETRIED as exc:
                    wait = self._after_failure(tally, exc)
                await interrupt.asleep(self.clock, wait)
        except ProcessingError as exc:
            self._bill(exc, tally)
            raise

    # -- the decisions ----------------------------------------------------------------------------

    def _started(self) -> LLMClient:
        if self._client is None:
            self.setup()
        assert self._client is not None
        return self._client

    def _call_options(self) -> dict[str, Any]:
        schema = response_schema(self.labels.names)
        return {"model": self.settings.model, "max_tokens": self.settings.max_tokens_out, "schema": schema}

    def _after_failure(self, tally: Tally, exc: Exception) -> float:
        """Seconds to wait before asking again; raises when the budget is spent or the run must stop."""
        retry, invalid, breaker = self.retry, self.invalid_retries, self.breaker
        return after_failure(tally, exc, policy=retry, invalid_retries=invalid, breaker=breaker)

    def _bill(self, exc: ProcessingError, tally: Tally) -> None:
        tally.bill(exc, self.price)

    def _answered(self, doc: Document, reply: LLMReply, tally: Tally) -> Document:
        tally.add(reply)
        self.breaker.answered()
        answer = self.parse(doc, reply)
        self._cache.put(self._key(doc), answer)
        cost = self.price.cost(tally.tokens_in, tally.tokens_out)
        return doc.with_metadata(
            **self._common(answer), **tally.usage(), cost=cost, cached=False, concurrency=tally.concurrency
        )

    def _flight(self) -> SingleFlight[Document]:
        """Copies of ``doc`` in flight together (threads, loops, processes) make one call."""
        return SingleFlight(self._cache, answer_of, clock=self.clock)

    def _borrowed(self, doc: Document, shared: Borrowed) -> Document:
        """A copy's result: the answer another document paid for (``coalesced``: its id), free."""
        free = self._cached(doc, shared.answer)
        assert free is not None
        return free if shared.source is None else free.with_metadata(cached=False, coalesced=shared.source)

    def _cached(self, doc: Document, answer: Mapping[str, Any] | None = None) -> Document | None:
        answer = answer or self._cache.get(self._key(doc))
        if answer is None:
            return None
        return doc.with_metadata(
            **self._common(answer),
            tokens_in=0,
            tokens_out=0,
            requests=0,
            cost=0.0,
            cached=True,
            concurrency=0,
        )

    def _common(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "label": answer["label"],
            "score": answer.get("score"),
            "classifier": self.fingerprint(),
            "model": self.settings.model,
        }

    def _key(self, doc: Document) -> str:
        s = self.settings
        return cache_key(
            doc.sha256, PROMPT_VERSION, s.provider, s.model, self.labels.fingerprint(), str(s.max_tokens_in)
        )

    # -- override points --------------------------------------------------------------------------

    def prompt(self, doc: Document) -> list[Message]:
        """The messages sent for ``doc``: labels, descriptions and its text cut to the token budget."""
        text = doc.text if doc.text is not None else (doc.content or b"").decode("utf-8", "replace")
        return build_messages(self._specs, truncate(text, self.settings.max_tokens_in))

    def parse(self, doc: Document, reply: LLMReply) -> dict[str, Any]:
        """``{"label", "score"}`` from the reply; InvalidModelOutput unless it names an allowed label."""
        found = _OBJECT.search(reply.text)
        try:
            answer = json.loads(found.group(0) if found else reply.text)
            label = answer["label"]
        except (ValueError, KeyError, TypeError) as exc:
            cut = " (cut off at max_tokens_out)" if reply.finish_reason == "length" else ""
            raise InvalidModelOutput(
                f"reply is not a JSON object with a label{cut}: {reply.text[:80]!r}"
            ) from exc
        allowed = {name.casefold(): name for name in self.labels.names}
        if not isinstance(label, str) or label.strip().casefold() not in allowed:
            raise InvalidModelOutput(
                f"label {str(label)[:40]!r} is not one of the {len(allowed)} allowed labels"
            )
        return {"label": allowed[label.strip().casefold()], "score": _confidence(answer.get("confidence"))}

    def __repr__(self) -> str:
        s = self.settings
        where = f"model={s.model!r}, provider={s.provider!r}, labels={len(self.labels)}"
        return f"LLMClassifier({where}, limits={self.limits!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_client=None, _cache=NullCache())  # rebuilt per worker by setup()
        return state


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(1.0, max(0.0, float(value)))


_DEFAULT_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}  # read when set


def _api_key(settings: LLMSettings) -> str | None:
    name = settings.api_key_env
    if name is None:
        default = _DEFAULT_KEYS.get(settings.provider)
        return os.environ.get(default) if default else None
    key = os.environ.get(name)
    if not key:
        raise ConfigError(f"environment variable {name} (api_key_env) is not set")
    return key


_DEFAULT_URLS = {
    "openai": "https://api.openai.com/v1",
    "ollama": "http://127.0.0.1:11434",
    "anthropic": "https://api.anthropic.com",
}


def from_spec(arg: str | None, settings: Mapping[str, Any]) -> LLMClassifier:
    """``--classifier llm[:MODEL]`` configured from the ``classifier:``/``llm:`` settings."""
    if not settings.get("labels"):
        raise ConfigError("the llm classifier needs a labels file (labels: path/to/labels.yaml)")
    options = options_of(settings)
    if not (arg or options.model):
        raise ConfigError("the llm classifier needs a model (--classifier llm:MODEL or model: in the config)")
    labels = load_labels(settings["labels"])
    return LLMClassifier(labels, connection(options, arg), **wiring(options, settings, model=arg))


def connection(options: LLMOptions, model: str | None = None) -> LLMSettings:
    """How to reach the model: ``options`` with the provider's default URL and ``model`` if given."""
    return LLMSettings(
        base_url=options.base_url or _DEFAULT_URLS.get(options.provider, ""),
        model=str(model or options.model),
        provider=options.provider,
        api_key_env=options.api_key_env,
        timeout=options.timeout,
        timeout_floor=options.timeout_floor,
        timeout_multiplier=options.timeout_multiplier,
        hedge=options.hedge,
        response_format=options.response_format,
        max_tokens_in=options.max_tokens_in,
        max_tokens_out=options.max_tokens_out,
    )
