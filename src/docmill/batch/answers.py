"""One output line of a batch turned into a document's result: validated exactly as an online
reply (``LLMClassifier.parse``: an allowed label, else ``InvalidModelOutput``), cached, and costed
at the batch price, with what the same tokens would have cost online beside it."""

from __future__ import annotations

from typing import Any

from docmill.document import Document
from docmill.journal.batch_store import BatchMember
from docmill.llm.attempts import Tally
from docmill.llm.client import LLMReply
from docmill.llm.pricing import Price
from docmill.llm.providers import Provider
from docmill.processors.classify_llm import LLMClassifier


def batch_result(
    classifier: LLMClassifier,
    provider: Provider,
    price: Price,
    member: BatchMember,
    body: Any,
    batch: str | None,
) -> tuple[dict[str, Any], float, float]:
    """(the result to record, its cost at ``price``, the money saved against the online price)."""
    completion = provider.completion(body)
    reply = LLMReply(
        completion.text, completion.tokens_in, completion.tokens_out, completion.finish_reason, 0.0, 0
    )
    doc = Document(member.ref, member.sha256 or "", metadata=member.result)
    answer = classifier.parse(doc, reply)
    if member.sha256:
        classifier._cache.put(classifier._key(doc), answer)
    tally = Tally()
    tally.add(reply)
    cost = price.cost(tally.tokens_in, tally.tokens_out)
    saved = classifier.price.cost(tally.tokens_in, tally.tokens_out) - cost
    result = {
        **member.result, **classifier._common(answer), **tally.usage(), "cost": cost, "cached": False,
        "concurrency": 0, "batch": batch, "saved": saved,
    }  # fmt: skip
    return result, cost, saved
