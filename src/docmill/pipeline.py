"""``Pipeline``: a composite processor whose fingerprint keys the journal."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

from docmill.document import Document
from docmill.processors.base import AsyncProcessor, Processor


class Pipeline(Processor):
    """Steps applied in order. A document found empty stops the fold (it ends ``empty``)."""

    name = "pipeline"

    def __init__(self, *steps: Processor) -> None:
        self.steps: tuple[Processor, ...] = steps

    def check_requirements(self) -> None:
        for step in self.steps:
            step.check_requirements()

    def check(self) -> None:
        for step in self.steps:
            step.check()

    def setup(self) -> None:
        for step in self.steps:
            step.setup()

    def teardown(self) -> None:
        for step in reversed(self.steps):
            step.teardown()

    def process(self, doc: Document) -> Document:
        for step in self.steps:
            if doc.is_empty:
                break
            doc = step.process(doc)
        return doc

    async def aprocess(self, doc: Document) -> Document:
        """Await async steps; run sync steps in a thread so the event loop keeps serving."""
        for step in self.steps:
            if doc.is_empty:
                break
            if isinstance(step, AsyncProcessor):
                doc = await step.aprocess(doc)
            else:
                doc = await asyncio.to_thread(step.process, doc)
        return doc

    @property
    def is_async(self) -> bool:
        """True when some step is an AsyncProcessor (an I/O-bound stage such as an LLM call)."""
        return any(isinstance(step, AsyncProcessor) for step in self.steps)

    def split(self) -> tuple[Pipeline, Pipeline]:
        """(leading sync steps, the rest): the CPU stage and the I/O stage of ``staged``."""
        cut = next((i for i, s in enumerate(self.steps) if isinstance(s, AsyncProcessor)), len(self.steps))
        return Pipeline(*self.steps[:cut]), Pipeline(*self.steps[cut:])

    def config(self) -> Mapping[str, Any]:
        return {"steps": [step.fingerprint() for step in self.steps]}

    def fingerprint(self) -> str:
        blob = "|".join(step.fingerprint() for step in self.steps)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(type(s).__name__ for s in self.steps)})"
