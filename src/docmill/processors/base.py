"""Processor ABCs: one abstract method, the rest derived.

To implement a processor, subclass :class:`Processor` and implement at least ``process``. Keep the
constructor cheap and picklable (store paths and settings); build heavy state (models, clients) in
``setup()``, which every worker calls once. Put everything that changes results into ``config()`` so
that ``fingerprint()`` changes with it and the journal re-processes old documents.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import importlib.util
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from docmill.document import Document
from docmill.errors import MissingDependencyError


class Processor(abc.ABC):
    """One step of a pipeline: ``Document`` in, ``Document`` out."""

    name: ClassVar[str] = "processor"
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()  # (module, extra) pairs

    def check_requirements(self) -> None:
        """Raise MissingDependencyError naming the extra to install, before any work starts."""
        for module, extra in self.requires:
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError(module, extra)

    def check(self) -> None:  # noqa: B027 - optional hook
        """Once per run, in the parent, before any worker starts: raise ConfigError (exit 2) if
        what this step needs is not usable (an endpoint that does not answer, a refused key), so a
        run that cannot succeed ends in seconds with nothing recorded."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Build heavy state; called once per worker before its first document."""

    @abc.abstractmethod
    def process(self, doc: Document) -> Document:
        """Return the document with this step's work done. Raise ProcessingError on failure."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release what ``setup`` built."""

    def config(self) -> Mapping[str, Any]:
        """Everything that changes this step's results (JSON-serialisable)."""
        return {}

    def fingerprint(self) -> str:
        """Stable hash of name, version and config."""
        blob = json.dumps([self.name, self.version, self.config()], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class AsyncProcessor(Processor):
    """A processor whose natural form is a coroutine (LLM calls).

    The asyncio-based strategies await ``aprocess`` directly; the others call ``process``, which
    runs ``aprocess`` on a per-worker event loop created in ``setup()``.
    """

    _loop: asyncio.AbstractEventLoop | None = None

    @abc.abstractmethod
    async def aprocess(self, doc: Document) -> Document:
        """The asynchronous form of ``process``."""

    def setup(self) -> None:
        self._loop = asyncio.new_event_loop()

    def process(self, doc: Document) -> Document:
        if self._loop is None:
            self.setup()
        assert self._loop is not None
        return self._loop.run_until_complete(self.aprocess(doc))

    def teardown(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_loop", None)  # loops never cross process boundaries
        return state
