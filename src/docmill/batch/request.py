"""The prepare step of a ``--batch`` run and the outcomes it records without asking the provider.

``BatchRequest`` replaces the LLM step in the workers: it returns the document's cached answer
(free, as online), or hands the parent the request body an online call would send (``BODY``, never
recorded). ``copy_outcome`` gives a copy of a document answered in a batch its answer and none of
its spend; ``failed_outcome`` sets a document aside with its last line's reason.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from docmill.document import Document, DocumentRef
from docmill.llm.providers import get_provider
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.processors.base import Processor
from docmill.processors.classify_llm import LLMClassifier

BODY = "_batch_body"  # the request line's body BatchRequest hands the parent (never recorded)


class BatchRequest(Processor):
    """The LLM step of the prepare job: the document's request line body, or its cached answer."""

    name = "batch-request"

    def __init__(self, classifier: LLMClassifier) -> None:
        self.classifier = copy.copy(classifier)  # its own client and cache: a worker thread's
        # teardown must not close the parent's (the copy starts without either: __getstate__)

    def setup(self) -> None:
        self.classifier.setup()  # the response cache

    def teardown(self) -> None:
        self.classifier.teardown()

    def process(self, doc: Document) -> Document:
        clf = self.classifier
        hit = clf._cached(doc)  # a copy answered before (any mode): free, as online
        if hit is not None:
            return hit
        messages = clf.prompt(doc)
        options = clf._call_options()
        provider = get_provider(clf.settings.provider, response_format=clf.settings.response_format)
        body = provider.body(messages, **options)
        return doc.with_metadata(**{BODY: body})


def copy_outcome(outcome: Outcome, answer: Mapping[str, Any], source: str | None) -> Outcome:
    """A copy of a document answered in a batch: its answer, none of its spend."""
    keep = ("label", "score", "classifier", "model")
    result = {
        **(outcome.result or {}), **{k: answer[k] for k in keep if k in answer}, "tokens_in": 0,
        "tokens_out": 0, "requests": 0, "cost": 0.0, "cached": False, "concurrency": 0, "coalesced": source,
    }  # fmt: skip
    return dataclasses.replace(outcome, result=result)


def failed_outcome(ref: DocumentRef, sha: str | None, result: Mapping[str, Any], reason: str) -> Outcome:
    error = ErrorInfo("BatchRequestFailed", reason, "", retryable=False)  # quarantined, with its reason
    return Outcome(ref, Status.FAILED, sha, dict(result), error, 1, Timings())
