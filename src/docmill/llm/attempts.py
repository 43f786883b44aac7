"""One retry owner for a document's LLM calls: every attempt counted, one decision after a failure.

``LLMClassifier`` owns every retry of a document's call: 429s, 5xx, timeouts and dropped
connections by its ``RetryPolicy``, replies naming no allowed label by ``invalid_retries``. When
it gives up, the error is marked ``exhausted`` and ``Job`` does not retry it again, so a
document's attempts are never multiplied by nested policies.

Every HTTP attempt passes through ``Tally``: a reply adds its real usage; a failed attempt adds one
request and, when the provider may have done work for it (5xx, timeouts, dropped connections,
garbled bodies), the prompt's estimated tokens, because a call cut by a timeout can be billed and
a spending limit must not under-count. A 429, a refused connection or a refused key did no work
and adds no tokens. The loser of a hedged call (``docmill.llm.hedge``), cut off once the other
answered, adds one request and the prompt's tokens; a hedge is not a retry (it spends none of the
policy's attempts unless it fails). Outages (nothing answers, the key is refused) feed the
``Breaker``: they are retried until it opens or the document's budget is spent, and then the run
stops (``RunStoppedError``) instead of failing the document.
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.errors import (
    AuthRefusedError,
    InvalidModelOutput,
    ProcessingError,
    RateLimitedError,
    RetryableError,
    RunStoppedError,
)
from docmill.llm.breaker import Breaker, outage_kind
from docmill.llm.client import LLMReply
from docmill.llm.pricing import Price
from docmill.llm.prompt import Message, count_prompt_tokens
from docmill.retry import RetryPolicy

RETRIED = (RetryableError, InvalidModelOutput, AuthRefusedError)  # what after_failure decides on


@dataclass(slots=True)
class Tally:
    """What one document's attempts cost so far."""

    prompt_tokens: int = 0  # the estimate for one attempt, charged to failed ones that did work
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    failures: int = 0  # retryable failures (429, 5xx, timeouts) and outages
    invalid: int = 0  # replies that named no allowed label
    concurrency: int = 0

    @classmethod
    def of(cls, messages: list[Message]) -> Tally:
        return cls(prompt_tokens=count_prompt_tokens(messages))

    def add(self, reply: LLMReply) -> None:
        """A reply came back: its real usage."""
        self.requests += 1
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out
        self.concurrency = reply.concurrency

    def failed(self, error: BaseException) -> None:
        """An attempt failed without a usable reply."""
        self.requests += 1
        self.failures += 1
        if not isinstance(error, RateLimitedError) and outage_kind(error) is None:
            self.tokens_in += self.prompt_tokens

    def cancelled(self) -> None:
        """A hedged call's loser was cut off: the provider saw it and may bill its prompt."""
        self.requests += 1
        self.tokens_in += self.prompt_tokens

    def usage(self) -> dict[str, int]:
        return {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "requests": self.requests}

    def bill(self, error: ProcessingError, price: Price) -> None:
        """Attach what the document's calls cost to ``error``: a failed document's spend counts too."""
        error.usage = {"cost": price.cost(self.tokens_in, self.tokens_out), **self.usage()}


def after_failure(
    tally: Tally, error: Exception, *, policy: RetryPolicy, invalid_retries: int, breaker: Breaker
) -> float:
    """Seconds to wait before the next attempt; raises ``error`` (exhausted) or RunStoppedError."""
    if isinstance(error, InvalidModelOutput):  # the reply was counted by Tally.add
        tally.invalid += 1
        return 0.0 if tally.invalid <= invalid_retries else _give_up(error)
    tally.failed(error)
    kind = outage_kind(error)
    if kind is None:
        breaker.answered()
        wait = policy.delay(tally.failures, error)
        return _give_up(error) if wait is None else wait
    breaker.failed(kind, str(error))
    reason = breaker.open()
    if reason is None and tally.failures < policy.max_attempts:
        return policy.backoff(tally.failures)
    raise RunStoppedError(reason or f"{kind} ({tally.failures} calls in a row): {error}") from error


def _give_up(error: Exception) -> float:
    if isinstance(error, ProcessingError):
        error.exhausted = True
    raise error
