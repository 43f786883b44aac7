"""LLM classification at the provider's rate limit: docmill vs a naive thread pool, same emulator.

    python benchmarks/bench_llm.py                 # three variants side by side, 2,000 documents each
    python benchmarks/bench_llm.py --docs 300      # a quicker look
    python benchmarks/bench_llm.py --limiter       # limiter operations per second (in-memory, file, mp.Lock)
    python benchmarks/bench_llm.py --faults --docs 300   # clean vs 5 % 500 + 5 % 503 + 2 % hangs: wall ratio
    python benchmarks/bench_llm.py --learned       # limits learned vs configured: 600 docs at 300 RPM

Each variant gets its own emulator (``--rpm``, 600 by default; 200,000 TPM; lognormal latency with a
1 s median) in its own process, and the variants run at the same time (they are I/O-bound):

* ``docmill``        LLMClassifier (shared RPM + TPM buckets, AIMD concurrency) on the asyncio strategy
* ``docmill+faults`` the same with 10 % of requests answered 500 and 2 % hanging (10 s client timeout)
* ``naive``          ThreadPoolExecutor(20), one httpx call per document, retry on 429/5xx with
                     exponential sleeps, no shared limiter: the script users write first
* ``docmill+tail``   (``--faults``) 5 % 500 + 5 % 503 + 2 % hangs with the default 60 s timeout, as a
                     user would leave it: the tail-aware timeout and hedging at the tail must cut
                     the hangs, so the wall time stays near the clean ``docmill`` run beside it
                     (goal: 1.15 x); ``tail-p95only`` hedges retries like first calls (past p95)
                     instead of pairing them; ``tail-nohedge`` does not hedge. Each row also says
                     where the time went: ``pace_s`` (the limiter's time for that many requests),
                     the last arrival, the tail after it, twins sent/won, requests per document;
                     ``floor`` is the clean run's time plus the pace of the extra requests.
                     ``--seed`` changes the emulators' draws (which requests fail)
* ``learned``        (``--learned``) no ``rpm``/``tpm`` configured, as ``docmill run`` without
                     ``--rpm``: one probe request, then the limits the emulator's ``x-ratelimit-*``
                     headers announce; beside ``docmill`` told the limits, at 300 RPM on 600 documents
                     (the issue 14 case, ~2 minutes each)
* ``noheaders``      the same against an emulator that sends no rate-limit headers at all: slow
                     start, then the pace the first 429 taught
* ``quantized``      ``learned`` against an emulator that also enforces RPM/60 per second
                     (``docmill emulate --quantize``), as large providers do

Documents are the man pages of the shared test data (txt and md), cycled to reach ``--docs``.
The ceiling is the limit that binds: min(RPM, 200,000 / tokens per call). Figures: requests/min
the provider accepted over the whole run (``ceiling_share`` = that / the ceiling; the last
replies' latency is included), the request rate between the first and the last arrival
(``paced_share``: how close the pacing runs to the ceiling, 429s included), documents/min,
429s, failed documents, the busiest 60 s window the provider saw, and wall time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.executors import get_executor
from docmill.job import Job
from docmill.limits.adaptive import AIMD
from docmill.limits.provider import DEFAULT_MARGIN, ProviderLimits
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.prompt import LabelSpec, build_messages, truncate
from docmill.model.labels import LabelSet
from docmill.outcome import Status
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.retry import RetryPolicy

DATA = Path(os.environ.get("DOCMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RPM, TPM = 600, 200_000
LABELS = LabelSet(
    names=("user-command", "library-function", "system-call", "overview", "admin-command", "file-format"),
    descriptions={
        "user-command": "A program users run from a shell, with its options.",
        "library-function": "A function of a C library, Perl module or OpenSSL.",
        "system-call": "A Linux kernel entry point; errors in errno.",
        "overview": "An overview of a topic, convention or protocol.",
        "admin-command": "A command for system administrators, daemons.",
        "file-format": "The format of a configuration or data file.",
    },
    keywords={
        "user-command": ("options", "usage"),
        "library-function": ("include", "library", "returns"),
        "system-call": ("syscall", "errno", "kernel"),
        "overview": ("overview", "conventions"),
        "admin-command": ("daemon", "root", "service"),
        "file-format": ("file", "format", "configuration"),
    },
)
# The prompt's instructions and six labels take ~250 tokens; a 24-token slice of each page keeps a
# call under ~300 tokens, so 200,000 TPM allows ~660 calls/min and the 600 RPM limit is the one
# that binds (--max-tokens-in 80 makes the token limit bind instead: ~350 tokens a call).
MAX_TOKENS_OUT = 40


class Pages:
    """The man pages as an in-memory Source, cycled to ``n`` distinct documents."""

    root = "manpages"

    def __init__(self, n: int) -> None:
        files = sorted(p for p in (DATA / "manpages").rglob("*") if p.suffix in (".txt", ".md"))
        if not files:
            sys.exit(f"no man pages under {DATA}/manpages (set DOCMILL_SHARED_DATA)")
        self.texts = [p.read_text(errors="replace") for p in files]
        self.n = n

    def __iter__(self) -> Any:
        return (DocumentRef(f"doc-{i:05d}", f"memory:{i}") for i in range(self.n))

    def count(self) -> int:
        return self.n

    def load(self, ref: DocumentRef) -> Document:
        i = int(ref.id.split("-")[1])
        text = f"[{i}] {self.texts[i % len(self.texts)]}"
        return Document(ref, sha256_bytes(text.encode()), text=text)


FAULTS = {
    "docmill+faults": {"fail_500": 0.10, "hang": 0.02},
    "docmill+tail": {"fail_500": 0.05, "fail_503": 0.05, "hang": 0.02},
    "tail-nohedge": {"fail_500": 0.05, "fail_503": 0.05, "hang": 0.02},
    "tail-p95only": {"fail_500": 0.05, "fail_503": 0.05, "hang": 0.02},
}
# the default: only the tail-aware limit (and hedging at the tail) cuts a hang
TIMEOUTS = {"docmill+tail": 60.0, "tail-nohedge": 60.0, "tail-p95only": 60.0}
HEDGE = {"tail-nohedge": 0.0}  # the quantile past which a call is hedged (0: never); else the default
UNPAIRED = ("tail-p95only",)  # retries hedged like first calls (past p95), not paired at once


LEARNED = ("learned", "noheaders", "quantized")  # no limits configured: learned from the replies


def emulator_config(name: str, rpm: int = RPM, seed: int = 1) -> EmulatorConfig:
    extra: dict[str, Any] = dict(FAULTS.get(name, {}))
    if name == "noheaders":
        extra["limit_headers"] = "none"
    if name == "quantized":
        extra["quantize"] = True
    return EmulatorConfig(rpm=rpm, tpm=TPM, latency_median=1.0, latency_sigma=0.3, seed=seed, **extra)


class _Counted(LLMClassifier):
    """The classifier with its client's hedging figures kept past teardown (``hedge`` set per variant)."""

    hedge: float | None = None
    pair_retries: bool = True
    hedges: tuple[int, int] = (0, 0)

    def setup(self) -> None:
        super().setup()
        if self._client is not None:
            hedger = self._client.hedger
            hedger.quantile = hedger.quantile if self.hedge is None else self.hedge
            hedger.pair_retries = self.pair_retries

    def teardown(self) -> None:
        if self._client is not None:
            self.hedges = (self._client.hedger.sent, self._client.hedger.won)
        super().teardown()


