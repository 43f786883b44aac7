"""``docmill plan``: project a run over N documents from measured per-document costs.

The naive estimate is ``N / (workers × docs per worker-second)`` and, for the LLM, ``workers ×
requests per minute``. It is wrong in four ways this model corrects:

* **Amdahl.** Each strategy has a serial fraction ``f`` (the parent's dispatch, the single journal
  writer, the GIL for threads), measured here, so speedup on ``n`` cores is ``1/(f + (1−f)/n)``,
  and never more than the cores (a 9th process on 8 cores adds nothing to CPU work).
* **Memory.** Workers per host are capped by ``(host memory × 0.8 − parent RSS) / RSS per worker``.
* **Waiting.** A blocking strategy holds a worker for the whole LLM call (``workers / (t_cpu +
  latency)``); an async one overlaps calls (Little's law: in-flight = rate × latency).
* **Rate limits.** The provider's RPM/TPM caps the documents per second of the whole run,
  however many hosts: past it, more hosts only add cost. Budget caps the documents, not the rate.

Hosts are projected as independent shards of the collection, each running the strategy locally
and sharing one rate limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from docmill.bench.pages import PageCosts, for_pages, page_lines, pages_per_doc
from docmill.errors import ConfigError
from docmill.executors import capability

MAX_THREADS = 64  # a thread pool larger than this spends more on switching than it gains
MAX_IN_FLIGHT = 512  # async requests per host the executors keep in flight by default
MEMORY_HEADROOM = 0.8  # leave 20 % of a host's memory to the OS and page cache
PROMPT_OVERHEAD_TOKENS = 250  # instructions + label list, measured on the man-page labels file
OUTPUT_TOKENS = 30  # a JSON {"label", "confidence"} answer
MAX_TOKENS_IN = 2000  # the LLM classifier's default cut of a document's text


@dataclass(frozen=True, slots=True)
class Scaling:
    """How one strategy scales, as measured: serial fraction, fixed start-up, memory per worker."""

    strategy: str
    serial_fraction: float
    startup_s: float = 0.0
    rss_per_worker_mb: float = 0.0


@dataclass(frozen=True, slots=True)
class Profile:
    """Per-document costs of the pipeline, measured on a sample or read from a bench run."""

    origin: str
    sample_docs: int
    seconds_per_doc: float  # sequential, steady state, without the LLM call
    cpu_s_per_doc: float
    bytes_per_doc: float
    chars_per_doc: float
    parent_rss_mb: float
    scaling: Mapping[str, Scaling]
    tokens_in_per_doc: float | None = None  # measured when the pipeline has an LLM step
    tokens_out_per_doc: float | None = None
    llm_latency_s: float | None = None
    cores: int = 1
    memory_gb: float = 1.0
    skipped: Mapping[str, str] = field(default_factory=dict)  # strategies that could not be measured
    pages: PageCosts | None = None  # per-page costs, when the sample had PDFs or images


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """What the user asks about."""

    docs: int
    deadline_s: float | None = None
    rpm: float | None = None
    tpm: float | None = None
    price_in: float = 0.0
    price_out: float = 0.0
    budget: float | None = None
    llm: bool = True
    llm_latency_s: float = 1.0
    hosts: int = 1
    cores: int | None = None
    memory_gb: float | None = None
    max_hosts: int = 10_000
    pages_per_doc: float | None = None  # project documents of this many pages (page costs measured)
    requests_per_doc: int = 1  # LLM requests per document (a labels file's tasks decide: plan_tasks)
    prompt_tokens: float = PROMPT_OVERHEAD_TOKENS  # per request, besides the document's text
    output_tokens: float = OUTPUT_TOKENS  # per request

    def __post_init__(self) -> None:
        if self.docs < 1 or self.hosts < 1:
            raise ConfigError("--docs and --hosts must be at least 1")
        if self.llm_latency_s < 0 or self.price_in < 0 or self.price_out < 0:
            raise ConfigError("--latency and prices cannot be negative")
        for name in ("rpm", "tpm", "budget", "deadline_s", "cores", "memory_gb", "pages_per_doc"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(
                    f"--{name.removesuffix('_s').replace('_', '-')} must be positive, got {value}"
                )


@dataclass(frozen=True, slots=True)
class Projection:
    """One strategy's projected run."""

    strategy: str
    hosts: int
    workers_per_host: int
    docs_per_s: float
    wall_s: float
    binding: str
    limits: Mapping[str, float] = field(default_factory=dict)  # docs/s allowed by each limit
    in_flight: float = 0.0  # LLM requests in flight needed (Little's law)

    def meets(self, deadline_s: float | None) -> bool:
        return deadline_s is None or self.wall_s <= deadline_s


