"""A ``--batch`` run: documents classified through the provider's Batch API, at its price, crash-safely.

The runner's session with another ``_consume`` (executors still only schedule, the parent is still
the one writer, outcomes are recorded through the same journal API and stats)::

    pending refs (minus documents in batches not yet collected)
      → strategy.map_unordered(prepare job: load → extract → BatchRequest) → parent:
          failed / empty / cached answer → recorded as usual
          a copy of a document already packed or answered → waits for (takes) that answer, free
          otherwise → a request line (the online request body) packed into the current file
      → file full: stage (OpenAI: upload the file; Anthropic: a digest of its lines) →
        journal.batch_intent (input id + documents) → create → journal id
      → poll every ``batch_poll_seconds``; a batch ended → download output and error files →
        each answer validated as online ones are (``LLMClassifier.parse``: an allowed label),
        cached, costed at the batch price → recorded; then the batch is marked collected
      → lines that failed → online (``batch_retry: online``: the whole online pipeline, with its
        own retries) or one more batch (``batch``), then quarantined with the reason; lines a batch
        did not get to (expired, cancelled) → re-packed from the input file, as sent (a provider
        that keeps no input file, Anthropic: their documents are prepared again, then packed).

The provider's API is a ``BatchBackend`` (``docmill.batch.backend``: OpenAI's, Anthropic's). Crash
safety: a batch is in the journal before it is created at the provider, and its id right after. A
resumed run first looks at the batches not yet collected: one without an id is looked up at the
provider (``BatchBackend.find``: by its input file, or by its requests) and, if it is not there,
created (OpenAI: from the uploaded file) or, where the provider keeps no input (Anthropic), closed as
``unsent`` with its documents packed again; the others are polled and collected. Their documents are
never packed again. Answers are recorded before their batch is marked collected, so a run killed in
between collects it again instead of paying for it twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from docmill.batch.answers import batch_result
from docmill.batch.backend import BatchBackend, BatchView, LineResult
from docmill.batch.lines import Book, OpenBatch, Packer, failure
from docmill.batch.request import BODY, copy_outcome, failed_outcome
from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import DocumentRef
from docmill.errors import InvalidModelOutput, UpstreamError
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.journal.base import Journal
from docmill.journal.batch_store import TERMINAL, BatchJournal, BatchMember
from docmill.journal.faults import crash_point
from docmill.llm.providers import get_provider
from docmill.llm.settings import LLMOptions
from docmill.outcome import Outcome, Status, Timings
from docmill.processors.classify_llm import LLMClassifier
from docmill.progress import Reporter
from docmill.runner import _Session
from docmill.sources.base import Source

MAX_UNFINISHED = 3  # a document its batches never got to this often is sent online (or fails)
BATCH_TRIES = 2  # with batch_retry: batch, a failed line is sent in one more batch
UNSENT = "unsent"  # a recorded batch the provider never received, closed: its documents packed again


class BatchSession(_Session):
    """The runner's session, classifying through batches (see the module docstring)."""

    def __init__(
        self,
        source: Source,
        job: Job,
        journal: Journal,
        reporter: Reporter,
        clock: Clock,
        commit_every: int,
        commit_seconds: float,
        *,
        prepare: Job,
        options: LLMOptions,
        backend: BatchBackend,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(source, job, journal, reporter, clock, commit_every, commit_seconds)
        self.prepare, self.options, self.backend = prepare, options, backend
        steps = job.pipeline.steps
        assert isinstance(steps[-1], LLMClassifier)
        self.classifier: LLMClassifier = steps[-1]
        self.price = self.classifier.price.scaled(options.batch_price_factor)
        self.provider = get_provider(self.classifier.settings.provider)
        self.packer = Packer(options.batch_max_requests, options.batch_max_bytes, form=backend.line)
        self.open: dict[int, OpenBatch] = {}
        self.book = Book()
        self.online: list[DocumentRef] = []
        self.unprepared: list[DocumentRef] = []  # lines to send again whose bodies are not at hand
        self.committed = 0.0  # the most the open batches may cost
        self._polled = -math.inf
        self._waiting = 0
        self._crash = crash_point()
        self._wait = sleep or (self.stop.wait if clock is SYSTEM_CLOCK else clock.sleep)
        self._store = cast(BatchJournal, journal)

    # -- the run ----------------------------------------------------------------------------------

    def _consume(self, strategy: Executor, retry_failed: bool) -> None:
        self.job.setup()  # the parent's classifier: validation, cache, online retries
        try:
            scope = {"source": self.source.root, "fingerprint": self.fingerprint}
            self.book.lines = self._store.batch_line_counts(**scope)
            for record in self._store.batch_records(**scope, open_only=True):
                self._resume(OpenBatch.of(record))
            listed = self._counted(self.source)
            pending = self.journal.pending(listed, retry_failed=retry_failed, **scope)
            outcomes = strategy.map_unordered(self.prepare, self._until_stopped(self._not_in_flight(pending)))
            try:
                for outcome in outcomes:
                    self._prepared(outcome)
                    self._poll(force=False)
            finally:
                close = getattr(outcomes, "close", None)
                if close is not None:
                    close()
            self._drain()
        finally:
            self.job.teardown()

    def _not_in_flight(self, refs: Iterable[DocumentRef]) -> Iterator[DocumentRef]:
        """Refs of no batch of this run: a document collected after ``pending`` looked it up (a batch
        resumed and collected while the listing goes on) is not packed again."""
        return (ref for ref in refs if ref.id not in self.book.in_flight)

    def _drain(self) -> None:
        """Submit what is packed, then poll and collect until no batch is open (or the run stops)."""
        self._submit()
        self._crash.reached("all-submitted")
        while self.open or self.online or self.unprepared or len(self.packer):
            if self.stop.reason not in (None, "max-cost"):
                return  # interrupted: the next run collects what was submitted
            self._retry_online()
            self._prepare_again()
            self._submit()
            self._poll(force=True)
            if self.open:
                if len(self.open) != self._waiting:  # said once per change, not per look
                    self._waiting = len(self.open)
                    self.reporter.message(f"waiting for {len(self.open)} batch(es) at the provider")
                self._wait(self.options.batch_poll_seconds)

    def snapshot(self) -> dict[str, Any]:
        data = super().snapshot()
        data["batches"] = {"open": len(self.open), "committed": round(self.committed, 6)}
        return data

    # -- documents in -----------------------------------------------------------------------------

    def _prepared(self, outcome: Outcome) -> None:
        result = dict(outcome.result or {})
        body = result.pop(BODY, None)
        if body is None or outcome.status is not Status.OK:
            self._add(outcome)  # failed, empty, or answered from the cache
            return
        outcome = dataclasses.replace(outcome, result=result)
        sha, path, book = outcome.sha256, outcome.ref.id, self.book
        if sha and sha in book.answered:
            self._add(copy_outcome(outcome, book.answered[sha], book.leaders.get(sha)))
            return
        if sha and book.leaders.get(sha, path) != path:
            book.followers.setdefault(sha, []).append(outcome)
            return
        lines = book.lines.get(path, {})
        failed, unfinished = lines.get("failed", 0), lines.get("unfinished", 0)
        if failed and self.options.batch_retry == "online" or unfinished >= MAX_UNFINISHED:
            self.online.append(outcome.ref)
        elif failed >= BATCH_TRIES:
            self._add(failed_outcome(outcome.ref, sha, result, f"the batch line failed {failed} times"))
        else:
            self._pack(BatchMember("", outcome.ref, sha, result), body)

    def _pack(self, member: BatchMember, body: Any) -> None:
        if member.sha256:
            self.book.leaders[member.sha256] = member.ref.id
        line = self.packer.line(body)
        if not self.packer.fits(line):
            self._submit()
            line = self.packer.line(body)
        custom_id = f"doc-{len(self.packer)}"
        tokens = self.backend.prompt_tokens(body)
        self.packer.add(dataclasses.replace(member, custom_id=custom_id), line, tokens)
        if self.packer.full:
            self._submit()

    # -- batches out ------------------------------------------------------------------------------

    def _submit(self) -> None:
        """Stage the packed file (upload it, or digest it), record it, create the batch, record its
        id (in that order)."""
        if not len(self.packer):
            return
        content, members, tokens = self.packer.take()
        if self.stop.is_set():
            return  # stopping: these documents are left for the next run, nothing was paid
        most = self.price.cost(tokens, self.classifier.settings.max_tokens_out * len(members))
        if self.max_cost is not None and self._spent + self.committed + most > self.max_cost:
            if self.stop.set("max-cost"):
                self.reporter.message(f"spending limit ${self.max_cost:g} reached: no more batches submitted")
            return
        file_id = self.backend.stage(content)
        info = {"requests": len(members), "bytes": len(content), "estimate": most}
        batch_id = self._store.batch_intent(
            run_id=self.run_id, source=self.source.root, fingerprint=self.fingerprint,
            input_file_id=file_id, members=members, info=info,
        )  # fmt: skip
        self._crash.reached("before-submit")
        opened = OpenBatch(batch_id, file_id, members, info, created=self.clock.wall())
        self._track(opened)
        self._create(opened, content)

    def _resume(self, opened: OpenBatch) -> None:
        """A batch an earlier run recorded and did not collect: adopt it, and submit it if it never was
        (or, where the provider keeps no input, close it and pack its documents again)."""
        opened.members = self._store.batch_members(opened.id)
        if opened.provider_id is not None:
            self._track(opened)
            return
        known = {r.provider_id for r in self._store.batch_records() if r.provider_id}
        found = self.backend.find(  # created before the run could note its id?
            opened.input_file_id, requests=len(opened.members), since=opened.created, known=known
        )
        if found is None and not self.backend.keeps_input:
            self._unsent(opened)
            return
        self._track(opened)
        if found is None:
            self._create(opened, None)
        else:
            self._created(opened, found, "found at the provider")

    def _unsent(self, opened: OpenBatch) -> None:
        """A batch recorded, never created, whose lines cannot be sent from the record: closed, its
        documents left pending for this run to pack again (nothing was paid for them)."""
        self._store.batch_collected(opened.id, state=UNSENT, info=opened.info, lines={})
        self.reporter.message(
            f"batch {opened.id} never reached the provider: "
            f"its {len(opened.members)} documents are packed again"
        )

    def _track(self, opened: OpenBatch) -> None:
        self.open[opened.id] = opened
        self.committed += float(opened.info.get("estimate") or 0.0)
        for member in opened.members:
            self.book.in_flight.add(member.ref.id)
            if member.sha256:
                self.book.leaders.setdefault(member.sha256, member.ref.id)

    def _create(self, opened: OpenBatch, content: bytes | None) -> None:
        metadata = {"docmill_batch": str(opened.id)}
        batch = self.backend.create(opened.input_file_id, content, metadata=metadata)
        self._crash.reached("after-submit")
        self._created(opened, batch, "submitted")

    def _created(self, opened: OpenBatch, batch: BatchView, how: str) -> None:
        opened.provider_id, opened.state = batch.id, batch.status
        self._store.batch_update(
            opened.id, state=opened.state, info=opened.info, provider_id=opened.provider_id
        )
        self.reporter.message(
            f"batch {opened.id} {how}: {len(opened.members)} requests ({opened.provider_id})"
        )

    def _poll(self, *, force: bool) -> None:
        now = self.clock.monotonic()
        if not force and now - self._polled < self.options.batch_poll_seconds:
            return
        self._polled = now
        for opened in list(self.open.values()):
            if opened.provider_id is None:
                continue
            batch = self.backend.retrieve(opened.provider_id)
            status = batch.status
            if status != opened.state:
                opened.state = status
                opened.info["request_counts"] = batch.counts
                self._store.batch_update(opened.id, state=status, info=opened.info)
            if status in TERMINAL:
                self._collect(opened, batch)

    # -- answers in -------------------------------------------------------------------------------

    def _collect(self, opened: OpenBatch, batch: BatchView) -> None:
        """Record the answers of an ended batch, then mark it collected; failed lines to their retry."""
        results = self.backend.results(batch, opened.input_file_id)
        refs = [m.ref for m in opened.members]
        left = self.journal.pending(refs, source=self.source.root, fingerprint=self.fingerprint)
        recorded = {r.id for r in refs} - {r.id for r in left}  # a collection replayed after a kill
        lines: dict[str, tuple[str, str | None]] = {}
        again: list[tuple[BatchMember, str, str]] = []
        money = {"cost": 0.0, "saved": 0.0, "ok": 0}
        for member in opened.members:
            found = results.get(member.custom_id)
            done = member.ref.id in recorded
            fate, reason = ("ok", None) if done else self._line(member, found, opened, money)
            lines[member.custom_id] = (fate, reason)
            if fate != "ok":
                again.append((member, fate, reason or ""))
        with self._lock:
            self._flush()  # the answers are in the journal before the batch is marked collected
        info = {**opened.info, **money, "request_counts": batch.counts, "failed": len(again)}
        self._store.batch_collected(opened.id, state=opened.state, info=info, lines=lines)
        del self.open[opened.id]
        self.committed -= float(opened.info.get("estimate") or 0.0)
        self.reporter.message(
            f"batch {opened.id} {opened.state}: {money['ok']} answered, {len(again)} to retry "
            f"(saved ${money['saved']:.4f})"
        )
        self._again(opened, again)

    def _line(
        self, member: BatchMember, found: LineResult | None, opened: OpenBatch, money: dict[str, Any]
    ) -> tuple[str, str | None]:
        """One member's fate in an ended batch: ``ok`` (answered and recorded), or why not."""
        if found is None:
            return failure(None, opened.state)
        if found.body is None:
            return found.fate, found.reason
        try:
            self._answered(member, found.body, opened, money)
        except (UpstreamError, InvalidModelOutput) as exc:
            return "failed", f"{type(exc).__name__}: {exc}"[:300]
        return "ok", None

    def _answered(self, member: BatchMember, body: Any, opened: OpenBatch, money: dict[str, Any]) -> None:
        """One output line: validated exactly as an online reply, cached, costed at the batch price."""
        args = (self.classifier, self.provider, self.price, member, body, opened.provider_id)
        result, cost, saved = batch_result(*args)
        money.update(cost=money["cost"] + cost, saved=money["saved"] + saved, ok=money["ok"] + 1)
        now = self.clock.wall()
        timings = Timings(opened.created or now, now, "batch")
        self._add(Outcome(member.ref, Status.OK, member.sha256, result, None, 1, timings))
        if member.sha256:
            self.book.answered[member.sha256] = result
            for copy in self.book.followers.pop(member.sha256, []):
                self._add(copy_outcome(copy, result, member.ref.id))

    def _again(self, opened: OpenBatch, again: list[tuple[BatchMember, str, str]]) -> None:
        """Lines without an answer: re-packed (unfinished; failed with ``batch_retry: batch``), sent
        online (failed, ``batch_retry: online``), or failed for good once their tries are spent."""
        if not again:
            return
        sent: dict[str, Any] | None = None
        for member, fate, reason in again:
            counts = self.book.lines.setdefault(member.ref.id, {})
            counts[fate] = counts.get(fate, 0) + 1
            copies = self.book.followers.pop(member.sha256, []) if member.sha256 else []
            if member.sha256 and self.book.leaders.get(member.sha256) == member.ref.id:
                del self.book.leaders[member.sha256]
            online = self.options.batch_retry == "online" and fate == "failed"
            if online or counts.get("unfinished", 0) >= MAX_UNFINISHED:
                self.online.extend([member.ref, *(c.ref for c in copies)])
                continue
            if counts.get("failed", 0) >= BATCH_TRIES:
                for ref, sha, result in [
                    (member.ref, member.sha256, member.result),
                    *((c.ref, c.sha256, c.result or {}) for c in copies),
                ]:
                    self._add(failed_outcome(ref, sha, result, f"{reason} ({counts['failed']} tries)"))
                continue
            if sent is None:
                sent = self.backend.sent(opened.input_file_id) if self.backend.keeps_input else {}
            if sent.get(member.custom_id) is None:  # not at hand: prepared again from the document
                self.unprepared.extend([member.ref, *(c.ref for c in copies)])
                continue
            if member.sha256:
                self.book.followers.setdefault(member.sha256, []).extend(copies)
            self._pack(
                dataclasses.replace(member, custom_id="", state="packed", error=None), sent[member.custom_id]
            )

    def _retry_online(self) -> None:
        """Documents whose batch line failed: the whole online pipeline, its own retries included."""
        refs, self.online = self.online, []
        if not refs or self.stop.is_set():
            return
        self.reporter.message(f"retrying {len(refs)} document(s) online")
        with ThreadPoolExecutor(max_workers=min(8, len(refs)), thread_name_prefix="docmill-online") as pool:
            for outcome in pool.map(self.job.run, refs):
                self._add(outcome)

    def _prepare_again(self) -> None:
        """Documents to send again whose request lines are not at hand: extracted and prepared again
        (the prepare job, in this process), then packed as any other."""
        refs, self.unprepared = self.unprepared, []
        if not refs or self.stop.is_set():
            return
        self.reporter.message(f"preparing {len(refs)} document(s) again for a new batch")
        self.prepare.setup()
        try:
            workers = min(8, len(refs))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docmill-prepare") as pool:
                for outcome in pool.map(self.prepare.run, refs):
                    self._prepared(outcome)
        finally:
            self.prepare.teardown()