def run_docmill(server: EmulatorServer, n: int, name: str, max_in: int, rpm: int = RPM) -> dict[str, Any]:
    settings = LLMSettings(
        base_url=f"{server.url}/v1",
        model="emulated-small",
        timeout=TIMEOUTS.get(name, 10.0),
        max_tokens_in=max_in,
        max_tokens_out=MAX_TOKENS_OUT,
    )
    limits = ProviderLimits.from_rates(None, None) if name in LEARNED else ProviderLimits.from_rates(rpm, TPM)
    retry = RetryPolicy(max_attempts=8, initial=0.5, maximum=10.0)
    clf = _Counted(LABELS, settings, limits=limits, retry=retry, concurrency=AIMD(limit=16, maximum=64))
    clf.hedge, clf.pair_retries = HEDGE.get(name), name not in UNPAIRED
    job = Job(Pages(n), clf)
    statuses: dict[str, int] = {}
    per_doc: dict[int, int] = {}  # HTTP requests a document took → documents
    with get_executor("asyncio", workers=64) as executor:
        for outcome in executor.map_unordered(job, Pages(n)):
            statuses[outcome.status.value] = statuses.get(outcome.status.value, 0) + 1
            requests = int((outcome.result or {}).get("requests", 0))
            per_doc[requests] = per_doc.get(requests, 0) + 1
    failed = n - statuses.get(Status.OK.value, 0)
    return {
        "statuses": statuses,
        "failed": failed,
        "hedges": clf.hedges,
        "per_doc": dict(sorted(per_doc.items())),
    }