LLM_CLASSIFIERS = frozenset({"llm"})  # the classifiers that make one LLM request per document


def llm_stage(classifier: str | None, flag: bool | None = None) -> bool:
    """Whether the run makes one LLM request per document: the classifier decides, when one is given.

    ``--classifier llm[:…]`` does; ``keywords``, ``model:F``, ``none`` (any other) do not. Without a
    classifier, ``--llm`` (the default) or ``--no-llm`` decides. A flag contradicting the
    classifier is refused.
    """
    if classifier is None:
        return True if flag is None else flag
    uses = classifier.partition(":")[0] in LLM_CLASSIFIERS
    if flag is not None and flag != uses:
        given = "--llm" if flag else "--no-llm"
        raise ConfigError(
            f"{given} contradicts --classifier {classifier}, which makes "
            f"{'one LLM request' if uses else 'no LLM requests'} per document"
        )
    return uses


def parse_duration(text: str) -> float:
    """``7d``, ``12h``, ``90m``, ``45s`` or plain seconds → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not match:
        raise ConfigError(f"cannot read duration {text!r}; use e.g. 7d, 12h, 90m, 45s")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * unit


def amdahl(n: float, serial: float) -> float:
    return 1.0 / (serial + (1.0 - serial) / n)


def tokens_per_doc(profile: Profile, inputs: PlanInputs | None = None) -> tuple[float, float]:
    """(input, output) tokens per document: measured, or estimated from the extracted text (which
    every one of the document's requests carries) and each request's prompt and answer."""
    if profile.tokens_in_per_doc is not None:
        return profile.tokens_in_per_doc, profile.tokens_out_per_doc or OUTPUT_TOKENS
    asked = inputs or PlanInputs(docs=1)
    text_tokens = min(profile.chars_per_doc / 4, MAX_TOKENS_IN)  # 4 chars per token, as the emulator
    requests = asked.requests_per_doc
    return requests * (text_tokens + asked.prompt_tokens), requests * asked.output_tokens


def workers_per_host(profile: Profile, scaling: Scaling, inputs: PlanInputs) -> tuple[int, bool]:
    """(CPU workers per host, whether memory rather than cores set it)."""
    cores = inputs.cores or profile.cores
    if scaling.strategy == "sequential":
        return 1, False
    memory_mb = (inputs.memory_gb or profile.memory_gb) * 1024 * MEMORY_HEADROOM - profile.parent_rss_mb
    if scaling.rss_per_worker_mb <= 0:
        return cores, False
    by_memory = max(1, int(memory_mb // scaling.rss_per_worker_mb))
    return min(cores, by_memory), by_memory < cores


def _limits(
    profile: Profile, scaling: Scaling, inputs: PlanInputs, hosts: int
) -> tuple[dict[str, float], int, bool]:
    """Docs/s each limit allows for the whole run on ``hosts`` hosts."""
    workers, memory_bound = workers_per_host(profile, scaling, inputs)
    cpu_rate = hosts * amdahl(workers, scaling.serial_fraction) / profile.seconds_per_doc
    limits = {"memory" if memory_bound else "cores": cpu_rate}
    latency = (profile.llm_latency_s or inputs.llm_latency_s) if inputs.llm else 0.0
    if latency > 0:
        limits["llm concurrency"] = (
            hosts * _io_slots(scaling.strategy, workers) / (profile.seconds_per_doc + latency)
        )
        tokens_in, tokens_out = tokens_per_doc(profile, inputs)
        if inputs.rpm:
            limits["rate limit (rpm)"] = inputs.rpm / 60.0 / inputs.requests_per_doc
        if inputs.tpm:
            limits["rate limit (tpm)"] = inputs.tpm / 60.0 / (tokens_in + tokens_out)
    return limits, workers, memory_bound


def _io_slots(strategy: str, workers: int) -> float:
    """LLM calls one host keeps in flight with this strategy."""
    slots = capability(strategy, "io_slots")  # the strategy's Executor says how it waits
    if slots == "in_flight":
        return MAX_IN_FLIGHT
    if slots == "threads":
        return MAX_THREADS
    return workers


def project(
    profile: Profile, scaling: Scaling, inputs: PlanInputs, *, hosts: int | None = None
) -> Projection:
    """The run of ``inputs.docs`` documents with one strategy on ``hosts`` hosts."""
    hosts = hosts or inputs.hosts
    limits, workers, _ = _limits(profile, scaling, inputs, hosts)
    binding = min(limits, key=lambda k: limits[k])
    rate = limits[binding]
    docs = min(inputs.docs, affordable_docs(profile, inputs))
    wall = scaling.startup_s + docs / rate
    latency = (profile.llm_latency_s or inputs.llm_latency_s) if inputs.llm else 0.0
    in_flight = rate * latency * inputs.requests_per_doc
    return Projection(scaling.strategy, hosts, workers, rate, wall, binding, limits, in_flight)


def cost_per_doc(profile: Profile, inputs: PlanInputs) -> float:
    if not inputs.llm:
        return 0.0
    tokens_in, tokens_out = tokens_per_doc(profile, inputs)
    return (tokens_in * inputs.price_in + tokens_out * inputs.price_out) / 1e6


def affordable_docs(profile: Profile, inputs: PlanInputs) -> int:
    """How many documents the budget pays for (all of them without a budget or a price)."""
    per_doc = cost_per_doc(profile, inputs)
    if inputs.budget is None or per_doc <= 0:
        return inputs.docs
    return min(inputs.docs, int(inputs.budget / per_doc))


def hosts_for_deadline(profile: Profile, scaling: Scaling, inputs: PlanInputs) -> Projection | None:
    """The fewest hosts meeting the deadline, or None when a run-wide limit makes it impossible."""
    if inputs.deadline_s is None:
        return None
    low, high = 1, inputs.max_hosts
    if not project(profile, scaling, inputs, hosts=high).meets(inputs.deadline_s):
        return None
    while low < high:  # wall time never grows with hosts, so bisect
        middle = (low + high) // 2
        if project(profile, scaling, inputs, hosts=middle).meets(inputs.deadline_s):
            high = middle
        else:
            low = middle + 1
    return project(profile, scaling, inputs, hosts=low)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _strategy_rows(profile: Profile, inputs: PlanInputs, pages: float | None) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, scaling in sorted(profile.scaling.items()):
        p = project(profile, scaling, inputs)
        needed = hosts_for_deadline(profile, scaling, inputs)
        deadline = "—" if inputs.deadline_s is None else (str(needed.hosts) if needed else "impossible")
        rows.append(
            (
                name,
                str(p.workers_per_host),
                f"{scaling.serial_fraction:.3f}",
                f"{scaling.rss_per_worker_mb:.0f}",
                _rate(p.docs_per_s),
                *([] if pages is None else [_rate(p.docs_per_s * pages)]),
                format_duration(p.wall_s),
                p.binding,
                deadline,
            )
        )
    return rows


def _llm_lines(profile: Profile, inputs: PlanInputs, best: Projection) -> list[str]:
    if not inputs.llm:
        return ["No LLM stage: no requests, tokens or rate limits counted."]
    tokens_in, tokens_out = tokens_per_doc(profile, inputs)
    unconstrained = min(v for k, v in best.limits.items() if not k.startswith("rate limit"))
    rpm_needed = unconstrained * 60 * inputs.requests_per_doc
    tpm_needed = unconstrained * 60 * (tokens_in + tokens_out)
    docs = affordable_docs(profile, inputs)
    requests = f"{inputs.requests_per_doc} request{'s' if inputs.requests_per_doc > 1 else ''}"
    lines = [
        f"LLM: {requests} and ~{tokens_in:,.0f} input + {tokens_out:,.0f} output tokens per document "
        f"({'measured' if profile.tokens_in_per_doc is not None else 'estimated from the extracted text'}).",
        f"To run {best.strategy} unthrottled ({unconstrained:,.1f} docs/s on {best.hosts} host(s)) "
        f"the provider must allow {rpm_needed:,.0f} requests/min (you have {_fmt(inputs.rpm)}) and "
        f"{tpm_needed:,.0f} tokens/min (you have {_fmt(inputs.tpm)}); "
        f"{best.in_flight:,.0f} requests in flight at "
        f"{profile.llm_latency_s or inputs.llm_latency_s:g} s latency.",
        f"Cost: {inputs.docs:,} × ${cost_per_doc(profile, inputs):.6f} = "
        f"${inputs.docs * cost_per_doc(profile, inputs):,.2f}"
        + (
            f"; budget ${inputs.budget:,.2f} covers {docs:,} documents." if inputs.budget is not None else "."
        ),
    ]
    return lines


def _rate(per_second: float) -> str:
    """Three significant figures below 100 (a scan's 0.241 docs/s is not 0.2), whole numbers above."""
    return f"{per_second:.3g}" if per_second < 100 else f"{per_second:,.0f}"


def _fmt(limit: float | None) -> str:
    return "no limit given" if limit is None else f"{limit:,.0f}"


def plan_report(profile: Profile, inputs: PlanInputs) -> str:
    """The text ``docmill plan`` prints."""
    sample, profile = profile, for_pages(profile, inputs.pages_per_doc)
    pages = pages_per_doc(profile, inputs)
    cores = inputs.cores or profile.cores
    memory = inputs.memory_gb or profile.memory_gb
    projections = [project(profile, s, inputs) for s in profile.scaling.values()]
    best = min(projections, key=lambda p: p.wall_s)
    header = (
        "strategy",
        "workers/host",
        "serial f",
        "MB/worker",
        "docs/s",
        *([] if pages is None else ["pages/s"]),
        "wall time",
        "binding limit",
        "hosts for deadline",
    )
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(row) + " |" for row in _strategy_rows(profile, inputs, pages)]
    lines = [
        f"Plan for {inputs.docs:,} documents on {inputs.hosts} host(s) × {cores} cores, {memory:.0f} GB"
        + (f", deadline {format_duration(inputs.deadline_s)}" if inputs.deadline_s else ""),
        f"Costs {sample.origin}: {1000 * sample.seconds_per_doc:.2f} ms per document sequentially "
        f"({1000 * sample.cpu_s_per_doc:.2f} ms CPU), {sample.bytes_per_doc / 1024:,.1f} KB, "
        f"{sample.chars_per_doc:,.0f} chars of text.",
        *page_lines(sample, inputs),
        "",
        *table,
        "",
        *_llm_lines(profile, inputs, best),
        f"Fastest: {best.strategy}, {format_duration(best.wall_s)}; the limit that binds is {best.binding}"
        + (" (more hosts will not help)." if best.binding.startswith("rate limit") else "."),
    ]
    lines += [f"Not measured: {name}: {why}" for name, why in sorted(profile.skipped.items())]
    if affordable_docs(profile, inputs) < inputs.docs:
        lines.append("The budget binds: the run stops (cleanly, --max-cost) before the last documents.")
    return "\n".join(lines)