def run_naive(server: EmulatorServer, n: int, max_in: int) -> dict[str, Any]:
    """What a first script looks like: a pool of 20 threads, retry with sleeps, no shared pacing."""
    pages = Pages(n)
    specs = [LabelSpec(name, LABELS.descriptions[name], LABELS.keywords[name]) for name in LABELS.names]
    client = httpx.Client(timeout=60.0)

    def classify(ref: DocumentRef) -> bool:
        messages = build_messages(specs, truncate(pages.load(ref).text or "", max_in))
        body = {"model": "emulated-small", "messages": messages, "max_tokens": MAX_TOKENS_OUT}
        body["response_format"] = {"type": "json_object"}
        for attempt in range(5):
            try:
                reply = client.post(f"{server.url}/v1/chat/completions", json=body)
                if reply.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(2**attempt)
        return False

    with ThreadPoolExecutor(20) as pool:
        ok = sum(pool.map(classify, list(pages)))
    client.close()
    return {"statuses": {"ok": ok, "failed": n - ok}, "failed": n - ok}


def pace(requests: int, rpm: int) -> float:
    """Seconds the limiter needs to admit ``requests`` at ``rpm`` (``within``: the burst, then the rate)."""
    burst = max(1, rpm // 100)
    return max(0, requests - burst) / ((rpm - 1 - burst) / (60 + DEFAULT_MARGIN))


def variant(
    name: str, n: int, max_in: int, rpm: int, seed: int, out: multiprocessing.Queue[dict[str, Any]]
) -> None:
    with EmulatorServer(emulator_config(name, rpm, seed)) as server:
        started = time.monotonic()
        if name == "naive":
            result = run_naive(server, n, max_in)
        else:
            result = run_docmill(server, n, name, max_in, rpm)
        elapsed = time.monotonic() - started
        stats = server.stats(arrivals=True)
    accepted = stats["requests"] - stats["rate_limited"]
    arrivals = stats["arrivals"]
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    tokens_per_call = (stats["tokens_in"] + stats["tokens_out"]) / max(1, stats["ok"])
    out.put(
        {
            "variant": name,
            "docs": n,
            "seconds": round(elapsed, 1),
            "requests": stats["requests"],
            "accepted_per_min": round(accepted / elapsed * 60, 1),
            "ceiling_share": round(accepted / elapsed * 60 / min(rpm, TPM / tokens_per_call), 3),
            "paced_share": round((stats["requests"] - 1) / span * 60 / min(rpm, TPM / tokens_per_call), 3),
            "docs_ok_per_min": round((n - result["failed"]) / elapsed * 60, 1),
            "rate_limited": stats["rate_limited"],
            "failed_docs": result["failed"],
            "busiest_60s": stats["max_requests_per_window"],
            "faults": {k: v for k, v in stats["faults"].items() if v},
            "tokens": stats["tokens_in"] + stats["tokens_out"],
            "ceiling_per_min": round(min(rpm, TPM / tokens_per_call), 1),
            "first_gap": round(arrivals[1] - arrivals[0], 3) if len(arrivals) > 1 else None,
            "pace_s": round(pace(stats["requests"], rpm), 1),  # the limiter's minimum for these requests
            "last_arrival": round(arrivals[-1], 1) if arrivals else None,
            "tail_s": round(elapsed - arrivals[-1], 1) if arrivals else None,  # after the last request
            "last_arrivals": [round(t, 2) for t in arrivals[-12:]],
            "hedges_sent_won": result.get("hedges"),
            "requests_per_doc": result.get("per_doc"),
        }
    )


def bench_variants(n: int, names: list[str], max_in: int, rpm: int = RPM, seed: int = 1) -> None:
    out: multiprocessing.Queue[dict[str, Any]] = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=variant, args=(name, n, max_in, rpm, seed, out)) for name in names
    ]
    for proc in procs:
        proc.start()
    rows = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    print(
        f"{n} documents per variant; provider: {rpm} RPM, {TPM} TPM, 1.0 s median latency; run side by side"
    )
    head = ["variant", "seconds", "ceiling_per_min", "accepted_per_min", "ceiling_share", "paced_share"]
    head += ["docs_ok_per_min", "rate_limited", "failed_docs", "busiest_60s", "requests"]
    head += ["pace_s", "last_arrival", "tail_s", "hedges_sent_won"]
    print(" | ".join(head))
    for row in sorted(rows, key=lambda r: names.index(r["variant"])):
        print(" | ".join(str(row[h]) for h in head))
    for row in rows:
        print(json.dumps(row))
    seconds = {row["variant"]: row["seconds"] for row in rows}
    for name in names:
        if name != "docmill" and "docmill" in seconds:
            print(f"wall time {name} / docmill: {seconds[name] / seconds['docmill']:.2f}")
    _floors(rows)


def _floors(rows: list[dict[str, Any]]) -> None:
    """The least each run could take beside the clean one: the clean run's time plus the limiter's
    pace for the requests it made beyond the clean run's (each one counts against the RPM)."""
    clean = next((row for row in rows if row["variant"] == "docmill"), None)
    if clean is None:
        return
    for row in rows:
        if row is not clean:
            floor = (clean["seconds"] + row["pace_s"] - clean["pace_s"]) / clean["seconds"]
            print(f"floor {row['variant']} / docmill with {row['requests']} requests: {floor:.3f}")


def _ops(limiter: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        limiter.acquire(1.0)
    return n / (time.perf_counter() - started)


class _MpBucket:
    """The alternative considered: a bucket in a multiprocessing RawArray behind a multiprocessing Lock."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = multiprocessing.Lock()
        self.state = multiprocessing.RawArray("d", [rate, time.monotonic()])

    def acquire(self, cost: float) -> None:
        with self.lock:
            now = time.monotonic()
            level = min(self.rate, self.state[0] + (now - self.state[1]) * self.rate) - cost
            self.state[0], self.state[1] = level, now


def _ops_in(limiter: Any, n: int, out: multiprocessing.Queue[float]) -> None:
    out.put(_ops(limiter, n))


def bench_limiter(n: int = 100_000) -> None:
    from docmill.limits.shared import SharedTokenBucket
    from docmill.limits.token_bucket import TokenBucket

    rate = 1e12  # never waits: this measures the bookkeeping alone
    kinds = {
        "TokenBucket (threads)": TokenBucket(rate, 1.0),
        "SharedTokenBucket (file + flock)": SharedTokenBucket(rate, 1.0),
    }
    kinds["mp.Lock + RawArray"] = _MpBucket(rate)  # type: ignore[assignment]
    for name, limiter in kinds.items():
        single = _ops(limiter, n)
        out: multiprocessing.Queue[float] = multiprocessing.Queue()
        procs = [
            multiprocessing.get_context("fork").Process(target=_ops_in, args=(limiter, n, out))
            for _ in range(2)
        ]
        for proc in procs:
            proc.start()
        both = out.get() + out.get()
        for proc in procs:
            proc.join()
        print(f"{name:34s} 1 process: {single:>10,.0f} ops/s   2 processes: {both:>10,.0f} ops/s in all")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--docs", type=int, default=None, help="documents per variant (2,000; --learned: 600)"
    )
    parser.add_argument(
        "--rpm", type=int, default=None, help="the emulator's request limit (600; --learned: 300)"
    )
    parser.add_argument("--max-tokens-in", type=int, default=24, help="token budget of each page's text")
    parser.add_argument("--variants", default="docmill,docmill+faults,naive")
    parser.add_argument(
        "--limiter", action="store_true", help="measure limiter operations per second instead"
    )
    parser.add_argument("--faults", action="store_true", help="clean vs faults + hangs (default timeout)")
    parser.add_argument("--learned", action="store_true", help="learned vs configured limits, 300 RPM")
    parser.add_argument("--seed", type=int, default=1, help="the emulators' seed (latencies and faults)")
    args = parser.parse_args()
    docs, rpm = args.docs or 2000, args.rpm or RPM
    if args.faults:
        args.variants = "docmill,docmill+tail,tail-p95only,tail-nohedge"
    if args.learned:
        if args.variants == parser.get_default("variants"):
            args.variants = "learned,docmill"  # add noheaders with --variants learned,docmill,noheaders
        docs, rpm = args.docs or 600, args.rpm or 300
    if args.limiter:
        bench_limiter()
    else:
        bench_variants(docs, args.variants.split(","), args.max_tokens_in, rpm, args.seed)


if __name__ == "__main__":
    main()
